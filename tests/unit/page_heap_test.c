/* tests/unit/page_heap_test.c - the page heap: spans of many sizes, coalescing
 * of free neighbours in the same state only, frees deferred while the lock is
 * busy, in-place growth and shrinking of large spans, the bounded release
 * step and its accounting, is_zeroed and zeroed contents after release,
 * release on kernels with 16 and 64 KiB pages (os.c's emulation: only whole
 * kernel pages inside a free span go back, never a live neighbour's byte),
 * aligned spans, and ENOMEM through the os.c fault hook.
 *
 * Each test runs in a fresh process (see unit.h), so the heap starts empty:
 * the first growth maps one region that enters the released set, and spans
 * are carved from its front in order. Tests that need two spans to be
 * neighbours assert it first rather than assume it. */
#include "unit.h"

#include "lock.h"
#include "metadata.h"
#include "os.h"
#include "page_heap.h"
#include "release.h"
#include "page_map.h"
#include "span.h"

#include <pthread.h>

static struct tcm_page_heap_stats heap_stats(void)
{
	struct tcm_page_heap_stats stats;
	tcm_page_heap_stats(&stats);
	return stats;
}

/* A large span as core's large-block path takes one: a span from released
 * memory is about to be faulted in, so the resident-set policy runs first
 * (release.h). */
static struct tcm_span *alloc_span(size_t npages, bool *is_zeroed)
{
	bool zeroed_local;
	if (is_zeroed == NULL)
		is_zeroed = &zeroed_local;
	struct tcm_span *span = tcm_page_heap_alloc(npages, 0, is_zeroed);
	assert_non_null(span);
	if (*is_zeroed)
		tcm_release_before_fault_in(npages * TCM_PAGE_BYTES, false);
	assert_int_equal(span->npages, npages);
	assert_int_equal(span->state, TCM_SPAN_IN_USE);
	assert_int_equal(span->start % TCM_PAGE_BYTES, 0);
	return span;
}

static void free_span(struct tcm_span *span)
{
	span->next = NULL;
	tcm_page_heap_free_spans(span);
}

static uintptr_t end_of(const struct tcm_span *span)
{
	return span->start + span->npages * TCM_PAGE_BYTES;
}

/* The free span recorded for the first page at address start. */
static struct tcm_span *span_at(uintptr_t start)
{
	struct tcm_span *span = tcm_page_map_get(start >> TCM_PAGE_SHIFT);
	assert_non_null(span);
	assert_int_equal(span->start, start);
	return span;
}

static void release_all_committed(size_t chunk_bytes)
{
	while (tcm_page_heap_release_step(chunk_bytes) != 0)
		;
	assert_int_equal(heap_stats().free_committed_bytes, 0);
}

/* ---- allocation of many sizes ---------------------------------------------- */

static void alloc_free_many_sizes(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 2, 3, 4, 7, 8, 16, 31, 63, 64, 65, 100, 127, 128, 129, 130,
					200, 255, 256, 257, 511, 1000, 1024, 2047, 2048, 2049, 4000 };
	enum { SIZES = sizeof(sizes) / sizeof(sizes[0]) };
	struct tcm_span *spans[SIZES];
	uint64_t total_pages = 0;
	for (size_t i = 0; i < SIZES; i++) {
		unsigned size_class = sizes[i] <= 4 ? (unsigned)sizes[i] : 0;   /* a few small-object spans too */
		bool is_zeroed;
		spans[i] = tcm_page_heap_alloc(sizes[i], size_class, &is_zeroed);
		assert_non_null(spans[i]);
		assert_int_equal(spans[i]->npages, sizes[i]);
		assert_int_equal(spans[i]->state, TCM_SPAN_IN_USE);
		assert_int_equal(spans[i]->size_class, size_class);
		uintptr_t first_page = spans[i]->start >> TCM_PAGE_SHIFT;
		assert_ptr_equal(tcm_page_map_get(first_page), spans[i]);
		assert_ptr_equal(tcm_page_map_get(first_page + sizes[i] - 1), spans[i]);
		if (size_class != 0) {
			for (size_t page = 0; page < sizes[i]; page++) {
				assert_ptr_equal(tcm_page_map_get(first_page + page), spans[i]);
				assert_int_equal(tcm_page_map_size_class((void *)(spans[i]->start + page * TCM_PAGE_BYTES)),
						 size_class);
			}
		} else {
			assert_ptr_equal(tcm_page_heap_large_span_of((void *)spans[i]->start), spans[i]);
		}
		/* The memory is ours: first and last byte are writable. */
		((volatile char *)spans[i]->start)[0] = 1;
		((volatile char *)end_of(spans[i]))[-1] = 1;
		total_pages += sizes[i];
		assert_int_equal(heap_stats().in_use_bytes, total_pages * TCM_PAGE_BYTES);
	}
	/* No two spans overlap. */
	for (size_t i = 0; i < SIZES; i++)
		for (size_t j = 0; j < i; j++)
			assert_true(end_of(spans[i]) <= spans[j]->start || end_of(spans[j]) <= spans[i]->start);
	assert_int_equal(tcm_page_heap_check(), 0);
	/* Free every other one, check, then the rest. */
	for (size_t i = 0; i < SIZES; i += 2)
		free_span(spans[i]);
	assert_int_equal(tcm_page_heap_check(), 0);
	for (size_t i = 1; i < SIZES; i += 2)
		free_span(spans[i]);
	assert_int_equal(tcm_page_heap_check(), 0);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_true(heap_stats().free_committed_bytes >= total_pages * TCM_PAGE_BYTES);
}

static void zero_pages_is_refused(void **state)
{
	(void)state;
	bool is_zeroed;
	assert_null(tcm_page_heap_alloc(0, 0, &is_zeroed));
	assert_null(tcm_page_heap_alloc_aligned(0, 4, &is_zeroed));
	assert_null(tcm_page_heap_alloc_aligned(4, 0, &is_zeroed));
	assert_null(tcm_page_heap_alloc_aligned(SIZE_MAX, 2, &is_zeroed));
	assert_int_equal(heap_stats().in_use_bytes, 0);
}

static void free_spans_takes_a_list(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(3, NULL), *b = alloc_span(5, NULL), *c = alloc_span(9, NULL);
	a->next = c;
	c->next = b;
	b->next = NULL;
	tcm_page_heap_free_spans(a);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(heap_stats().free_committed_bytes, 17 * TCM_PAGE_BYTES);
	assert_int_equal(tcm_page_heap_check(), 0);
	tcm_page_heap_free_spans(NULL);   /* an empty list is a no-op */
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A free that finds the lock busy (held here by the test thread itself, so a
 * wait would never end) defers the spans: they count as free at once, the
 * next allocation that finds no fit takes them before growing the heap, and
 * a release step frees them before it picks a chunk. */
static void free_with_lock_busy_is_deferred(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(6, NULL), *b = alloc_span(4, NULL);
	uintptr_t a_start = a->start;
	uint64_t mapped = tcm_os_mapped_bytes();
	tcm_lock(tcm_page_heap_lock_object());
	free_span(a);
	tcm_unlock(tcm_page_heap_lock_object());
	assert_int_equal(heap_stats().in_use_bytes, 4 * TCM_PAGE_BYTES);
	assert_int_equal(heap_stats().free_committed_bytes, 6 * TCM_PAGE_BYTES);
	assert_null(tcm_page_heap_large_span_of((void *)a_start));   /* a second free is seen */
	assert_int_equal(tcm_page_heap_check(), 0);
	bool is_zeroed = true;
	struct tcm_span *again = alloc_span(6, &is_zeroed);
	assert_int_equal(again->start, a_start);
	assert_false(is_zeroed);
	assert_int_equal(tcm_os_mapped_bytes(), mapped);

	tcm_lock(tcm_page_heap_lock_object());
	free_span(b);
	tcm_unlock(tcm_page_heap_lock_object());
	assert_int_equal(tcm_page_heap_release_step(64 * TCM_PAGE_BYTES), 4 * TCM_PAGE_BYTES);
	assert_int_equal(heap_stats().free_committed_bytes, 0);
	free_span(again);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A large span that has to come from released memory while more free
 * committed memory than the allowance (a quarter of the memory in use, or room
 * for two of the largest large blocks asked for, at most 16 MiB) sits in
 * fragments too small for it: as much of the fragments as the new span is
 * released, so the resident set does not grow by it. */
static void fresh_large_span_releases_excess_fragments(void **state)
{
	(void)state;
	enum { SPANS = 40, SPAN_PAGES = 128 };   /* 1 MiB each */
	struct tcm_span *spans[SPANS];
	for (int i = 0; i < SPANS; i++)
		spans[i] = alloc_span(SPAN_PAGES, NULL);
	for (int i = 0; i < SPANS; i += 2)
		free_span(spans[i]);   /* 20 holes of 1 MiB between live spans */
	size_t hole_bytes = (size_t)SPAN_PAGES * TCM_PAGE_BYTES;
	assert_int_equal(heap_stats().free_committed_bytes, SPANS / 2 * hole_bytes);
	assert_int_equal(heap_stats().released_total_bytes, 0);
	/* 20 MiB of holes; the allowance is 5.5 MiB (a quarter of 22 MiB in use,
	 * more than room for two 2 MiB blocks): the 2 MiB block releases 2 MiB. */
	bool is_zeroed = false;
	struct tcm_span *big = alloc_span(2 * SPAN_PAGES, &is_zeroed);
	assert_true(is_zeroed);   /* no hole could hold it */
	assert_int_equal(heap_stats().released_total_bytes, 2 * hole_bytes);
	assert_int_equal(heap_stats().free_committed_bytes, (SPANS / 2 - 2) * hole_bytes);
	/* A span served from the holes faults nothing in and releases nothing. */
	struct tcm_span *small = alloc_span(SPAN_PAGES / 2, NULL);
	free_span(small);
	assert_int_equal(heap_stats().released_total_bytes, 2 * hole_bytes);
	free_span(big);
	for (int i = 1; i < SPANS; i += 2)
		free_span(spans[i]);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* Holes of 10 MiB stay while the program has asked for an 8 MiB block: they
 * are within room for two of its largest blocks (16 MiB). */
static void fragments_stay_within_room_for_two_largest_blocks(void **state)
{
	(void)state;
	enum { SPANS = 20, SPAN_PAGES = 128 };   /* 1 MiB each */
	struct tcm_span *largest = alloc_span(8 * SPAN_PAGES, NULL);
	struct tcm_span *spans[SPANS];
	for (int i = 0; i < SPANS; i++)
		spans[i] = alloc_span(SPAN_PAGES, NULL);
	for (int i = 0; i < SPANS; i += 2)
		free_span(spans[i]);
	bool is_zeroed = false;
	struct tcm_span *big = alloc_span(2 * SPAN_PAGES, &is_zeroed);
	assert_true(is_zeroed);
	assert_int_equal(heap_stats().released_total_bytes, 0);
	assert_int_equal(heap_stats().free_committed_bytes, SPANS / 2 * (size_t)SPAN_PAGES * TCM_PAGE_BYTES);
	free_span(big);
	free_span(largest);
	for (int i = 1; i < SPANS; i += 2)
		free_span(spans[i]);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A program whose large blocks stay at 1 MiB keeps a small allowance: 10 MiB
 * of 512 KiB holes against 10 MiB in use, and a fresh 1 MiB block releases
 * 1 MiB of them (a flat 16 MiB floor kept them all resident). */
static void small_blocks_keep_a_small_allowance(void **state)
{
	(void)state;
	enum { SPANS = 40, SPAN_PAGES = 64 };   /* 512 KiB each */
	struct tcm_span *spans[SPANS];
	for (int i = 0; i < SPANS; i++)
		spans[i] = alloc_span(SPAN_PAGES, NULL);
	for (int i = 0; i < SPANS; i += 2)
		free_span(spans[i]);
	size_t hole_bytes = (size_t)SPAN_PAGES * TCM_PAGE_BYTES;
	bool is_zeroed = false;
	struct tcm_span *big = alloc_span(2 * SPAN_PAGES, &is_zeroed);
	assert_true(is_zeroed);   /* no hole could hold it */
	assert_int_equal(heap_stats().released_total_bytes, 2 * hole_bytes);
	assert_int_equal(heap_stats().free_committed_bytes, (SPANS / 2 - 2) * hole_bytes);
	free_span(big);
	for (int i = 1; i < SPANS; i += 2)
		free_span(spans[i]);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- coalescing ---------------------------------------------------------------- */

static void free_neighbours_coalesce(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(4, NULL);
	struct tcm_span *b = alloc_span(4, NULL);
	struct tcm_span *c = alloc_span(4, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);   /* keeps c's right side in use */
	assert_int_equal(end_of(a), b->start);
	assert_int_equal(end_of(b), c->start);
	assert_int_equal(end_of(c), guard->start);
	uintptr_t a_start = a->start;

	free_span(a);
	free_span(c);
	/* Two separate committed spans of 4 pages. */
	assert_int_equal(heap_stats().free_committed_bytes, 8 * TCM_PAGE_BYTES);
	assert_int_equal(span_at(a_start)->npages, 4);
	assert_int_equal(tcm_page_heap_check(), 0);

	free_span(b);
	/* b merges both ways: one committed span of 12 pages. */
	assert_int_equal(heap_stats().free_committed_bytes, 12 * TCM_PAGE_BYTES);
	struct tcm_span *merged = span_at(a_start);
	assert_int_equal(merged->npages, 12);
	assert_int_equal(merged->state, TCM_SPAN_FREE_COMMITTED);
	assert_ptr_equal(tcm_page_map_get((a_start >> TCM_PAGE_SHIFT) + 11), merged);
	assert_int_equal(tcm_page_heap_check(), 0);

	/* The one free span serves a 12-page request whole. */
	bool is_zeroed;
	struct tcm_span *again = alloc_span(12, &is_zeroed);
	assert_int_equal(again->start, a_start);
	assert_false(is_zeroed);
	assert_int_equal(heap_stats().free_committed_bytes, 0);
	free_span(again);
	free_span(guard);
	assert_int_equal(tcm_page_heap_check(), 0);
	assert_int_equal(heap_stats().in_use_bytes, 0);
}

static void many_spans_coalesce_in_any_order(void **state)
{
	(void)state;
	enum { N = 64 };
	struct tcm_span *spans[N];
	for (int i = 0; i < N; i++) {
		spans[i] = alloc_span((size_t)(i % 5) + 1, NULL);
		if (i > 0)
			assert_int_equal(end_of(spans[i - 1]), spans[i]->start);
	}
	struct tcm_span *guard = alloc_span(1, NULL);
	uintptr_t first = spans[0]->start, last_end = end_of(spans[N - 1]);
	/* A fixed shuffle: stride 27 is coprime with 64. */
	for (int k = 0; k < N; k++) {
		free_span(spans[(k * 27) % N]);
		assert_int_equal(tcm_page_heap_check(), 0);
	}
	struct tcm_span *merged = span_at(first);
	assert_int_equal(merged->npages * TCM_PAGE_BYTES, last_end - first);
	assert_int_equal(heap_stats().free_committed_bytes, last_end - first);
	free_span(guard);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- in-place growth and shrinking ---------------------------------------------- */

/* Fills npages pages at start with a pattern of seed; has_pattern checks it. */
static void fill_pattern(uintptr_t start, size_t npages, unsigned seed)
{
	for (size_t i = 0; i < npages * TCM_PAGE_BYTES; i += 64)
		((unsigned char *)start)[i] = (unsigned char)(seed + i / 64);
}

static bool has_pattern(uintptr_t start, size_t npages, unsigned seed)
{
	for (size_t i = 0; i < npages * TCM_PAGE_BYTES; i += 64)
		if (((unsigned char *)start)[i] != (unsigned char)(seed + i / 64))
			return false;
	return true;
}

static void grow_in_place_into_committed_neighbour(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(4, NULL);
	struct tcm_span *b = alloc_span(6, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	assert_int_equal(end_of(a), b->start);
	assert_int_equal(end_of(b), guard->start);
	uintptr_t a_start = a->start, b_start = b->start;
	fill_pattern(a_start, 4, 1);
	free_span(b);
	struct tcm_page_heap_stats before = heap_stats();

	/* Three of b's six pages: a keeps its start, the rest of b stays free after it. */
	assert_true(tcm_page_heap_try_grow_in_place(a, 7));
	assert_int_equal(a->start, a_start);
	assert_int_equal(a->npages, 7);
	assert_int_equal(a->state, TCM_SPAN_IN_USE);
	assert_ptr_equal(tcm_page_heap_large_span_of((void *)a_start), a);
	assert_ptr_equal(tcm_page_map_get((a_start >> TCM_PAGE_SHIFT) + 6), a);
	struct tcm_span *rest = span_at(end_of(a));
	assert_int_equal(rest->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(rest->npages, 3);
	assert_int_equal(end_of(rest), guard->start);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.in_use_bytes, before.in_use_bytes + 3 * TCM_PAGE_BYTES);
	assert_int_equal(after.free_committed_bytes, before.free_committed_bytes - 3 * TCM_PAGE_BYTES);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes);
	assert_true(has_pattern(a_start, 4, 1));
	((volatile char *)end_of(a))[-1] = 1;   /* the new pages are a's */
	assert_int_equal(tcm_page_heap_check(), 0);

	/* The rest exactly: the neighbour is used up, its record goes back. */
	assert_true(tcm_page_heap_try_grow_in_place(a, 10));
	assert_int_equal(a->npages, 10);
	assert_int_equal(end_of(a), guard->start);
	assert_ptr_equal(tcm_page_map_get((b_start >> TCM_PAGE_SHIFT) + 5), a);
	assert_int_equal(heap_stats().free_committed_bytes, before.free_committed_bytes - 6 * TCM_PAGE_BYTES);
	assert_int_equal(heap_stats().in_use_bytes, before.in_use_bytes + 6 * TCM_PAGE_BYTES);
	assert_true(has_pattern(a_start, 4, 1));
	assert_int_equal(tcm_page_heap_check(), 0);

	/* The grown span frees as one. */
	free_span(a);
	free_span(guard);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void no_growth_when_neighbour_in_use_or_too_small(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(4, NULL);
	struct tcm_span *b = alloc_span(2, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	assert_int_equal(end_of(a), b->start);
	assert_int_equal(end_of(b), guard->start);
	uintptr_t a_start = a->start;
	fill_pattern(a_start, 4, 2);

	/* b is in use. */
	struct tcm_page_heap_stats before = heap_stats();
	assert_false(tcm_page_heap_try_grow_in_place(a, 5));
	assert_int_equal(a->npages, 4);
	assert_int_equal(b->npages, 2);
	assert_int_equal(b->state, TCM_SPAN_IN_USE);
	assert_int_equal(heap_stats().in_use_bytes, before.in_use_bytes);

	/* b is free but two pages, three are wanted: nothing changes. */
	free_span(b);
	before = heap_stats();
	assert_false(tcm_page_heap_try_grow_in_place(a, 7));
	assert_int_equal(a->start, a_start);
	assert_int_equal(a->npages, 4);
	struct tcm_span *free_b = span_at(end_of(a));
	assert_int_equal(free_b->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(free_b->npages, 2);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.in_use_bytes, before.in_use_bytes);
	assert_int_equal(after.free_committed_bytes, before.free_committed_bytes);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes);
	assert_true(has_pattern(a_start, 4, 2));
	assert_int_equal(tcm_page_heap_check(), 0);

	/* The guard is the neighbour now and in use. */
	assert_true(tcm_page_heap_try_grow_in_place(a, 6));
	assert_false(tcm_page_heap_try_grow_in_place(a, 7));
	assert_int_equal(a->npages, 6);
	assert_true(has_pattern(a_start, 4, 2));
	free_span(a);
	free_span(guard);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void grow_in_place_into_released_neighbour(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(4, NULL);
	struct tcm_span *b = alloc_span(8, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	assert_int_equal(end_of(a), b->start);
	assert_int_equal(end_of(b), guard->start);
	uintptr_t a_start = a->start;
	fill_pattern(a_start, 4, 3);
	memset((void *)b->start, 0xcd, 8 * TCM_PAGE_BYTES);
	free_span(b);
	release_all_committed(64 * TCM_PAGE_BYTES);
	assert_int_equal(span_at(end_of(a))->state, TCM_SPAN_RELEASED);
	struct tcm_page_heap_stats before = heap_stats();

	assert_true(tcm_page_heap_try_grow_in_place(a, 10));
	assert_int_equal(a->start, a_start);
	assert_int_equal(a->npages, 10);
	struct tcm_span *rest = span_at(end_of(a));
	assert_int_equal(rest->state, TCM_SPAN_RELEASED);
	assert_int_equal(rest->npages, 2);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.in_use_bytes, before.in_use_bytes + 6 * TCM_PAGE_BYTES);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes - 6 * TCM_PAGE_BYTES);
	assert_int_equal(after.free_committed_bytes, 0);
	assert_true(has_pattern(a_start, 4, 3));
	/* The released pages taken read as zeros. */
	for (size_t i = 4 * TCM_PAGE_BYTES; i < 10 * TCM_PAGE_BYTES; i++)
		if (((unsigned char *)a_start)[i] != 0)
			fail_msg("byte %zu of a span grown into released pages is 0x%02x", i,
				 ((unsigned char *)a_start)[i]);
	assert_int_equal(tcm_page_heap_check(), 0);

	/* Freed, the grown span is committed and stays apart from the released rest. */
	free_span(a);
	assert_int_equal(span_at(a_start)->npages, 10);
	assert_int_equal(span_at(a_start + 10 * TCM_PAGE_BYTES)->state, TCM_SPAN_RELEASED);
	free_span(guard);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* Released pages are not faulted in while resident free memory could hold
 * the whole span: as in allocation, committed memory comes first. */
static void released_neighbour_waits_for_committed_memory(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(12, NULL);
	struct tcm_span *b = alloc_span(8, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	struct tcm_span *c = alloc_span(16, NULL);
	struct tcm_span *guard2 = alloc_span(1, NULL);
	assert_int_equal(end_of(a), b->start);
	free_span(b);
	release_all_committed(64 * TCM_PAGE_BYTES);
	free_span(c);   /* 16 committed pages elsewhere */
	assert_int_equal(heap_stats().free_committed_bytes, 16 * TCM_PAGE_BYTES);

	assert_false(tcm_page_heap_try_grow_in_place(a, 14));   /* c could hold 14 pages */
	assert_int_equal(a->npages, 12);
	assert_int_equal(span_at(end_of(a))->npages, 8);
	assert_int_equal(tcm_page_heap_check(), 0);
	assert_true(tcm_page_heap_try_grow_in_place(a, 17));    /* c could not hold 17 */
	assert_int_equal(a->npages, 17);
	assert_int_equal(span_at(end_of(a))->state, TCM_SPAN_RELEASED);
	assert_int_equal(heap_stats().free_committed_bytes, 16 * TCM_PAGE_BYTES);
	assert_int_equal(tcm_page_heap_check(), 0);
	free_span(a);
	free_span(guard);
	free_span(guard2);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void shrink_in_place_frees_the_tail(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(10, NULL);
	struct tcm_span *b = alloc_span(5, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	assert_int_equal(end_of(a), b->start);
	uintptr_t a_start = a->start;
	fill_pattern(a_start, 10, 4);
	free_span(b);
	struct tcm_page_heap_stats before = heap_stats();

	/* The six tail pages merge with the free committed b. */
	assert_true(tcm_page_heap_shrink_in_place(a, 4));
	assert_int_equal(a->start, a_start);
	assert_int_equal(a->npages, 4);
	assert_ptr_equal(tcm_page_map_get((a_start >> TCM_PAGE_SHIFT) + 3), a);
	struct tcm_span *tail = span_at(end_of(a));
	assert_int_equal(tail->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(tail->npages, 11);
	assert_int_equal(end_of(tail), guard->start);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.in_use_bytes, before.in_use_bytes - 6 * TCM_PAGE_BYTES);
	assert_int_equal(after.free_committed_bytes, before.free_committed_bytes + 6 * TCM_PAGE_BYTES);
	assert_true(has_pattern(a_start, 4, 4));
	assert_int_equal(tcm_page_heap_check(), 0);

	/* Next to an in-use span the tail is a free span of its own. */
	assert_true(tcm_page_heap_try_grow_in_place(a, 15));
	assert_int_equal(end_of(a), guard->start);
	assert_true(tcm_page_heap_shrink_in_place(a, 13));
	assert_int_equal(span_at(end_of(a))->npages, 2);
	assert_int_equal(heap_stats().in_use_bytes, before.in_use_bytes + 3 * TCM_PAGE_BYTES);
	assert_true(has_pattern(a_start, 4, 4));
	assert_int_equal(tcm_page_heap_check(), 0);
	free_span(a);
	free_span(guard);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- release ------------------------------------------------------------------ */

static void release_step_is_bounded_and_moves_bytes(void **state)
{
	(void)state;
	struct tcm_span *span = alloc_span(64, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	memset((void *)span->start, 0x5a, 64 * TCM_PAGE_BYTES);
	free_span(span);
	struct tcm_page_heap_stats before = heap_stats();
	assert_int_equal(before.free_committed_bytes, 64 * TCM_PAGE_BYTES);

	/* Below one page: nothing. */
	assert_int_equal(tcm_page_heap_release_step(TCM_PAGE_BYTES - 1), 0);
	assert_int_equal(heap_stats().free_committed_bytes, 64 * TCM_PAGE_BYTES);

	size_t chunk = 16 * TCM_PAGE_BYTES;
	size_t released = tcm_page_heap_release_step(chunk);
	assert_int_equal(released, chunk);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.free_committed_bytes, before.free_committed_bytes - chunk);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes + chunk);
	assert_int_equal(after.released_total_bytes, before.released_total_bytes + chunk);
	assert_int_equal(after.release_calls, before.release_calls + 1);
	assert_int_equal(after.in_use_bytes, before.in_use_bytes);
	assert_int_equal(tcm_page_heap_check(), 0);

	/* A chunk that is not a page multiple rounds down. */
	size_t odd_chunk = 3 * TCM_PAGE_BYTES + 100;
	assert_int_equal(tcm_page_heap_release_step(odd_chunk), 3 * TCM_PAGE_BYTES);

	/* The rest, chunk by chunk: never more than asked. */
	size_t total = chunk + 3 * TCM_PAGE_BYTES;
	for (;;) {
		size_t step = tcm_page_heap_release_step(chunk);
		assert_true(step <= chunk);
		assert_int_equal(step % TCM_PAGE_BYTES, 0);
		if (step == 0)
			break;
		total += step;
		assert_int_equal(tcm_page_heap_check(), 0);
	}
	assert_int_equal(total, 64 * TCM_PAGE_BYTES);
	after = heap_stats();
	assert_int_equal(after.free_committed_bytes, 0);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes + 64 * TCM_PAGE_BYTES);
	assert_int_equal(after.released_total_bytes, before.released_total_bytes + 64 * TCM_PAGE_BYTES);
	/* Nothing committed is left: a step releases nothing and counts no call. */
	assert_int_equal(tcm_page_heap_release_step(chunk), 0);
	assert_int_equal(heap_stats().release_calls, after.release_calls);
	free_span(guard);
}

static void committed_never_merges_with_released(void **state)
{
	(void)state;
	struct tcm_span *a = alloc_span(4, NULL);
	struct tcm_span *b = alloc_span(4, NULL);
	struct tcm_span *c = alloc_span(4, NULL);
	struct tcm_span *guard = alloc_span(1, NULL);
	assert_int_equal(end_of(a), b->start);
	assert_int_equal(end_of(b), c->start);
	assert_int_equal(end_of(c), guard->start);
	uintptr_t a_start = a->start, b_start = b->start, c_start = c->start;

	/* a and c become released; then b is freed committed between them. */
	free_span(a);
	free_span(c);
	release_all_committed(TCM_PAGE_BYTES * 64);
	assert_int_equal(span_at(a_start)->state, TCM_SPAN_RELEASED);
	assert_int_equal(span_at(c_start)->state, TCM_SPAN_RELEASED);
	uint64_t released_before = heap_stats().free_released_bytes;

	free_span(b);
	struct tcm_span *middle = span_at(b_start);
	assert_int_equal(middle->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(middle->npages, 4);
	assert_int_equal(span_at(a_start)->npages, 4);
	assert_int_equal(span_at(a_start)->state, TCM_SPAN_RELEASED);
	assert_int_equal(span_at(c_start)->state, TCM_SPAN_RELEASED);
	assert_int_equal(heap_stats().free_committed_bytes, 4 * TCM_PAGE_BYTES);
	assert_int_equal(heap_stats().free_released_bytes, released_before);
	assert_int_equal(tcm_page_heap_check(), 0);

	/* Releasing the middle joins all three in the released set. */
	assert_int_equal(tcm_page_heap_release_step(TCM_PAGE_BYTES * 64), 4 * TCM_PAGE_BYTES);
	struct tcm_span *joined = span_at(a_start);
	assert_int_equal(joined->state, TCM_SPAN_RELEASED);
	assert_int_equal(joined->npages, 12);
	assert_int_equal(heap_stats().free_committed_bytes, 0);
	assert_int_equal(heap_stats().free_released_bytes, released_before + 4 * TCM_PAGE_BYTES);
	assert_int_equal(tcm_page_heap_check(), 0);
	free_span(guard);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void partial_release_keeps_committed_head_apart(void **state)
{
	(void)state;
	struct tcm_span *left_guard = alloc_span(1, NULL);
	struct tcm_span *span = alloc_span(40, NULL);
	struct tcm_span *right_guard = alloc_span(1, NULL);
	uintptr_t start = span->start;
	free_span(span);
	/* Release 10 pages of the 40: the step takes the tail. */
	assert_int_equal(tcm_page_heap_release_step(10 * TCM_PAGE_BYTES), 10 * TCM_PAGE_BYTES);
	struct tcm_span *head = span_at(start);
	assert_int_equal(head->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(head->npages, 30);
	struct tcm_span *tail = span_at(start + 30 * TCM_PAGE_BYTES);
	assert_int_equal(tail->state, TCM_SPAN_RELEASED);
	assert_int_equal(tail->npages, 10);
	assert_int_equal(heap_stats().free_committed_bytes, 30 * TCM_PAGE_BYTES);
	assert_int_equal(tcm_page_heap_check(), 0);
	free_span(left_guard);
	free_span(right_guard);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void released_span_reads_zero_and_is_zeroed(void **state)
{
	(void)state;
	bool is_zeroed = false;
	struct tcm_span *span = alloc_span(8, &is_zeroed);
	/* Carved from fresh memory, which enters the heap released. */
	assert_true(is_zeroed);
	uintptr_t start = span->start;
	for (size_t i = 0; i < 8 * TCM_PAGE_BYTES; i++)
		assert_int_equal(((unsigned char *)start)[i], 0);
	memset((void *)start, 0xab, 8 * TCM_PAGE_BYTES);
	free_span(span);

	/* Committed reuse: the same pages, and not claimed to be zero. */
	span = alloc_span(8, &is_zeroed);
	assert_int_equal(span->start, start);
	assert_false(is_zeroed);
	free_span(span);

	release_all_committed(2 * TCM_PAGE_BYTES);
	span = alloc_span(8, &is_zeroed);
	assert_int_equal(span->start, start);   /* the same pages back, now released */
	assert_true(is_zeroed);
	for (size_t i = 0; i < 8 * TCM_PAGE_BYTES; i++)
		if (((unsigned char *)start)[i] != 0)
			fail_msg("byte %zu of a span carved from released memory is 0x%02x, not 0", i,
				 ((unsigned char *)start)[i]);
	free_span(span);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- kernel pages larger than tcm's (os.c's emulation) ----------------------- */

#define KERNEL_16K ((size_t)16 << 10)
#define KERNEL_64K ((size_t)64 << 10)

/* Asserts that len bytes at start all read byte. */
static void assert_bytes(uintptr_t start, size_t len, unsigned char byte)
{
	for (size_t i = 0; i < len; i++)
		if (((unsigned char *)start)[i] != byte)
			fail_msg("byte %zu of [%#lx, +%zu) is 0x%02x, not 0x%02x", i, (unsigned long)start, len,
				 ((unsigned char *)start)[i], byte);
}

/* A 64 KiB kernel: a free span that starts 8 KiB past a kernel page gives
 * back the whole kernel pages inside it, and its edges stay committed
 * (before, the release step madvised the span's own start: EINVAL, 0 bytes,
 * nothing released). The released bytes are exact; an edge joins its
 * neighbour once that is freed, and is released with it. */
static void kernel_64k_release_takes_whole_kernel_pages_inside(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	struct tcm_span *left = alloc_span(1, NULL);
	struct tcm_span *span = alloc_span(32, NULL);
	struct tcm_span *right = alloc_span(1, NULL);
	uintptr_t base = left->start;
	assert_int_equal(base % KERNEL_64K, 0);   /* the heap's region starts on a kernel page */
	assert_int_equal(span->start, base + TCM_PAGE_BYTES);
	assert_int_equal(right->start, end_of(span));
	memset((void *)left->start, 0x11, TCM_PAGE_BYTES);
	memset((void *)span->start, 0x5a, 32 * TCM_PAGE_BYTES);
	memset((void *)right->start, 0x22, TCM_PAGE_BYTES);
	free_span(span);
	struct tcm_page_heap_stats before = heap_stats();

	/* [8 KiB, 264 KiB): kernel pages [64 KiB, 256 KiB) go back. */
	assert_int_equal(tcm_page_heap_release_step(2 << 20), 3 * KERNEL_64K);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.free_committed_bytes, 8 * TCM_PAGE_BYTES);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes + 3 * KERNEL_64K);
	assert_int_equal(after.released_total_bytes, 3 * KERNEL_64K);
	assert_int_equal(after.release_calls, 1);
	assert_int_equal(span_at(base + TCM_PAGE_BYTES)->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(span_at(base + TCM_PAGE_BYTES)->npages, 7);
	assert_int_equal(span_at(base + KERNEL_64K)->state, TCM_SPAN_RELEASED);
	assert_int_equal(span_at(base + KERNEL_64K)->npages, 24);
	assert_int_equal(span_at(base + 4 * KERNEL_64K)->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(span_at(base + 4 * KERNEL_64K)->npages, 1);
	assert_bytes(base + KERNEL_64K, 3 * KERNEL_64K, 0);
	assert_bytes(base + TCM_PAGE_BYTES, 7 * TCM_PAGE_BYTES, 0x5a);   /* the edges were left alone */
	assert_bytes(base + 4 * KERNEL_64K, TCM_PAGE_BYTES, 0x5a);
	assert_bytes(left->start, TCM_PAGE_BYTES, 0x11);
	assert_bytes(right->start, TCM_PAGE_BYTES, 0x22);
	assert_int_equal(tcm_page_heap_check(), 0);

	/* Only edges are left: a step releases nothing and makes no call. */
	assert_int_equal(tcm_page_heap_release_step(2 << 20), 0);
	assert_int_equal(heap_stats().release_calls, 1);

	/* Freeing left completes the first kernel page, which then goes back and
	 * joins the released pages after it. */
	free_span(left);
	assert_int_equal(tcm_page_heap_release_step(2 << 20), KERNEL_64K);
	assert_int_equal(span_at(base)->state, TCM_SPAN_RELEASED);
	assert_int_equal(span_at(base)->npages, 32);
	assert_int_equal(heap_stats().free_committed_bytes, TCM_PAGE_BYTES);
	assert_int_equal(heap_stats().free_released_bytes, before.free_released_bytes + 4 * KERNEL_64K);
	assert_bytes(right->start, TCM_PAGE_BYTES, 0x22);

	/* The committed edge before right is reused before released memory. */
	bool is_zeroed = true;
	struct tcm_span *again = alloc_span(1, &is_zeroed);
	assert_int_equal(again->start, base + 4 * KERNEL_64K);
	assert_false(is_zeroed);
	free_span(again);
	free_span(right);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A 64 KiB kernel: a free 8 KiB span at the start of a kernel page whose
 * other 56 KiB are a live block releases nothing (before, madvise of its
 * 8 KiB was rounded up by the kernel to the whole kernel page and zeroed
 * the live neighbour's 57,344 bytes, as malloc_trim did in the issue). */
static void kernel_64k_release_never_zeroes_a_live_neighbour(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	struct tcm_span *first = alloc_span(1, NULL);
	struct tcm_span *live = alloc_span(7, NULL);
	assert_int_equal(first->start % KERNEL_64K, 0);
	assert_int_equal(live->start, end_of(first));
	uintptr_t first_start = first->start;
	memset((void *)first->start, 0x11, TCM_PAGE_BYTES);
	memset((void *)live->start, 0x5a, 7 * TCM_PAGE_BYTES);
	free_span(first);
	size_t released = tcm_page_heap_release_step(2 << 20);
	assert_bytes(live->start, 7 * TCM_PAGE_BYTES, 0x5a);
	assert_int_equal(released, 0);
	assert_int_equal(heap_stats().free_committed_bytes, TCM_PAGE_BYTES);
	assert_int_equal(heap_stats().released_total_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	/* Once the whole kernel page is free, it goes back. */
	free_span(live);
	assert_int_equal(tcm_page_heap_release_step(2 << 20), KERNEL_64K);
	assert_int_equal(span_at(first_start)->state, TCM_SPAN_RELEASED);
	assert_int_equal(heap_stats().free_committed_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A 16 KiB kernel: a free span of 5 tcm pages starting 8 KiB past a kernel
 * page gives back its two whole kernel pages; its first 8 KiB stay. */
static void kernel_16k_release_takes_whole_kernel_pages_inside(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_16K, TCM_OS_TESTING_MODERN_KERNEL);
	struct tcm_span *left = alloc_span(1, NULL);
	struct tcm_span *span = alloc_span(5, NULL);
	struct tcm_span *right = alloc_span(1, NULL);
	assert_int_equal(left->start % KERNEL_16K, 0);
	assert_int_equal(span->start, end_of(left));
	uintptr_t start = span->start;
	memset((void *)left->start, 0x11, TCM_PAGE_BYTES);
	memset((void *)right->start, 0x22, TCM_PAGE_BYTES);
	free_span(span);
	assert_int_equal(tcm_page_heap_release_step(2 << 20), 2 * KERNEL_16K);
	assert_int_equal(span_at(start)->state, TCM_SPAN_FREE_COMMITTED);
	assert_int_equal(span_at(start)->npages, 1);
	assert_int_equal(span_at(start + TCM_PAGE_BYTES)->state, TCM_SPAN_RELEASED);
	assert_int_equal(heap_stats().free_committed_bytes, TCM_PAGE_BYTES);
	assert_bytes(left->start, TCM_PAGE_BYTES, 0x11);
	assert_bytes(right->start, TCM_PAGE_BYTES, 0x22);
	free_span(left);
	free_span(right);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A 64 KiB kernel: the fresh-span offset (a large span faulted in from
 * released memory while fragments past the allowance stay committed)
 * releases whole kernel pages of the holes and never a byte of the live
 * spans between them (before, a hole's madvise failed at an unaligned start,
 * or, at an aligned one, was rounded up over the next live span's start). */
static void kernel_64k_fresh_span_offset_releases_whole_kernel_pages(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	enum { SPANS = 40, SPAN_PAGES = 63 };   /* 504 KiB: the holes start and end off kernel pages */
	struct tcm_span *spans[SPANS];
	for (int i = 0; i < SPANS; i++) {
		spans[i] = alloc_span(SPAN_PAGES, NULL);
		memset((void *)spans[i]->start, 0x40 + i, SPAN_PAGES * TCM_PAGE_BYTES);
	}
	for (int i = 0; i < SPANS; i += 2)
		free_span(spans[i]);
	bool is_zeroed = false;
	struct tcm_span *big = alloc_span(2 * SPAN_PAGES, &is_zeroed);
	assert_true(is_zeroed);   /* no hole could hold it: the offset ran */
	uint64_t released = heap_stats().released_total_bytes;
	assert_true(released > 0);
	assert_true(released <= 2 * SPAN_PAGES * TCM_PAGE_BYTES);
	assert_int_equal(released % KERNEL_64K, 0);
	for (int i = 1; i < SPANS; i += 2)
		assert_bytes(spans[i]->start, SPAN_PAGES * TCM_PAGE_BYTES, 0x40 + i);
	assert_int_equal(tcm_page_heap_check(), 0);
	free_span(big);
	for (int i = 1; i < SPANS; i += 2)
		free_span(spans[i]);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- aligned spans --------------------------------------------------------------- */

static void aligned_spans_are_aligned(void **state)
{
	(void)state;
	static const size_t aligns[] = { 1, 2, 4, 8, 16, 64, 128, 256, 512 };
	static const size_t sizes[] = { 1, 3, 17, 130, 600 };
	enum { A = sizeof(aligns) / sizeof(aligns[0]), S = sizeof(sizes) / sizeof(sizes[0]) };
	static struct tcm_span *spans[A * S];
	uint64_t pages = 0;
	/* A misaligning span first, so alignment is not free. */
	struct tcm_span *skew = alloc_span(3, NULL);
	for (size_t a = 0; a < A; a++) {
		for (size_t s = 0; s < S; s++) {
			bool is_zeroed;
			struct tcm_span *span = tcm_page_heap_alloc_aligned(sizes[s], aligns[a], &is_zeroed);
			assert_non_null(span);
			assert_int_equal(span->npages, sizes[s]);
			assert_int_equal(span->state, TCM_SPAN_IN_USE);
			if (span->start % (aligns[a] * TCM_PAGE_BYTES) != 0)
				fail_msg("span of %zu pages aligned to %zu pages starts at %#lx", sizes[s], aligns[a],
					 (unsigned long)span->start);
			assert_ptr_equal(tcm_page_heap_large_span_of((void *)span->start), span);
			((volatile char *)end_of(span))[-1] = 1;
			spans[a * S + s] = span;
			pages += sizes[s];
		}
	}
	assert_int_equal(heap_stats().in_use_bytes, (pages + 3) * TCM_PAGE_BYTES);
	assert_int_equal(tcm_page_heap_check(), 0);
	for (size_t i = 0; i < A * S; i++)
		free_span(spans[i]);
	free_span(skew);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void large_span_of_only_matches_starts(void **state)
{
	(void)state;
	struct tcm_span *large = alloc_span(10, NULL);
	bool is_zeroed;
	struct tcm_span *small = tcm_page_heap_alloc(2, 5, &is_zeroed);
	assert_non_null(small);
	assert_ptr_equal(tcm_page_heap_large_span_of((void *)large->start), large);
	assert_null(tcm_page_heap_large_span_of((void *)(large->start + 16)));
	assert_null(tcm_page_heap_large_span_of((void *)(large->start + TCM_PAGE_BYTES)));
	assert_null(tcm_page_heap_large_span_of((void *)(end_of(large) - TCM_PAGE_BYTES)));
	assert_null(tcm_page_heap_large_span_of((void *)small->start));   /* a small-object span */
	uintptr_t large_start = large->start;
	free_span(large);
	assert_null(tcm_page_heap_large_span_of((void *)large_start));     /* free now */
	free_span(small);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void freed_small_span_pages_read_class_zero(void **state)
{
	(void)state;
	/* page_map.h: tcm_page_map_size_class is 0 for "a large span, a free page,
	 * or an address tcm does not own" -- on every page, not only the ends. */
	bool is_zeroed;
	struct tcm_span *small = tcm_page_heap_alloc(4, 5, &is_zeroed);
	assert_non_null(small);
	uintptr_t start = small->start;
	for (size_t page = 0; page < 4; page++)
		assert_int_equal(tcm_page_map_size_class((void *)(start + page * TCM_PAGE_BYTES)), 5);
	free_span(small);
	for (size_t page = 0; page < 4; page++)
		if (tcm_page_map_size_class((void *)(start + page * TCM_PAGE_BYTES)) != 0)
			fail_msg("page %zu of a freed small-object span still reads class %u", page,
				 tcm_page_map_size_class((void *)(start + page * TCM_PAGE_BYTES)));
	/* The same pages as a large span: its interior is not a small object either. */
	struct tcm_span *large = alloc_span(4, NULL);
	assert_int_equal(large->start, start);
	for (size_t page = 0; page < 4; page++)
		if (tcm_page_map_size_class((void *)(start + page * TCM_PAGE_BYTES)) != 0)
			fail_msg("page %zu of a large span reads class %u", page,
				 tcm_page_map_size_class((void *)(start + page * TCM_PAGE_BYTES)));
	free_span(large);
}

/* ---- ENOMEM ------------------------------------------------------------------------ */

static void enomem_from_empty_heap(void **state)
{
	(void)state;
	bool is_zeroed;
	tcm_os_testing_fail_maps_after(0);
	assert_null(tcm_page_heap_alloc(1, 0, &is_zeroed));
	assert_null(tcm_page_heap_alloc(4, 3, &is_zeroed));
	assert_null(tcm_page_heap_alloc_aligned(8, 8, &is_zeroed));
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	tcm_os_testing_fail_maps_after(SIZE_MAX);
	struct tcm_span *span = alloc_span(4, NULL);
	struct tcm_span *aligned = tcm_page_heap_alloc_aligned(8, 8, &is_zeroed);
	assert_non_null(aligned);
	free_span(span);
	free_span(aligned);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void enomem_when_growth_fails(void **state)
{
	(void)state;
	/* Prime the heap so records and a page-map leaf exist, then refuse every map. */
	struct tcm_span *small = alloc_span(2, NULL);
	free_span(small);
	struct tcm_page_heap_stats before = heap_stats();
	tcm_os_testing_fail_maps_after(0);
	bool is_zeroed;
	/* More pages than the heap holds: it must grow, and cannot. */
	size_t huge_pages = (size_t)(256 << 20) / TCM_PAGE_BYTES;
	assert_null(tcm_page_heap_alloc(huge_pages, 0, &is_zeroed));
	assert_null(tcm_page_heap_alloc_aligned(huge_pages, 256, &is_zeroed));
	/* What the heap already holds is still served. */
	struct tcm_span *from_free = alloc_span(2, NULL);
	free_span(from_free);
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.in_use_bytes, before.in_use_bytes);
	assert_int_equal(after.free_committed_bytes + after.free_released_bytes,
			 before.free_committed_bytes + before.free_released_bytes);
	assert_int_equal(tcm_page_heap_check(), 0);

	/* A limit that lets some bytes through still fails cleanly when growth exceeds it. */
	tcm_os_testing_fail_maps_after((size_t)8 << 20);
	assert_null(tcm_page_heap_alloc(huge_pages, 0, &is_zeroed));
	assert_int_equal(tcm_page_heap_check(), 0);

	tcm_os_testing_fail_maps_after(SIZE_MAX);
	struct tcm_span *big = alloc_span(huge_pages, NULL);
	((volatile char *)end_of(big))[-1] = 1;
	free_span(big);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- requests past what any kernel can map ------------------------------------ */

/* A span or an alignment of 2^43 pages (2^56 bytes) indexed past the free
 * sets' buckets (a SIGSEGV in set_find), and only once a free committed span
 * existed for some sizes. They fail, the heap is unchanged, and the failure
 * leaves the fragment allowance alone: afterwards a fresh 1 MiB block still
 * releases excess 512 KiB holes as in small_blocks_keep_a_small_allowance
 * (a huge figure for the largest request asked for would keep them all). */
static void huge_requests_fail_and_leave_policy_alone(void **state)
{
	(void)state;
	free_span(alloc_span(4, NULL));   /* a free committed span exists */
	struct tcm_span *large = alloc_span(TCM_PAGE_HEAP_EXACT_PAGES + 1, NULL);
	struct tcm_page_heap_stats before = heap_stats();
	bool is_zeroed;
	static const size_t huge_pages[] = { TCM_PAGE_HEAP_MAX_PAGES + 1, (size_t)1 << 40, (size_t)1 << 43,
					     SIZE_MAX / TCM_PAGE_BYTES, SIZE_MAX };
	for (size_t i = 0; i < sizeof(huge_pages) / sizeof(huge_pages[0]); i++) {
		assert_null(tcm_page_heap_alloc(huge_pages[i], 0, &is_zeroed));
		assert_null(tcm_page_heap_alloc_aligned(1, huge_pages[i], &is_zeroed));
		assert_null(tcm_page_heap_alloc_aligned(huge_pages[i], 1, &is_zeroed));
		assert_false(tcm_page_heap_try_grow_in_place(large, huge_pages[i]));
	}
	struct tcm_page_heap_stats after = heap_stats();
	assert_int_equal(after.in_use_bytes, before.in_use_bytes);
	assert_int_equal(after.free_committed_bytes, before.free_committed_bytes);
	assert_int_equal(after.free_released_bytes, before.free_released_bytes);
	assert_int_equal(large->npages, TCM_PAGE_HEAP_EXACT_PAGES + 1);
	free_span(large);
	release_all_committed(SIZE_MAX);

	enum { SPANS = 40, SPAN_PAGES = 64 };   /* 512 KiB each */
	struct tcm_span *spans[SPANS];
	for (int i = 0; i < SPANS; i++)
		spans[i] = alloc_span(SPAN_PAGES, NULL);
	for (int i = 0; i < SPANS; i += 2)
		free_span(spans[i]);
	uint64_t released_before = heap_stats().released_total_bytes;
	size_t hole_bytes = (size_t)SPAN_PAGES * TCM_PAGE_BYTES;
	struct tcm_span *big = alloc_span(2 * SPAN_PAGES, &is_zeroed);
	assert_true(is_zeroed);
	assert_int_equal(heap_stats().released_total_bytes - released_before, 2 * hole_bytes);
	free_span(big);
	for (int i = 1; i < SPANS; i += 2)
		free_span(spans[i]);
	assert_int_equal(heap_stats().in_use_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- growth racing splits for the pool of span records ------------------------ */

struct growth_race {
	pthread_barrier_t *start;
	int                thread;
};

/* Aligned spans split off a head and a tail (two spare records each) and
 * large ones make the heap grow (one record). Growth reserved its record,
 * then, once it had the lock, took one without looking again: threads that
 * split while it waited for the lock could leave it a NULL record. Here every
 * thread keeps its spans, so records are only used up, and thread 0 grows
 * the heap at every step. */
static void *growth_race_thread(void *arg)
{
	struct growth_race *race = arg;
	enum { ROUNDS = 3000 };
	pthread_barrier_wait(race->start);
	for (int round = 0; round < ROUNDS; round++) {
		bool is_zeroed;
		struct tcm_span *span = race->thread == 0
			? (round < ROUNDS / 10 ? tcm_page_heap_alloc((size_t)(16 << 20) / TCM_PAGE_BYTES + 1, 0, &is_zeroed)
					       : NULL)
			: tcm_page_heap_alloc_aligned(1 + (size_t)round % 3, 2, &is_zeroed);
		if (race->thread == 0 && round >= ROUNDS / 10)
			break;
		UNIT_THREAD_CHECK(span != NULL);
		if (span == NULL)
			break;
	}
	return NULL;
}

static void growth_racing_splits_gets_a_record(void **state)
{
	(void)state;
	enum { THREADS = 5 };
	struct growth_race races[THREADS];
	pthread_t threads[THREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, THREADS);
	for (int i = 0; i < THREADS; i++)
		races[i] = (struct growth_race){ .start = &start, .thread = i };
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, growth_race_thread, &races[i]), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&start);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- what the heap's start touches (issue 12) ---------------------------------- */

/* A merge looks at no page-map entry outside the heap's regions: no span is there, and reading
 * a fresh region's two neighbours' entries faulted in two pages of the map at every process's
 * first allocation. Entries planted just outside, as mergeable free spans, stay unread. */
static void merge_reads_no_entry_outside_the_heap(void **state)
{
	(void)state;
	size_t region_pages = ((size_t)16 << 20) / TCM_PAGE_BYTES;   /* page_heap.c's GROW_MIN_BYTES */
	struct tcm_span *whole = alloc_span(region_pages, NULL);
	struct tcm_page_heap_stats stats = heap_stats();
	assert_int_equal(stats.free_committed_bytes + stats.free_released_bytes, 0);  /* the whole region */
	uintptr_t start = whole->start, first_page = start >> TCM_PAGE_SHIFT;
	uintptr_t end_page = first_page + region_pages;
	static struct tcm_span below, above;
	below = (struct tcm_span){ .start = start - TCM_PAGE_BYTES, .npages = 1,
				   .state = TCM_SPAN_FREE_COMMITTED };
	above = (struct tcm_span){ .start = end_of(whole), .npages = 1, .state = TCM_SPAN_FREE_COMMITTED };
	assert_int_equal(tcm_page_map_ensure(first_page - 1, 1), 0);
	assert_int_equal(tcm_page_map_ensure(end_page, 1), 0);
	tcm_page_map_set_span(first_page - 1, &below);
	tcm_page_map_set_span(end_page, &above);

	free_span(whole);
	struct tcm_span *freed = span_at(start);
	assert_int_equal(freed->npages, region_pages);
	assert_ptr_equal(tcm_page_map_get(end_page - 1), freed);
	assert_int_equal(heap_stats().free_committed_bytes, region_pages * TCM_PAGE_BYTES);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A block of spare span records is written a record at a time, as they are taken, in address
 * order: a process's start takes a few, and writing all of them at once faulted in another
 * page of metadata. Each allocation here splits the region's free rest off into the next
 * record; the records after that one are still the zeros fresh metadata is. */
static void spare_records_are_written_when_taken(void **state)
{
	(void)state;
	struct tcm_span *first = alloc_span(1, NULL);
	struct tcm_span *second = alloc_span(1, NULL);
	assert_ptr_equal(second, first + 1);
	static const struct tcm_span untouched;
	for (int later = 2; later <= 8; later++)   /* second + 1: the free rest; all in the first block */
		assert_memory_equal(second + later, &untouched, sizeof untouched);
	free_span(first);
	free_span(second);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* The page map's leaves: a region that crosses a 2 GiB boundary has two. */
static uint64_t leaf_bytes_installed(void)
{
	uint64_t bytes = 0;
	for (size_t index = 0; index < ((size_t)1 << TCM_PAGE_MAP_ROOT_BITS); index++)
		if (atomic_load(&tcm_page_map_root[index]) != NULL)
			bytes += sizeof(struct tcm_page_map_leaf);
	return bytes;
}

/* A process's first spans take their records from the library's own first block: a program
 * that allocates little writes no metadata region (issue 12: a page and its page table at every
 * start); the leaves of the page map are the only metadata. Past that block, records come from
 * metadata as before. */
static void first_spans_take_no_metadata_region(void **state)
{
	(void)state;
	struct tcm_span *first = alloc_span(1, NULL);
	assert_int_not_equal(leaf_bytes_installed(), 0);
	assert_int_equal(tcm_metadata_bytes(), leaf_bytes_installed());
	enum { MORE = 80 };   /* past the first block of records */
	struct tcm_span *more[MORE];
	for (int i = 0; i < MORE; i++)
		more[i] = alloc_span(1, NULL);
	assert_true(tcm_metadata_bytes() > leaf_bytes_installed());
	assert_int_equal(tcm_page_heap_check(), 0);
	for (int i = 0; i < MORE; i++)
		free_span(more[i]);
	free_span(first);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(alloc_free_many_sizes),
	cmocka_unit_test(merge_reads_no_entry_outside_the_heap),
	cmocka_unit_test(spare_records_are_written_when_taken),
	cmocka_unit_test(first_spans_take_no_metadata_region),
	cmocka_unit_test(zero_pages_is_refused),
	cmocka_unit_test(free_spans_takes_a_list),
	cmocka_unit_test(free_with_lock_busy_is_deferred),
	cmocka_unit_test(fresh_large_span_releases_excess_fragments),
	cmocka_unit_test(fragments_stay_within_room_for_two_largest_blocks),
	cmocka_unit_test(small_blocks_keep_a_small_allowance),
	cmocka_unit_test(free_neighbours_coalesce),
	cmocka_unit_test(many_spans_coalesce_in_any_order),
	cmocka_unit_test(grow_in_place_into_committed_neighbour),
	cmocka_unit_test(no_growth_when_neighbour_in_use_or_too_small),
	cmocka_unit_test(grow_in_place_into_released_neighbour),
	cmocka_unit_test(released_neighbour_waits_for_committed_memory),
	cmocka_unit_test(shrink_in_place_frees_the_tail),
	cmocka_unit_test(release_step_is_bounded_and_moves_bytes),
	cmocka_unit_test(committed_never_merges_with_released),
	cmocka_unit_test(partial_release_keeps_committed_head_apart),
	cmocka_unit_test(released_span_reads_zero_and_is_zeroed),
	cmocka_unit_test(kernel_64k_release_takes_whole_kernel_pages_inside),
	cmocka_unit_test(kernel_64k_release_never_zeroes_a_live_neighbour),
	cmocka_unit_test(kernel_16k_release_takes_whole_kernel_pages_inside),
	cmocka_unit_test(kernel_64k_fresh_span_offset_releases_whole_kernel_pages),
	cmocka_unit_test(aligned_spans_are_aligned),
	cmocka_unit_test(large_span_of_only_matches_starts),
	cmocka_unit_test(freed_small_span_pages_read_class_zero),
	cmocka_unit_test(enomem_from_empty_heap),
	cmocka_unit_test(enomem_when_growth_fails),
	cmocka_unit_test(huge_requests_fail_and_leave_policy_alone),
	cmocka_unit_test(growth_racing_splits_gets_a_record),
};

UNIT_MAIN("page_heap", tests)
