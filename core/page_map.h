/* core/page_map.h - radix tree from page number to span and size class,
 * readable without locks.
 *
 * Two levels over TCM_ADDRESS_BITS of address space: a static root of
 * 2^17 leaf pointers (1 MiB of zero pages until used) and leaves of 2^18
 * pages (2 GiB of address space each, 4 MiB of entries) carved from metadata.
 * Invariants: a leaf, once installed, is never removed or moved, so a
 * lock-free reader may keep a pointer to it; entries are written under the
 * page-heap lock and read with relaxed loads (the program's own hand-off of
 * the pointer orders the write before the read); a leaf exists for every
 * page the page heap owns (tcm_page_map_ensure runs before a span is made). */
#ifndef TCM_CORE_PAGE_MAP_H
#define TCM_CORE_PAGE_MAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os.h"

#define TCM_PAGE_MAP_LEAF_BITS 18
#define TCM_PAGE_MAP_ROOT_BITS (TCM_ADDRESS_BITS - TCM_PAGE_SHIFT - TCM_PAGE_MAP_LEAF_BITS)
#define TCM_PAGE_MAP_LEAF_PAGES ((size_t)1 << TCM_PAGE_MAP_LEAF_BITS)

struct tcm_span;

/* A page's entry is two words side by side, so a span's entries (and a fresh region's first
 * and last) sit together, a page or two of a leaf, rather than in three arrays megabytes apart:
 *   - its class word: for a page of an IN_USE small-object span, the size class in the top
 *     byte and the address where the span ends below it (addresses have TCM_ADDRESS_BITS);
 *     for any other page, 0. One word, read by the free fast path with one load, and written
 *     at once, so a lock-free reader never pairs one span's end with another's class;
 *   - its span word: the struct tcm_span * recorded for it.
 * Words, not a struct of two: the free fast path indexes them with a scaled load. */
struct tcm_page_map_leaf {
	_Atomic uintptr_t words[2 * TCM_PAGE_MAP_LEAF_PAGES];
};

#define TCM_PAGE_MAP_CLASS_SHIFT 56

static inline _Atomic uintptr_t *tcm_page_map_class_word(struct tcm_page_map_leaf *leaf, uintptr_t page)
{
	return &leaf->words[(page << 1) & (2 * TCM_PAGE_MAP_LEAF_PAGES - 2)];
}

static inline _Atomic uintptr_t *tcm_page_map_span_word(struct tcm_page_map_leaf *leaf, uintptr_t page)
{
	return tcm_page_map_class_word(leaf, page) + 1;
}

extern struct tcm_page_map_leaf *_Atomic tcm_page_map_root[(size_t)1 << TCM_PAGE_MAP_ROOT_BITS];

static inline struct tcm_page_map_leaf *tcm_page_map_leaf_of(uintptr_t page)
{
	uintptr_t root_index = page >> TCM_PAGE_MAP_LEAF_BITS;
	if (root_index >= ((uintptr_t)1 << TCM_PAGE_MAP_ROOT_BITS))
		return NULL;
	return atomic_load_explicit(&tcm_page_map_root[root_index], memory_order_acquire);
}

/* The size class of the small-object span holding addr; 0 for a large span,
 * a free page, or an address tcm does not own. Lock-free; the free() fast path. */
static inline unsigned tcm_page_map_size_class(const void *addr)
{
	uintptr_t page = (uintptr_t)addr >> TCM_PAGE_SHIFT;
	struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
	if (leaf == NULL)
		return 0;
	return atomic_load_explicit(tcm_page_map_class_word(leaf, page), memory_order_relaxed) >>
	       TCM_PAGE_MAP_CLASS_SHIFT;
}

/* The size class of the small-object span holding addr, as
 * tcm_page_map_size_class, and the bytes from addr to the end of that span in
 * *bytes_to_span_end: at most the span's length, a few dozen pages, when addr
 * is in an IN_USE small-object span; meaningless when the class is 0, and
 * left alone when no leaf covers addr. Lock-free; the free()
 * fast path: one leaf lookup for both. */
static inline unsigned tcm_page_map_small_object(const void *addr, uint64_t *bytes_to_span_end)
{
	uintptr_t page = (uintptr_t)addr >> TCM_PAGE_SHIFT;
	struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
	if (leaf == NULL)
		return 0;
	uintptr_t word = atomic_load_explicit(tcm_page_map_class_word(leaf, page), memory_order_relaxed);
	/* The distance is below 2^32, so its low 32 bits are all of it: the class byte drops out. */
	*bytes_to_span_end = (uint32_t)(word - (uintptr_t)addr);
	return word >> TCM_PAGE_MAP_CLASS_SHIFT;
}

/* The span recorded for page (may be stale for pages inside a free span). */
static inline struct tcm_span *tcm_page_map_get(uintptr_t page)
{
	struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
	if (leaf == NULL)
		return NULL;
	return (struct tcm_span *)atomic_load_explicit(tcm_page_map_span_word(leaf, page), memory_order_relaxed);
}

/* A lock-free walk over the pages of small-object spans in address order:
 * the first page at or after *page whose size-class byte is set (a page of an
 * IN_USE small-object span, as read now) goes into *page, its class into
 * *size_class and the span recorded for it into *span (maybe stale: check
 * under the class lock before using it). Returns false past the last leaf.
 * Pages no leaf covers are skipped a leaf at a time. */
bool tcm_page_map_next_small_page(uintptr_t *page, unsigned *size_class, struct tcm_span **span);

/* Records span and size class for page (and, for a small-object span, where
 * it ends). REQUIRES: page heap lock; the leaf exists; span->start and
 * span->npages final. */
void tcm_page_map_set(uintptr_t page, struct tcm_span *span, unsigned size_class);

/* Records span for page and nothing else: the ends of a free or large span, whose pages' class
 * is 0 already (page_heap.c keeps a class non-zero only in an IN_USE small-object span).
 * REQUIRES: as tcm_page_map_set. */
void tcm_page_map_set_span(uintptr_t page, struct tcm_span *span);

/* Makes sure leaves exist for [first_page, first_page + npages). Returns 0 or
 * ENOMEM. REQUIRES: no lock held (leaves come from metadata). */
int tcm_page_map_ensure(uintptr_t first_page, size_t npages);

#endif
