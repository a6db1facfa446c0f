/* tests/unit/central_test.c - central free lists: fetched chains (length,
 * distinct objects of the class, aligned, inside spans of the class), the
 * stack's capacity on give-back, the dying-thread and busy-lock exceptions, drain back to
 * spans and to the page heap, concurrent fetch/give-back without
 * duplicates, and, on kernels with 16 or 64 KiB pages or without
 * MADV_POPULATE_WRITE (os.c's emulation), release inside spans that do not
 * start on a kernel page and fresh spans resident before they are carved.
 *
 * Each test runs in a fresh process (see unit.h) and bootstraps core with
 * tcm_core_bootstrap(), which initialises the size classes and the central
 * lists without activating a thread cache. Nothing else in the
 * process allocates from tcm, so the page heap's in_use bytes and
 * tcm_central_cached_bytes() move only with what a test does.
 *
 * The stack's capacity is checked from outside as well as read: the entries
 * left on the stack after more give-backs than any capacity, which must be the
 * same however many more are given back, and equal tcm_central_capacity(). */
#include "unit.h"

#include "central.h"
#include "inside_release.h"
#include "core.h"
#include "lock.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_class.h"
#include "span.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

/* 64-byte objects: batch 32, 128 per one-page span, so every batch fetched
 * from fresh spans is exactly one batch long. */
#define CLASS_64 4

static void bootstrap_core(void)
{
	tcm_core_bootstrap();
	assert_int_equal(tcm_size_classes[CLASS_64].object_bytes, 64);
	assert_int_equal(tcm_size_classes[CLASS_64].objects_per_span % tcm_size_classes[CLASS_64].batch_objects, 0);
}

static uint64_t in_use_bytes(void)
{
	struct tcm_page_heap_stats stats;
	tcm_page_heap_stats(&stats);
	return stats.in_use_bytes;
}

static int compare_pointers(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* Checks one object of size_class: the span of its page is an IN_USE span of
 * the class, and the object lies whole inside it at an object boundary (a
 * multiple of the object size before the span's end). */
static void check_object(void *object, unsigned size_class)
{
	size_t object_bytes = tcm_size_classes[size_class].object_bytes;
	uintptr_t address = (uintptr_t)object;
	if (address % TCM_MIN_ALIGN_BYTES != 0)
		fail_msg("object %p of class %u is not 16-byte aligned", object, size_class);
	assert_int_equal(tcm_page_map_size_class(object), size_class);
	assert_int_equal(tcm_page_map_size_class((char *)object + object_bytes - 1), size_class);
	struct tcm_span *span = tcm_page_map_get(address >> TCM_PAGE_SHIFT);
	assert_non_null(span);
	assert_int_equal(span->state, TCM_SPAN_IN_USE);
	assert_int_equal(span->size_class, size_class);
	assert_true(address >= span->start);
	assert_true(address + object_bytes <= span->start + span->npages * TCM_PAGE_BYTES);
	/* Objects end where the span ends: the bytes no whole object fits in come first. */
	assert_true(address >= span->start + tcm_size_classes[size_class].first_object_offset);
	assert_int_equal((span->start + span->npages * TCM_PAGE_BYTES - address) % object_bytes, 0);
}

/* Walks a chain of count objects, checks each, and stores them in out[].
 * The chain must end (NULL link) exactly after count objects. */
static void collect_chain(void *first, uint32_t count, unsigned size_class, void **out)
{
	void *object = first;
	for (uint32_t i = 0; i < count; i++) {
		assert_non_null(object);
		check_object(object, size_class);
		out[i] = object;
		object = *(void **)object;
	}
	assert_null(object);
}

static void assert_distinct(void **objects, size_t count)
{
	qsort(objects, count, sizeof(void *), compare_pointers);
	for (size_t i = 1; i < count; i++)
		if (objects[i] == objects[i - 1])
			fail_msg("object %p handed out twice", objects[i]);
}

/* Links objects[0..count) into a NULL-terminated chain; returns its head. */
static void *make_chain(void **objects, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		*(void **)objects[i] = i + 1 < count ? objects[i + 1] : NULL;
	return objects[0];
}

/* ---- fetch ------------------------------------------------------------------------ */

static void fetch_returns_distinct_objects_of_class(void **state)
{
	(void)state;
	bootstrap_core();
	static const unsigned classes[] = { 1, 2, CLASS_64, 8, 9, 12, 20, 30, 40, 47, 51, 52 };
	for (size_t k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
		unsigned size_class = classes[k];
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		uint32_t want = info->batch_objects;
		size_t rounds = 4 * (info->objects_per_span / want + 1);   /* several spans' worth */
		void **objects = calloc(rounds * want, sizeof(void *));
		assert_non_null(objects);
		size_t total = 0;
		for (size_t round = 0; round < rounds; round++) {
			uint32_t count = 0;
			void *first = tcm_central_fetch(size_class, want, &count);
			assert_non_null(first);
			if (count < 1 || count > want)
				fail_msg("class %u: fetch of %u gave %u objects", size_class, want, count);
			/* A span never holds fewer objects than a batch when it divides
			 * evenly, and the stack is empty here: the chain is exact. */
			if (info->objects_per_span % want == 0)
				assert_int_equal(count, want);
			collect_chain(first, count, size_class, objects + total);
			total += count;
		}
		for (size_t i = 0; i < total; i++)
			memset(objects[i], 0xc3, info->object_bytes);   /* ours to write, whole */
		assert_distinct(objects, total);
		/* Give them all back and drain: the class holds nothing in use. */
		for (size_t i = 0; i < total; i += want) {
			uint32_t count = total - i < want ? (uint32_t)(total - i) : want;
			tcm_central_give_back(size_class, make_chain(objects + i, count), count, false);
		}
		tcm_central_drain(size_class, 0);
		free(objects);
	}
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void fetch_of_one_object(void **state)
{
	(void)state;
	bootstrap_core();
	uint32_t count = 0;
	void *object = tcm_central_fetch(CLASS_64, 1, &count);
	assert_non_null(object);
	assert_int_equal(count, 1);
	assert_null(*(void **)object);
	check_object(object, CLASS_64);
	*(void **)object = NULL;
	tcm_central_give_back(CLASS_64, object, 1, false);
	tcm_central_drain(CLASS_64, 0);
	assert_int_equal(in_use_bytes(), 0);
}

static void fetch_takes_a_stack_entry_whole(void **state)
{
	(void)state;
	bootstrap_core();
	enum { N = 5 };
	void *objects[N], *again[N];
	for (int i = 0; i < N; i++) {
		uint32_t count;
		objects[i] = tcm_central_fetch(CLASS_64, 1, &count);
		assert_non_null(objects[i]);
	}
	/* A dying thread's entry of 5 objects (want is 2 below: more comes back). */
	tcm_central_give_back(CLASS_64, make_chain(objects, N), N, true);
	uint32_t count = 0;
	void *first = tcm_central_fetch(CLASS_64, 2, &count);
	assert_int_equal(count, N);
	assert_ptr_equal(first, objects[0]);
	collect_chain(first, count, CLASS_64, again);
	for (int i = 0; i < N; i++)
		assert_ptr_equal(again[i], objects[i]);
	/* want == 1 never takes a stack entry: put one back and fetch one. */
	tcm_central_give_back(CLASS_64, make_chain(again, N), N, true);
	void *single = tcm_central_fetch(CLASS_64, 1, &count);
	assert_int_equal(count, 1);
	for (int i = 0; i < N; i++)
		assert_ptr_not_equal(single, objects[i]);
	assert_int_equal(tcm_central_drain(CLASS_64, 0), N);
	*(void **)single = NULL;
	tcm_central_give_back(CLASS_64, single, 1, false);
	tcm_central_drain(CLASS_64, 0);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_central_cached_bytes(), 0);
}

/* ---- capacity, give-back and drain ------------------------------------------------- */

/* Fetches batches batches of CLASS_64 into out (batches * batch_objects slots). */
static void fetch_batches(size_t batches, void **out)
{
	uint32_t want = tcm_size_classes[CLASS_64].batch_objects;
	for (size_t b = 0; b < batches; b++) {
		uint32_t count = 0;
		void *first = tcm_central_fetch(CLASS_64, want, &count);
		assert_non_null(first);
		assert_int_equal(count, want);
		collect_chain(first, count, CLASS_64, out + b * want);
	}
}

static void give_back_batches(size_t batches, void **objects, bool is_thread_exit)
{
	uint32_t want = tcm_size_classes[CLASS_64].batch_objects;
	for (size_t b = 0; b < batches; b++)
		tcm_central_give_back(CLASS_64, make_chain(objects + b * want, want), want, is_thread_exit);
}

/* Gives back batches batches and returns the entries the stack kept
 * (measured by draining it), checking the spans took the rest. */
static size_t entries_kept_after_give_back(size_t batches)
{
	uint32_t want = tcm_size_classes[CLASS_64].batch_objects;
	size_t object_bytes = tcm_size_classes[CLASS_64].object_bytes;
	void **objects = calloc(batches * want, sizeof(void *));
	assert_non_null(objects);
	uint64_t in_use_before = in_use_bytes();
	fetch_batches(batches, objects);
	uint64_t in_use_peak = in_use_bytes();
	assert_true(in_use_peak > in_use_before);
	assert_int_equal(tcm_central_cached_bytes(), 0);   /* spans carved whole: none left over */

	give_back_batches(batches, objects, false);
	/* Objects beyond the stack's capacity went back to their spans, and the
	 * spans that got all of theirs back went to the page heap. */
	uint64_t in_use_after = in_use_bytes();
	assert_true(in_use_after < in_use_peak);
	uint64_t cached = tcm_central_cached_bytes();

	size_t moved = tcm_central_drain(CLASS_64, 0);
	assert_int_equal(moved % want, 0);
	size_t kept = moved / want;
	assert_true(kept >= 1);
	assert_true(kept < batches);
	/* The stack held exactly what the drain moved; the rest of the cached
	 * bytes were free objects in partly used spans. */
	assert_true(cached >= moved * object_bytes);
	assert_int_equal(tcm_central_drain(CLASS_64, 0), 0);
	assert_int_equal(in_use_bytes(), in_use_before);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	free(objects);
	return kept;
}

static void give_back_beyond_capacity_goes_to_spans(void **state)
{
	(void)state;
	bootstrap_core();
	size_t kept_200 = entries_kept_after_give_back(200);
	size_t kept_100 = entries_kept_after_give_back(100);
	size_t kept_300 = entries_kept_after_give_back(300);
	/* A fixed capacity: the stack keeps the same number however much comes back. */
	assert_int_equal(kept_100, kept_200);
	assert_int_equal(kept_300, kept_200);
	assert_int_equal(kept_200, tcm_central_capacity(CLASS_64));
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void thread_exit_give_back_may_exceed_capacity(void **state)
{
	(void)state;
	bootstrap_core();
	size_t capacity = entries_kept_after_give_back(200);
	size_t batches = capacity + 50;
	uint32_t want = tcm_size_classes[CLASS_64].batch_objects;
	/* The last span carved may keep uncarved objects, which count as cached. */
	size_t per_span = tcm_size_classes[CLASS_64].objects_per_span;
	size_t uncarved = (per_span - (batches * want) % per_span) % per_span;
	void **objects = calloc(batches * want, sizeof(void *));
	assert_non_null(objects);
	uint64_t in_use_before = in_use_bytes();
	fetch_batches(batches, objects);
	uint64_t in_use_peak = in_use_bytes();
	give_back_batches(batches, objects, true);
	/* All of it on the stack: no span got anything back. */
	assert_int_equal(in_use_bytes(), in_use_peak);
	assert_int_equal(tcm_central_cached_bytes(),
			 (uint64_t)(batches * want + uncarved) * tcm_size_classes[CLASS_64].object_bytes);
	/* A drain to a given depth leaves that many entries. */
	assert_int_equal(tcm_central_drain(CLASS_64, (uint32_t)capacity), (batches - capacity) * want);
	assert_int_equal(tcm_central_drain(CLASS_64, 3), (capacity - 3) * want);
	assert_int_equal(tcm_central_drain(CLASS_64, 0), 3 * want);
	assert_int_equal(in_use_bytes(), in_use_before);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	free(objects);
}

/* A give-back never waits for the class lock: with it held (here by the test
 * thread itself, so a wait would never end) a full stack takes the batches
 * past its capacity; once the lock is free, each give-back to the full stack
 * returns its own batch and one entry of the overflow to the spans. */
static void give_back_with_class_lock_busy_does_not_wait(void **state)
{
	(void)state;
	bootstrap_core();
	size_t capacity = tcm_central_capacity(CLASS_64);
	size_t overflow = 10, after = 4;
	size_t batches = capacity + overflow + after;
	uint32_t want = tcm_size_classes[CLASS_64].batch_objects;
	void **objects = calloc(batches * want, sizeof(void *));
	assert_non_null(objects);
	fetch_batches(batches, objects);
	give_back_batches(capacity, objects, false);
	tcm_lock(tcm_central_lock_object(CLASS_64));
	give_back_batches(overflow, objects + capacity * want, false);
	tcm_unlock(tcm_central_lock_object(CLASS_64));
	give_back_batches(after, objects + (capacity + overflow) * want, false);
	/* capacity + overflow entries were pushed; each of the last ones took one back. */
	assert_int_equal(tcm_central_drain(CLASS_64, (uint32_t)capacity), (overflow - after) * want);
	assert_int_equal(tcm_central_drain(CLASS_64, 0), capacity * want);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(objects);
}

static void drain_returns_spans_to_page_heap(void **state)
{
	(void)state;
	bootstrap_core();
	static const unsigned classes[] = { 1, CLASS_64, 13, 33, 52 };
	uint64_t base = in_use_bytes();
	for (size_t k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
		unsigned size_class = classes[k];
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		enum { ENTRIES = 6 };
		void *chains[ENTRIES];
		uint32_t counts[ENTRIES];
		for (int e = 0; e < ENTRIES; e++) {
			chains[e] = tcm_central_fetch(size_class, info->batch_objects, &counts[e]);
			assert_non_null(chains[e]);
		}
		assert_true(in_use_bytes() > base);
		for (int e = 0; e < ENTRIES; e++)
			tcm_central_give_back(size_class, chains[e], counts[e], true);
		assert_true(tcm_central_cached_bytes() > 0);
		size_t moved = tcm_central_drain(size_class, 0);
		size_t expected = 0;
		for (int e = 0; e < ENTRIES; e++)
			expected += counts[e];
		assert_int_equal(moved, expected);
		/* Every span of the class emptied and went back to the page heap. */
		assert_int_equal(in_use_bytes(), base);
		assert_int_equal(tcm_central_cached_bytes(), 0);
		struct tcm_page_heap_stats stats;
		tcm_page_heap_stats(&stats);
		assert_true(stats.free_committed_bytes > 0);
	}
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void enomem_fetch_returns_null(void **state)
{
	(void)state;
	bootstrap_core();
	tcm_os_testing_fail_maps_after(0);
	uint32_t count = 77;
	assert_null(tcm_central_fetch(CLASS_64, 32, &count));
	assert_null(tcm_central_fetch(52, 1, &count));
	tcm_os_testing_fail_maps_after(SIZE_MAX);
	void *first = tcm_central_fetch(CLASS_64, 32, &count);
	assert_non_null(first);
	assert_int_equal(count, 32);
	tcm_central_give_back(CLASS_64, first, count, false);
	tcm_central_drain(CLASS_64, 0);
	assert_int_equal(in_use_bytes(), 0);
}

/* ---- concurrency ------------------------------------------------------------------------ */

#define CENTRAL_THREADS    4
#define CENTRAL_ITERATIONS 3000
#define HELD_CHAINS        4

static pthread_barrier_t central_barrier;

/* Each thread fetches chains, stamps each object with its id, checks the
 * stamps survive a round of other threads' work, and gives the chains back
 * (some as a dying thread would, to push the stack past capacity). An object
 * handed to two threads at once shows up as a foreign stamp. */
static void *central_worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg + 1;
	unsigned size_class = CLASS_64;
	uint32_t want = tcm_size_classes[size_class].batch_objects;
	pthread_barrier_wait(&central_barrier);
	for (int i = 0; i < CENTRAL_ITERATIONS; i++) {
		void *chains[HELD_CHAINS];
		uint32_t counts[HELD_CHAINS];
		for (int c = 0; c < HELD_CHAINS; c++) {
			uint32_t ask = (i + c) % 3 == 0 ? 1 : want;
			chains[c] = tcm_central_fetch(size_class, ask, &counts[c]);
			UNIT_THREAD_CHECK(chains[c] != NULL);
			if (chains[c] == NULL)
				return NULL;
			for (void *object = chains[c]; object != NULL; object = *(void **)object) {
				UNIT_THREAD_CHECK(tcm_page_map_size_class(object) == size_class);
				((uintptr_t *)object)[2] = id;
				((uintptr_t *)object)[3] = (uintptr_t)object ^ id;
			}
		}
		for (int c = 0; c < HELD_CHAINS; c++) {
			uint32_t seen = 0;
			for (void *object = chains[c]; object != NULL; object = *(void **)object) {
				UNIT_THREAD_CHECK(((uintptr_t *)object)[2] == id);
				UNIT_THREAD_CHECK(((uintptr_t *)object)[3] == ((uintptr_t)object ^ id));
				seen++;
			}
			UNIT_THREAD_CHECK(seen == counts[c]);
			tcm_central_give_back(size_class, chains[c], counts[c], (i + c) % 7 == 0);
		}
		if (i % 500 == 0)
			tcm_central_drain(size_class, 1);
	}
	return NULL;
}

static void concurrent_fetch_and_give_back(void **state)
{
	(void)state;
	bootstrap_core();
	pthread_t threads[CENTRAL_THREADS];
	pthread_barrier_init(&central_barrier, NULL, CENTRAL_THREADS);
	for (uintptr_t i = 0; i < CENTRAL_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, central_worker, (void *)i), 0);
	for (int i = 0; i < CENTRAL_THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&central_barrier);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	tcm_central_drain(CLASS_64, 0);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* Fetches count objects of size_class into out (the chains may be shorter
 * than asked). */
static void fetch_into(unsigned size_class, uint32_t count, void **out)
{
	for (uint32_t got = 0; got < count;) {
		uint32_t fetched;
		void *chain = tcm_central_fetch(size_class, count - got, &fetched);
		assert_non_null(chain);
		for (; chain != NULL; chain = *(void **)chain)
			out[got++] = chain;
	}
}

/* Makes free_mib MiB of 1 KiB objects free inside spans that stay in use (the
 * first object of every span is kept, the rest go back to the spans). Returns
 * the kept objects (one per span) in *kept and their number. */
static uint32_t free_inside_spans(uint32_t free_mib, void ***kept)
{
	unsigned size_class = tcm_size_class_of(1024);
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	uint32_t spans = (uint32_t)(((size_t)free_mib << 20) / ((size_t)(info->objects_per_span - 1) * 1024)) + 1;
	uint32_t count = spans * info->objects_per_span;
	void **objects = calloc(count, sizeof(void *));
	assert_non_null(objects);
	fetch_into(size_class, count, objects);
	qsort(objects, count, sizeof(void *), compare_pointers);
	*kept = calloc(spans, sizeof(void *));
	assert_non_null(*kept);
	uint32_t kept_count = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct tcm_span *span = tcm_page_map_get((uintptr_t)objects[i] >> TCM_PAGE_SHIFT);
		if ((uintptr_t)objects[i] == span->start)
			(*kept)[kept_count++] = objects[i];
		else
			assert_true(tcm_central_give_back_to_span(size_class, objects[i]));
	}
	assert_int_equal(kept_count, spans);
	free(objects);
	return kept_count;
}

static uint64_t inside_span_released_bytes(void)
{
	uint64_t bytes, calls;
	tcm_inside_release_totals(&bytes, &calls);
	return bytes;
}

/* A fresh span made while the spans hold more free bytes than a quarter of
 * the memory in use (and at least 8 MiB) first releases as many bytes of
 * whole free pages inside them; with less free than that, nothing. */
static void fresh_span_offsets_free_pages_inside_spans(void **state)
{
	(void)state;
	bootstrap_core();
	unsigned other_class = tcm_size_class_of(2048);
	size_t other_span_bytes = (size_t)tcm_size_classes[other_class].span_pages * TCM_PAGE_BYTES;
	void **kept;
	uint32_t kept_count = free_inside_spans(4, &kept);   /* 4 MiB free: below the floor */
	uint32_t fetched;
	void *first = tcm_central_fetch(other_class, 1, &fetched);
	assert_non_null(first);
	assert_int_equal(inside_span_released_bytes(), 0);
	for (uint32_t i = 0; i < kept_count; i++)
		assert_true(tcm_central_give_back_to_span(tcm_size_class_of(1024), kept[i]));
	free(kept);

	kept_count = free_inside_spans(12, &kept);   /* 12 MiB free of about 14 in use */
	assert_true(tcm_central_cached_bytes() > in_use_bytes() / 4);
	/* The other class's span still has free objects: no fresh span, no release. */
	void *second = tcm_central_fetch(other_class, 1, &fetched);
	assert_int_equal(inside_span_released_bytes(), 0);
	/* Emptying it makes the next fetch need a fresh span. */
	uint32_t per_span = tcm_size_classes[other_class].objects_per_span;
	void **rest = calloc(per_span, sizeof(void *));
	assert_non_null(rest);
	fetch_into(other_class, per_span - 2, rest);
	void *third = tcm_central_fetch(other_class, 1, &fetched);
	assert_non_null(third);
	assert_true(inside_span_released_bytes() >= other_span_bytes);
	assert_true(inside_span_released_bytes() < other_span_bytes + (size_t)64 * 1024);   /* one span's worth more at most */

	assert_true(tcm_central_give_back_to_span(other_class, first));
	assert_true(tcm_central_give_back_to_span(other_class, second));
	assert_true(tcm_central_give_back_to_span(other_class, third));
	for (uint32_t i = 0; i < per_span - 2; i++)
		assert_true(tcm_central_give_back_to_span(other_class, rest[i]));
	for (uint32_t i = 0; i < kept_count; i++)
		assert_true(tcm_central_give_back_to_span(tcm_size_class_of(1024), kept[i]));
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(rest);
	free(kept);
}

/* ---- kernel pages and page faults (os.c's emulation) --------------------------- */

#define KERNEL_16K ((size_t)16 << 10)
#define KERNEL_64K ((size_t)64 << 10)

/* Whether every page the MMU maps in [start, start + len) is resident. */
static bool is_resident(uintptr_t start, size_t len)
{
	size_t pages;
	return unit_resident_pages(start, len, &pages) == pages;
}

static void assert_bytes(uintptr_t start, size_t len, unsigned char byte)
{
	for (size_t i = 0; i < len; i++)
		if (((unsigned char *)start)[i] != byte)
			fail_msg("byte %zu of [%#lx, +%zu) is 0x%02x, not 0x%02x", i, (unsigned long)start, len,
				 ((unsigned char *)start)[i], byte);
}

/* The span of one object fetched from a fresh span of size_class. */
static struct tcm_span *fetch_fresh_span(unsigned size_class, void **object)
{
	uint32_t fetched;
	*object = tcm_central_fetch(size_class, 1, &fetched);
	assert_non_null(*object);
	struct tcm_span *span = tcm_page_map_get((uintptr_t)*object >> TCM_PAGE_SHIFT);
	assert_int_equal(span->start, (uintptr_t)*object);
	return span;
}

/* A 16 KiB kernel: a span of 4 KiB objects that starts 8 KiB past a kernel
 * page releases the three whole kernel pages inside it that hold only free
 * objects; the two kernel pages it shares with its neighbours keep their
 * bytes, and so do its live objects (before, a span not starting on a kernel
 * page released nothing). */
static void kernel_16k_release_inside_span_not_on_a_kernel_page(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_16K, TCM_OS_TESTING_MODERN_KERNEL);
	bootstrap_core();
	unsigned size_class = tcm_size_class_of(4096);
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	assert_int_equal(info->object_bytes, 4096);
	assert_int_equal(info->objects_per_span, 16);
	assert_true(tcm_size_classes[size_class].has_object_map);
	bool is_zeroed;
	struct tcm_span *before = tcm_page_heap_alloc(1, 0, &is_zeroed);
	assert_non_null(before);
	assert_int_equal(before->start % KERNEL_16K, 0);
	void *objects[16];
	fetch_into(size_class, 16, objects);
	qsort(objects, 16, sizeof(void *), compare_pointers);
	uintptr_t start = (uintptr_t)objects[0];
	assert_int_equal(start, before->start + TCM_PAGE_BYTES);
	memset((void *)start, 0xa5, 16 * 4096);
	for (int i = 1; i < 15; i++)
		assert_true(tcm_central_give_back_to_span(size_class, objects[i]));
	struct tcm_span *span = tcm_page_map_get(start >> TCM_PAGE_SHIFT);

	/* Bytes [8 KiB, 56 KiB) of the span: objects 2-13. */
	assert_int_equal(tcm_inside_release_span(span, size_class, start, SIZE_MAX), 3 * KERNEL_16K);
	assert_bytes(start + 2 * 4096, 12 * 4096, 0);
	assert_bytes(start, 4096, 0xa5);                              /* live */
	assert_bytes(start + 15 * 4096, 4096, 0xa5);                  /* live */
	assert_bytes(start + 4096 + sizeof(void *), 4096 - sizeof(void *), 0xa5);        /* free, kept */
	assert_bytes(start + 14 * 4096 + sizeof(void *), 4096 - sizeof(void *), 0xa5);   /* free, kept */

	assert_true(tcm_central_give_back_to_span(size_class, objects[0]));
	assert_true(tcm_central_give_back_to_span(size_class, objects[15]));
	before->next = NULL;
	tcm_page_heap_free_spans(before);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A fetch makes resident the pages of the objects it hands out, not its whole
 * span: the objects are claimed under the class lock without a write into
 * them, and faulted in and linked once it is dropped (issue 12: dash's first
 * two objects cost two pages of their spans, not four; a 4 KiB object from a
 * 64 KiB span, one page, not sixteen). Each later fetch makes its own objects
 * resident, and only those. */
static void a_fetch_makes_resident_only_the_pages_of_its_objects(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);   /* the real kernel's pages */
	bootstrap_core();
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned size_class = tcm_size_class_of(4096);
	void *object;
	struct tcm_span *span = fetch_fresh_span(size_class, &object);
	size_t span_bytes = span->npages * TCM_PAGE_BYTES;
	assert_true(span_bytes >= 8 * page);
	assert_true(is_resident((uintptr_t)object, 4096));
	assert_int_equal(unit_resident_pages(span->start, span_bytes, NULL), 4096 / page);

	void *more[3];
	fetch_into(size_class, 3, more);
	for (int i = 0; i < 3; i++) {
		assert_true((uintptr_t)more[i] >= span->start && (uintptr_t)more[i] < span->start + span_bytes);
		assert_true(is_resident((uintptr_t)more[i], 4096));
	}
	assert_int_equal(unit_resident_pages(span->start, span_bytes, NULL), 4 * 4096 / page);

	assert_true(tcm_central_give_back_to_span(size_class, object));
	for (int i = 0; i < 3; i++)
		assert_true(tcm_central_give_back_to_span(size_class, more[i]));
	assert_int_equal(in_use_bytes(), 0);
}

/* A kernel without MADV_POPULATE_WRITE (Linux 5.10) and 64 KiB pages: the
 * objects a fetch from a fresh span hands out are resident when it returns,
 * touched page by page with no lock held (before, populate failed and nothing
 * was made resident ahead of the writes). */
static void kernel_without_populate_write_fetched_objects_are_resident(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_BATCHED_RELEASE);
	bootstrap_core();
	unsigned size_class = tcm_size_class_of(4096);
	void *object;
	struct tcm_span *span = fetch_fresh_span(size_class, &object);
	assert_true(span->npages >= 8);
	assert_true(is_resident((uintptr_t)object, 4096));
	uint32_t rest = tcm_size_classes[size_class].objects_per_span - 1;
	void **others = calloc(rest, sizeof(void *));
	assert_non_null(others);
	fetch_into(size_class, rest, others);
	for (uint32_t i = 0; i < rest; i++)
		assert_true(is_resident((uintptr_t)others[i], 4096));
	assert_true(is_resident(span->start, span->npages * TCM_PAGE_BYTES));
	assert_true(tcm_central_give_back_to_span(size_class, object));
	for (uint32_t i = 0; i < rest; i++)
		assert_true(tcm_central_give_back_to_span(size_class, others[i]));
	free(others);
	assert_int_equal(in_use_bytes(), 0);
}

/* A 64 KiB kernel: the populate of a claim that does not start on a kernel
 * page does not turn populate off (before, its EINVAL was taken for a kernel
 * without MADV_POPULATE_WRITE): the objects of both spans, one not on a kernel
 * page and one on it, are resident as their fetches return. */
static void kernel_64k_unaligned_populate_leaves_populate_on(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	bootstrap_core();
	bool is_zeroed;
	struct tcm_span *head = tcm_page_heap_alloc(1, 0, &is_zeroed);
	assert_int_equal(head->start % KERNEL_64K, 0);
	unsigned first_class = tcm_size_class_of(4096), second_class = tcm_size_class_of(2048);
	uint32_t first_count = tcm_size_classes[first_class].objects_per_span;
	uint32_t second_count = tcm_size_classes[second_class].objects_per_span;
	void **first_objects = calloc(first_count, sizeof(void *));
	void **second_objects = calloc(second_count, sizeof(void *));
	assert_non_null(first_objects);
	assert_non_null(second_objects);
	fetch_into(first_class, first_count, first_objects);
	struct tcm_span *first = tcm_page_map_get((uintptr_t)first_objects[0] >> TCM_PAGE_SHIFT);
	assert_int_equal(first->start, head->start + TCM_PAGE_BYTES);
	assert_int_equal(first->npages, 8);
	struct tcm_span *filler = tcm_page_heap_alloc(7, 0, &is_zeroed);
	assert_int_equal(filler->start, first->start + 8 * TCM_PAGE_BYTES);
	fetch_into(second_class, second_count, second_objects);
	struct tcm_span *second = tcm_page_map_get((uintptr_t)second_objects[0] >> TCM_PAGE_SHIFT);
	assert_int_equal(second->start, head->start + KERNEL_64K * 2);
	assert_true(is_resident(second->start, second->npages * TCM_PAGE_BYTES));
	assert_true(is_resident(first->start, first->npages * TCM_PAGE_BYTES));
	for (uint32_t i = 0; i < first_count; i++)
		assert_true(tcm_central_give_back_to_span(first_class, first_objects[i]));
	for (uint32_t i = 0; i < second_count; i++)
		assert_true(tcm_central_give_back_to_span(second_class, second_objects[i]));
	free(first_objects);
	free(second_objects);
	head->next = filler;
	filler->next = NULL;
	tcm_page_heap_free_spans(head);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A span that had whole pages released inside it and then emptied goes back
 * to the page heap committed; carved again, the objects each fetch hands out
 * are resident when it returns, their released pages touched with no lock held
 * (before, only a span from released memory was made resident, and the carves
 * under the class lock faulted the released pages in one by one). */
static void span_with_pages_released_inside_hands_out_resident_objects_again(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);   /* the real kernel's pages */
	bootstrap_core();
	unsigned size_class = tcm_size_class_of(1024);
	uint32_t per_span = tcm_size_classes[size_class].objects_per_span;
	size_t span_bytes = (size_t)tcm_size_classes[size_class].span_pages * TCM_PAGE_BYTES;
	void **objects = calloc(per_span, sizeof(void *));
	assert_non_null(objects);
	fetch_into(size_class, per_span, objects);
	qsort(objects, per_span, sizeof(void *), compare_pointers);
	uintptr_t start = (uintptr_t)objects[0];
	memset((void *)start, 0xa5, (size_t)per_span * 1024);
	for (uint32_t i = 1; i + 1 < per_span; i++)
		assert_true(tcm_central_give_back_to_span(size_class, objects[i]));
	struct tcm_span *span = tcm_page_map_get(start >> TCM_PAGE_SHIFT);
	assert_true(tcm_inside_release_span(span, size_class, start, SIZE_MAX) > 0);
	assert_false(is_resident(start, span_bytes));
	assert_true(tcm_central_give_back_to_span(size_class, objects[0]));
	assert_true(tcm_central_give_back_to_span(size_class, objects[per_span - 1]));
	assert_int_equal(in_use_bytes(), 0);

	void *object;
	span = fetch_fresh_span(size_class, &object);
	assert_int_equal(span->start, start);   /* the committed span, not released memory */
	assert_true(is_resident((uintptr_t)object, 1024));
	fetch_into(size_class, per_span - 1, objects);
	for (uint32_t i = 0; i + 1 < per_span; i++)
		assert_true(is_resident((uintptr_t)objects[i], 1024));
	assert_true(is_resident(start, span_bytes));
	assert_true(tcm_central_give_back_to_span(size_class, object));
	for (uint32_t i = 0; i + 1 < per_span; i++)
		assert_true(tcm_central_give_back_to_span(size_class, objects[i]));
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(objects);
}

/* Spans of 1 KiB objects with their first object kept on the real kernel's
 * pages: the bytes of whole free kernel pages each holds, one run of them. */
static size_t free_kernel_bytes_per_span(void)
{
	unsigned size_class = tcm_size_class_of(1024);
	size_t span_bytes = (size_t)tcm_size_classes[size_class].span_pages * TCM_PAGE_BYTES;
	size_t kernel_page = tcm_os_kernel_page_bytes();
	assert_int_equal(tcm_size_classes[size_class].first_object_offset, 0);
	return span_bytes - kernel_page;
}

/* Gives back the objects free_inside_spans kept: the heap is empty again. */
static void give_back_kept(void **kept, uint32_t spans)
{
	for (uint32_t i = 0; i < spans; i++)
		assert_true(tcm_central_give_back_to_span(tcm_size_class_of(1024), kept[i]));
	free(kept);
	assert_int_equal(in_use_bytes(), 0);
}

static uint64_t inside_span_release_calls(void)
{
	uint64_t bytes, calls;
	tcm_inside_release_totals(&bytes, &calls);
	return calls;
}

/* One step of the walk takes the free pages of many spans (up to 32) and
 * releases them together: one system call where the kernel batches, one
 * madvise per span where it does not (before, one madvise per span always:
 * 60 us each on this guest). */
static void release_inside_spans_releases_many_spans_in_one_call(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);   /* the real kernel's pages */
	bootstrap_core();
	void **kept;
	uint32_t spans = free_inside_spans(1, &kept);
	assert_true(spans >= 8);
	size_t step_spans = spans < 32 ? spans : 32;
	size_t released = tcm_inside_release_walk(SIZE_MAX, SIZE_MAX);
	assert_int_equal(released, step_spans * free_kernel_bytes_per_span());
	assert_int_equal(inside_span_release_calls(), unit_kernel_batches_release() ? 1 : step_spans);
	while (tcm_inside_release_walk(SIZE_MAX, SIZE_MAX) != 0)
		;
	assert_int_equal(inside_span_released_bytes(), spans * free_kernel_bytes_per_span());
	give_back_kept(kept, spans);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A span whose free pages did not all fit in a step's max_bytes is taken up
 * again by a later step (before, it counted as released and was skipped until
 * more of its objects came back). */
static void release_inside_spans_goes_on_with_a_span_cut_short(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);
	bootstrap_core();
	void **kept;
	uint32_t spans = free_inside_spans(1, &kept);
	size_t kernel_page = tcm_os_kernel_page_bytes();
	assert_true(free_kernel_bytes_per_span() >= 2 * kernel_page);
	assert_int_equal(tcm_inside_release_walk(kernel_page, SIZE_MAX), kernel_page);
	while (tcm_inside_release_walk(SIZE_MAX, SIZE_MAX) != 0)
		;
	assert_int_equal(inside_span_released_bytes(), spans * free_kernel_bytes_per_span());
	give_back_kept(kept, spans);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(fetch_returns_distinct_objects_of_class),
	cmocka_unit_test(fetch_of_one_object),
	cmocka_unit_test(fetch_takes_a_stack_entry_whole),
	cmocka_unit_test(give_back_beyond_capacity_goes_to_spans),
	cmocka_unit_test(thread_exit_give_back_may_exceed_capacity),
	cmocka_unit_test(give_back_with_class_lock_busy_does_not_wait),
	cmocka_unit_test(drain_returns_spans_to_page_heap),
	cmocka_unit_test(enomem_fetch_returns_null),
	cmocka_unit_test(concurrent_fetch_and_give_back),
	cmocka_unit_test(fresh_span_offsets_free_pages_inside_spans),
	cmocka_unit_test(kernel_16k_release_inside_span_not_on_a_kernel_page),
	cmocka_unit_test(a_fetch_makes_resident_only_the_pages_of_its_objects),
	cmocka_unit_test(kernel_without_populate_write_fetched_objects_are_resident),
	cmocka_unit_test(kernel_64k_unaligned_populate_leaves_populate_on),
	cmocka_unit_test(span_with_pages_released_inside_hands_out_resident_objects_again),
	cmocka_unit_test(release_inside_spans_releases_many_spans_in_one_call),
	cmocka_unit_test(release_inside_spans_goes_on_with_a_span_cut_short),
};

UNIT_MAIN("central", tests)
