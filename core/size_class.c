/* core/size_class.c - builds the per-class table (object size, batch, span pages).
 *
 * Invariants: see size_class.h. Runs at bootstrap before any allocation, so it
 * allocates nothing and calls nothing. */
#include "size_class.h"

#include "os.h"

struct tcm_size_class_info tcm_size_classes[TCM_SIZE_CLASS_COUNT];

/* Constant, so that malloc can use it before bootstrap. tests/unit/size_class_test.c
 * checks that every size gets its tightest class, through this table up to 1 KiB. */
const uint8_t tcm_size_class_by_16_bytes[TCM_SIZE_CLASS_TABLE_MAX_BYTES / 16 + 1] = {
	1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 10, 11, 11, 12,   /* 0-240 B */
	12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, 16, 16, 16,   /* 241-496 B */
	16, 17, 17, 17, 17, 17, 17, 17, 17, 18, 18, 18, 18, 18, 18, 18,   /* 497-752 B */
	18, 19, 19, 19, 19, 19, 19, 19, 19, 20, 20, 20, 20, 20, 20, 20,   /* 753-1008 B */
	20,   /* 1009-1024 B */
};

/* Constant for the same reason; every class boundary above 1 KiB is a multiple of 256 B. */
const uint8_t tcm_size_class_above_1_kib[(TCM_SIZE_CLASS_COARSE_TABLE_MAX_BYTES - 1025) / 256 + 1] = {
	21, 22, 23, 24, 25, 25, 26, 26, 27, 27, 28, 28, 29, 29, 29, 29,   /* 1025-5120 B */
	30, 30, 30, 30, 31, 31, 31, 31, 32, 32, 32, 32, 33, 33, 33, 33,   /* 5121-9216 B */
	33, 33, 33, 33, 34, 34, 34, 34, 34, 34, 34, 34, 35, 35, 35, 35,   /* 9217-13312 B */
	35, 35, 35, 35, 36, 36, 36, 36, 36, 36, 36, 36, 37, 37, 37, 37,   /* 13313-17408 B */
	37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 37, 38, 38, 38, 38,   /* 17409-21504 B */
	38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 38, 39, 39, 39, 39,   /* 21505-25600 B */
	39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 39, 40, 40, 40, 40,   /* 25601-29696 B */
	40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,   /* 29697-32768 B */
};

static uint16_t batch_objects_for(size_t object_bytes)
{
	size_t objects = (64 * 1024) / object_bytes;
	if (objects < 2)
		objects = 2;
	if (objects > 32)
		objects = 32;
	return (uint16_t)objects;
}

/* The smallest span that serves a batch (up to 128 KiB of it) and wastes at
 * most an eighth of its bytes on the tail that fits no whole object. */
static uint16_t span_pages_for(size_t object_bytes, size_t batch_objects)
{
	size_t want_bytes = batch_objects * object_bytes;
	if (want_bytes > 128 * 1024)
		want_bytes = 128 * 1024;
	if (want_bytes < object_bytes)
		want_bytes = object_bytes;
	size_t pages = (want_bytes + TCM_PAGE_BYTES - 1) / TCM_PAGE_BYTES;
	while ((pages * TCM_PAGE_BYTES) % object_bytes > (pages * TCM_PAGE_BYTES) / 8)
		pages++;
	return (uint16_t)pages;
}

void tcm_size_class_init(void)
{
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		size_t object_bytes = tcm_size_class_bytes_of(size_class);
		info->object_bytes = (uint32_t)object_bytes;
		info->batch_objects = batch_objects_for(object_bytes);
		info->span_pages = span_pages_for(object_bytes, info->batch_objects);
		size_t span_bytes = (size_t)info->span_pages * TCM_PAGE_BYTES;
		info->objects_per_span = (uint32_t)(span_bytes / object_bytes);
		info->first_object_offset = (uint32_t)(span_bytes % object_bytes);
		info->object_start_multiplier = UINT64_MAX / object_bytes + 1;
		size_t kernel_page = tcm_os_kernel_page_bytes();
		info->has_object_map = object_bytes >= TCM_SIZE_CLASS_OBJECT_MAP_MIN_BYTES &&
				       info->objects_per_span <= 64 && span_bytes > kernel_page &&
				       span_bytes <= 64 * kernel_page;
		info->object_index_multiplier = (((uint64_t)1 << 32) + object_bytes - 1) / object_bytes;
	}
}
