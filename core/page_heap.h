/* core/page_heap.h - spans of 8 KiB pages: allocation, coalescing, in-place
 * resizing of large spans, and the committed -> released transition done in
 * bounded steps.
 *
 * Free spans live in free sets, committed and released, each with exact
 * lists for 1..128 pages and log2 buckets above; neighbours merge only when
 * they are in the same state, so the released bytes are always exact. Where
 * the kernel's page is larger than tcm's (16 or 64 KiB on aarch64), only the
 * whole kernel pages inside a free committed span are ever madvised: its
 * edges stay committed spans of their own while they share a kernel page
 * with memory in use, and the part of a kernel page a free committed span
 * shares with released memory joins the committed span, so that the whole
 * page can go back.
 * Fresh memory from the kernel enters as RELEASED (it is not resident).
 * Locks: one page-heap lock, a leaf of the lock order (core/lock.h). Every
 * critical section is pointer work on a bounded number of spans (DESIGN
 * invariant 2); growing the heap and madvise run with no lock held
 * (invariant 1); the page heap never unmaps (invariant 9). */
#ifndef TCM_CORE_PAGE_HEAP_H
#define TCM_CORE_PAGE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os.h"
#include "span.h"

/* Largest span that lives in an exact free list; larger ones go to buckets. */
#define TCM_PAGE_HEAP_EXACT_PAGES 128

/* The most pages one span (or one alignment) can have: half of the address
 * range tcm hands out (TCM_ADDRESS_BITS), which no kernel can map anyway.
 * Requests above it fail before any arithmetic on them can overflow. */
#define TCM_PAGE_HEAP_MAX_PAGES ((size_t)1 << (TCM_ADDRESS_BITS - 1 - TCM_PAGE_SHIFT))

/* Returns an IN_USE span of npages pages for size_class (0: a large span),
 * or NULL when the kernel gives no memory or npages is 0 or above
 * TCM_PAGE_HEAP_MAX_PAGES. *is_zeroed: the span came from released (or never
 * touched) memory, so all its bytes are zero and none of its pages is
 * resident; the caller asks the resident-set policy (resident.h, through
 * release.h) what to release before faulting them in. A small-object span
 * has every page mapped to it in the page map; a large span its first and
 * last page. REQUIRES: no tcm lock held (may grow the heap). */
struct tcm_span *tcm_page_heap_alloc(size_t npages, unsigned size_class, bool *is_zeroed);

/* As tcm_page_heap_alloc for a large span whose start is a multiple of
 * align_pages pages (a power of two); NULL too when align_pages is above
 * TCM_PAGE_HEAP_MAX_PAGES. */
struct tcm_span *tcm_page_heap_alloc_aligned(size_t npages, size_t align_pages, bool *is_zeroed);

/* Gives back a list of IN_USE spans linked through next (DESIGN invariant 8:
 * a few lock holds for a batch of spans); each merges with free neighbours of
 * its state. Never waits: if the lock is busy the spans are deferred to its
 * next holder (they count as free committed memory meanwhile).
 * REQUIRES: no tcm lock held. */
void tcm_page_heap_free_spans(struct tcm_span *spans);

/* Extends an IN_USE large span to new_npages pages, keeping its start, by
 * taking the front of the free span that begins right after it; the rest of
 * that span stays free in its set. Returns false and changes nothing when
 * the next pages are not free (in use, being released, or not the heap's),
 * are fewer than needed, new_npages is above TCM_PAGE_HEAP_MAX_PAGES, or
 * they are released while a committed free span could
 * hold all new_npages (a move reuses resident memory rather than faulting
 * in new pages, as allocation does). The pages taken keep their contents:
 * released ones read as zeros. Never grows the heap.
 * REQUIRES: the caller owns span (IN_USE, size_class 0); new_npages >
 * span->npages; no tcm lock held. */
bool tcm_page_heap_try_grow_in_place(struct tcm_span *span, size_t new_npages);

/* Shortens an IN_USE large span to new_npages pages, keeping its start; the
 * pages past them go to the committed free set (merging with a committed free
 * neighbour). Returns false and changes nothing when no span record can be
 * had (ENOMEM). REQUIRES: the caller owns span (IN_USE, size_class 0);
 * 0 < new_npages < span->npages; no tcm lock held. */
bool tcm_page_heap_shrink_in_place(struct tcm_span *span, size_t new_npages);

/* Returns at most max_bytes (rounded down to whole kernel pages, and to
 * whole tcm pages) of free committed memory to the kernel in one
 * tcm_os_release_ranges: the whole kernel pages inside the largest free
 * spans, up to TCM_OS_RELEASE_RANGES_MAX of them, the spans' edges staying
 * committed. The lock covers each pick and each put-back only. Returns the
 * bytes released; 0 when no free committed span holds a whole kernel page,
 * when max_bytes is below one, or on error. REQUIRES: no tcm lock held. */
size_t tcm_page_heap_release_step(size_t max_bytes);

/* As tcm_page_heap_release_step, taking only spans whose whole kernel pages
 * come to at least min_piece_bytes (the resident-set policy's pieces). */
size_t tcm_page_heap_release_pieces(size_t max_bytes, size_t min_piece_bytes);

/* In a fork child, after the locks are reset: spans that a thread of the
 * parent was releasing with no lock held when it forked go back to the
 * committed free set (that thread does not exist in the child). */
void tcm_page_heap_after_fork_in_child(void);

/* The span whose first page holds ptr's page, when ptr is the start of an
 * IN_USE large span; NULL otherwise. Lock-free. */
struct tcm_span *tcm_page_heap_large_span_of(const void *ptr);

struct tcm_page_heap_stats {
	uint64_t in_use_bytes;          /* spans handed to central or to the program */
	uint64_t free_committed_bytes;  /* free and maybe resident */
	uint64_t free_released_bytes;   /* free and not resident */
	uint64_t released_total_bytes;  /* madvised since start */
	uint64_t release_calls;         /* madvise calls made */
	uint64_t largest_large_bytes;   /* the largest large span asked for so far */
};
void tcm_page_heap_stats(struct tcm_page_heap_stats *out);

/* The page-heap lock itself (fork handlers, stats); taking it is tcm_lock's. */
struct tcm_lock *tcm_page_heap_lock_object(void);

/* Walks every free set and checks its spans' states, sizes and page-map
 * ends against the counters. Returns 0 when consistent, else a line number
 * of the failed check. Takes the lock; cost is linear in the free spans
 * (for tests and TCM_DEBUG >= 3 only). */
int tcm_page_heap_check(void);

#endif
