/* core/size_class.h - size -> class, class -> object size, batch size, span pages.
 *
 * Classes: 16-byte steps up to 128 B (classes 1-8), then four classes per
 * power of two (steps of a quarter of the power: 160, 192, 224, 256, 320, ...)
 * up to 256 KiB (class 52). Class 0 means "not a small object": a large span.
 * Invariants: every object size is a multiple of 16 (the minimum alignment);
 * internal waste is at most 25% above 128 B; a span of a class wastes at most
 * 1/8 of its bytes; batch_objects * object_bytes <= 64 KiB (>= 2 objects). */
#ifndef TCM_CORE_SIZE_CLASS_H
#define TCM_CORE_SIZE_CLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCM_SIZE_CLASS_COUNT 53         /* classes 1..52; 0 = large */
#define TCM_SMALL_MAX_BYTES  ((size_t)256 * 1024)
#define TCM_MIN_ALIGN_BYTES  16

struct tcm_size_class_info {
	uint32_t object_bytes;       /* size of each object */
	uint16_t batch_objects;      /* objects moved per thread-cache <-> central transfer */
	uint16_t span_pages;         /* 8 KiB pages in one span of this class */
	uint32_t objects_per_span;   /* span_pages * TCM_PAGE_BYTES / object_bytes */
	/* The span's bytes that fit no whole object come first: objects end where
	 * the span ends, so an address is an object start exactly when its
	 * distance to the span's end is a multiple of object_bytes (the free
	 * path's test). A multiple of every power of two dividing object_bytes
	 * and the page, so objects stay as aligned as with no offset. */
	uint32_t first_object_offset;
	/* ceil(2^64 / object_bytes): n < 2^32 is a multiple of object_bytes
	 * exactly when n * object_start_multiplier (mod 2^64) is below it
	 * (Lemire, Kaser, Kurz, "Faster remainder by direct computation", 2019). */
	uint64_t object_start_multiplier;
	/* Its spans keep an object map (span.h: which objects are listed,
	 * stranded, taken out), which a release of the free pages inside a span
	 * in use works from (core/inside_release.c): classes of at least
	 * TCM_SIZE_CLASS_OBJECT_MAP_MIN_BYTES, whose spans hold at most 64
	 * objects and more bytes than one kernel page (at most 64 of them). With
	 * smaller objects a kernel page is almost never free whole while its span
	 * is in use, and a span of one kernel page or less has one free whole
	 * only once it is empty (64 KiB pages: most classes). Set at init, from
	 * the kernel's page. */
	bool     has_object_map;
	/* ceil(2^32 / object_bytes): object i of a span with an object map starts
	 * offset bytes after object 0 where offset * multiplier >> 32 == i, exact
	 * for its at most 64 objects. */
	uint64_t object_index_multiplier;
};

#define TCM_SIZE_CLASS_OBJECT_MAP_MIN_BYTES 256

/* Whether an address bytes_to_span_end (< 2^32) bytes before the end of a
 * span of a class with object_start_multiplier is an object start: one
 * multiply. */
static inline bool tcm_size_class_is_object_start(uint64_t bytes_to_span_end, uint64_t object_start_multiplier)
{
	return bytes_to_span_end * object_start_multiplier < object_start_multiplier;
}

/* Filled by tcm_size_class_init(), read-only afterwards. */
extern struct tcm_size_class_info tcm_size_classes[TCM_SIZE_CLASS_COUNT];

/* Fills tcm_size_classes; idempotent; allocates nothing. */
void tcm_size_class_init(void);

/* The classes of the sizes up to TCM_SIZE_CLASS_TABLE_MAX_BYTES, indexed by
 * (size + 15) / 16: a load where a size <= 128 test would be a branch that
 * programs mixing sizes at random mispredict, throwing away the cache misses
 * the CPU had already started on. */
#define TCM_SIZE_CLASS_TABLE_MAX_BYTES 1024
extern const uint8_t tcm_size_class_by_16_bytes[TCM_SIZE_CLASS_TABLE_MAX_BYTES / 16 + 1];
/* Then up to TCM_SIZE_CLASS_COARSE_TABLE_MAX_BYTES, indexed by (size - 1025) / 256:
 * above 1 KiB classes are multiples of 256 B, and a table beats the formula's
 * bit scan and shifts by half a dozen instructions. */
#define TCM_SIZE_CLASS_COARSE_TABLE_MAX_BYTES (32 * 1024)
extern const uint8_t tcm_size_class_above_1_kib[(TCM_SIZE_CLASS_COARSE_TABLE_MAX_BYTES - 1025) / 256 + 1];

/* size_bytes <= TCM_SMALL_MAX_BYTES; 0 is served as 1. */
static inline unsigned tcm_size_class_of(size_t size_bytes)
{
	if (__builtin_expect(size_bytes <= TCM_SIZE_CLASS_TABLE_MAX_BYTES, 1))
		return tcm_size_class_by_16_bytes[(size_bytes + 15) >> 4];
	if (size_bytes <= TCM_SIZE_CLASS_COARSE_TABLE_MAX_BYTES)
		return tcm_size_class_above_1_kib[(size_bytes - 1025) >> 8];
	/* (2^k, 2^(k+1)] splits in four classes of 2^(k-2) bytes each. */
	unsigned power = 63u - (unsigned)__builtin_clzll((unsigned long long)(size_bytes - 1));
	unsigned quarter = (unsigned)((size_bytes - 1) >> (power - 2)) & 3u;
	return 9u + (power - 7u) * 4u + quarter;
}

/* The object size of class size_class (1..52), computed without the table. */
static inline size_t tcm_size_class_bytes_of(unsigned size_class)
{
	if (size_class <= 8)
		return (size_t)size_class * 16;
	unsigned group = (size_class - 9) / 4, quarter = (size_class - 9) % 4;
	size_t power_bytes = (size_t)128 << group;
	return power_bytes + (quarter + 1) * (power_bytes / 4);
}

#endif
