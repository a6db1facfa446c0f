/* tests/unit/release_test.c - the life stages and the release steps: the state
 * only moves forward; a drain step trims central stacks back to capacity, then
 * (without the capacity) empties them and their spans go back to the page
 * heap; in DRAINING give-backs go on the stacks past their capacity (for
 * NORMAL with the class lock busy see central_test); a release step madvises
 * at most its chunk, and once the page heap has nothing free, whole free pages
 * inside partly used spans, whose objects are handed out again later; on a
 * kernel with 64 KiB pages (os.c's emulation), trim and the release step give
 * back whole kernel pages only, never a live block's byte; in
 * DRAINING every thread's next free hands its cache's surplus
 * back and refills stop growing the lists, and while the drain asks for help
 * the freeing thread releases what it empties; in EXITING a dying thread drops
 * its cache in O(1). */
#include "unit.h"

#include "central.h"
#include "inside_release.h"
#include "core.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "release.h"
#include "size_class.h"
#include "span.h"
#include "state.h"
#include "thread_cache.h"

#include <pthread.h>
#include <stdlib.h>

#define CLASS_64 4

static uint64_t in_use_bytes(void)
{
	struct tcm_page_heap_stats stats;
	tcm_page_heap_stats(&stats);
	return stats.in_use_bytes;
}

static void state_moves_forward_only(void **state)
{
	(void)state;
	assert_int_equal(tcm_state_get(), TCM_STATE_NORMAL);
	assert_false(tcm_state_advance(TCM_STATE_NORMAL));
	assert_true(tcm_state_advance(TCM_STATE_DRAINING));
	assert_false(tcm_state_advance(TCM_STATE_DRAINING));
	assert_false(tcm_state_advance(TCM_STATE_NORMAL));
	assert_int_equal(tcm_state_get(), TCM_STATE_DRAINING);
	assert_true(tcm_state_advance(TCM_STATE_EXITING));
	assert_int_equal(tcm_state_get(), TCM_STATE_EXITING);
}

/* Fetches `entries` whole batches of class 64 into a glibc-allocated array. */
static void **fetch_batches(size_t entries)
{
	uint32_t batch = tcm_size_classes[CLASS_64].batch_objects;
	void **chains = calloc(entries, sizeof(void *));
	assert_non_null(chains);
	for (size_t i = 0; i < entries; i++) {
		uint32_t count;
		chains[i] = tcm_central_fetch(CLASS_64, batch, &count);
		assert_non_null(chains[i]);
		assert_int_equal(count, batch);
	}
	return chains;
}

/* Gives back `entries` whole batches of class 64 (as a dying thread would when
 * is_thread_exit). Returns the batch size. */
static uint32_t give_back_batches(size_t entries, bool is_thread_exit)
{
	uint32_t batch = tcm_size_classes[CLASS_64].batch_objects;
	void **chains = fetch_batches(entries);
	for (size_t i = 0; i < entries; i++)
		tcm_central_give_back(CLASS_64, chains[i], batch, is_thread_exit);
	free(chains);
	return batch;
}

static int compare_pointers(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* Fetches count objects of size_class (several fetches if need be) into out[]. */
static void fetch_objects(unsigned size_class, uint32_t count, void **out)
{
	uint32_t got = 0;
	while (got < count) {
		uint32_t fetched;
		void *chain = tcm_central_fetch(size_class, count - got, &fetched);
		assert_non_null(chain);
		assert_true(got + fetched <= count);
		for (; chain != NULL; chain = *(void **)chain)
			out[got++] = chain;
	}
}

/* When the page heap has no free span left, a release step frees the whole
 * kernel pages of a partly used span that hold only free objects: of a span
 * of 1 KiB objects with only its first and last object live, every page but
 * the first and the last goes back (and reads zero). The objects on them are
 * stranded: fetches hand out the free objects of the kept pages first, then
 * the stranded ones (linked again, their pages faulted back in), and the span
 * still empties into the page heap once everything comes back. A span that
 * another releaser has out is left alone. */
static void release_step_frees_pages_inside_a_used_span(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	unsigned size_class = tcm_size_class_of(1024);
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t kernel_page = tcm_os_kernel_page_bytes();
	size_t span_bytes = (size_t)info->objects_per_span * info->object_bytes;
	uint32_t per_page = (uint32_t)(kernel_page / info->object_bytes);
	uint32_t stranded_count = info->objects_per_span - 2 * per_page;
	assert_true(tcm_size_classes[size_class].has_object_map);
	assert_true(span_bytes >= 3 * kernel_page && span_bytes % kernel_page == 0);
	/* One fresh span, carved whole: object i at start + i KiB. */
	void **objects = calloc(info->objects_per_span, sizeof(void *));
	assert_non_null(objects);
	fetch_objects(size_class, info->objects_per_span, objects);
	qsort(objects, info->objects_per_span, sizeof(void *), compare_pointers);
	uintptr_t start = (uintptr_t)objects[0];
	assert_int_equal((uintptr_t)objects[info->objects_per_span - 1], start + span_bytes - info->object_bytes);
	memset((void *)start, 0xa5, span_bytes);
	for (uint32_t i = 1; i + 1 < info->objects_per_span; i++)
		tcm_central_give_back(size_class, objects[i], 1, false);
	tcm_central_drain(size_class, 0);

	/* A span another releaser has out (between its two holds) is skipped. */
	struct tcm_span *span = tcm_page_map_get(start >> TCM_PAGE_SHIFT);
	span->is_releasing_inside = 1;
	assert_int_equal(tcm_release_step(SIZE_MAX), 0);
	span->is_releasing_inside = 0;
	assert_int_equal(tcm_release_step(SIZE_MAX), span_bytes - 2 * kernel_page);
	for (uintptr_t byte = start + kernel_page; byte < start + span_bytes - kernel_page; byte += 256)
		assert_int_equal(*(unsigned char *)byte, 0);
	assert_int_equal(*(unsigned char *)(start + kernel_page - 1), 0xa5);
	assert_int_equal(*(unsigned char *)(start + span_bytes - kernel_page + 100), 0xa5);   /* past any link */
	assert_int_equal(tcm_release_step(SIZE_MAX), 0);   /* nothing freed since */

	/* The free objects of the two kept pages are handed out first... */
	void **again = calloc(info->objects_per_span, sizeof(void *));
	assert_non_null(again);
	uint32_t kept_count = 2 * (per_page - 1);
	fetch_objects(size_class, kept_count, again);
	for (uint32_t i = 0; i < kept_count; i++) {
		uintptr_t address = (uintptr_t)again[i];
		assert_true(address >= start && address < start + span_bytes);
		assert_true(address < start + kernel_page || address >= start + span_bytes - kernel_page);
	}
	/* ...then the stranded ones, each once, rather than a new span. */
	fetch_objects(size_class, stranded_count, again + kept_count);
	qsort(again + kept_count, stranded_count, sizeof(void *), compare_pointers);
	for (uint32_t i = 0; i < stranded_count; i++) {
		uintptr_t address = (uintptr_t)again[kept_count + i];
		assert_int_equal(address, start + kernel_page + (uintptr_t)i * info->object_bytes);
		assert_int_equal(*(unsigned char *)(address + 100), 0);   /* a released page, faulted in afresh */
	}
	assert_int_equal(in_use_bytes(), (uint64_t)info->span_pages * TCM_PAGE_BYTES);
	for (uint32_t i = 0; i < kept_count + stranded_count; i++)
		tcm_central_give_back(size_class, again[i], 1, false);
	tcm_central_give_back(size_class, objects[0], 1, false);
	tcm_central_give_back(size_class, objects[info->objects_per_span - 1], 1, false);
	tcm_central_drain(size_class, 0);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(again);
	free(objects);
}

/* The smallest class with an object map whose objects tile the kernel page
 * from the span's start, two or more to a page, in spans of at least
 * kernel_pages kernel pages (fails the test if there is none). */
static unsigned class_tiling_kernel_pages(size_t kernel_pages)
{
	size_t kernel_page = tcm_os_kernel_page_bytes();
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		if (info->has_object_map && info->first_object_offset == 0 && kernel_page % info->object_bytes == 0 &&
		    kernel_page / info->object_bytes >= 2 &&
		    (size_t)info->objects_per_span * info->object_bytes >= kernel_pages * kernel_page)
			return size_class;
	}
	fail_msg("no class tiles %zu kernel pages of %zu bytes", kernel_pages, kernel_page);
	return 0;
}

/* A fetch that reaches a span's stranded objects takes those of one kernel
 * page only: linking an object (its first word) faults its page back in, and
 * a fetch is on a malloc's path (a refill), so it takes at most one page fault
 * however many objects it asked for.
 * A span with its first and last object live, released inside: each fetch
 * asking for all the stranded objects gets the lowest ones left, all starting
 * on one kernel page, until every one has been handed out once (spans of four
 * kernel pages or more: two of them stranded). */
static void a_fetch_faults_in_at_most_one_released_page(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	size_t kernel_page = tcm_os_kernel_page_bytes();
	unsigned size_class = class_tiling_kernel_pages(4);
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t span_bytes = (size_t)info->objects_per_span * info->object_bytes;
	uint32_t per_page = (uint32_t)(kernel_page / info->object_bytes);
	uint32_t stranded_count = info->objects_per_span - 2 * per_page;
	void **objects = calloc(info->objects_per_span, sizeof(void *));
	assert_non_null(objects);
	fetch_objects(size_class, info->objects_per_span, objects);
	qsort(objects, info->objects_per_span, sizeof(void *), compare_pointers);
	uintptr_t start = (uintptr_t)objects[0];
	for (uint32_t i = 1; i + 1 < info->objects_per_span; i++)
		tcm_central_give_back(size_class, objects[i], 1, false);
	tcm_central_drain(size_class, 0);
	assert_int_equal(tcm_release_step(SIZE_MAX), span_bytes - 2 * kernel_page);
	void **kept = calloc(info->objects_per_span, sizeof(void *));
	assert_non_null(kept);
	fetch_objects(size_class, 2 * (per_page - 1), kept);   /* the kept pages' free objects */

	uintptr_t next = start + kernel_page;   /* the lowest stranded object */
	for (uint32_t handed_out = 0; handed_out < stranded_count;) {
		uint32_t fetched;
		void *chain = tcm_central_fetch(size_class, stranded_count, &fetched);
		assert_non_null(chain);
		assert_int_equal(fetched, per_page);
		void *got[64];
		uint32_t count = 0;
		for (; chain != NULL; chain = *(void **)chain)
			got[count++] = chain;
		assert_int_equal(count, fetched);
		qsort(got, count, sizeof(void *), compare_pointers);
		for (uint32_t i = 0; i < count; i++, next += info->object_bytes)
			assert_int_equal((uintptr_t)got[i], next);
		for (uint32_t i = 0; i < count; i++)
			kept[2 * (per_page - 1) + handed_out + i] = got[i];
		handed_out += count;
	}
	assert_int_equal(next, start + span_bytes - kernel_page);
	for (uint32_t i = 0; i < 2 * (per_page - 1) + stranded_count; i++)
		tcm_central_give_back(size_class, kept[i], 1, false);
	tcm_central_give_back(size_class, objects[0], 1, false);
	tcm_central_give_back(size_class, objects[info->objects_per_span - 1], 1, false);
	tcm_central_drain(size_class, 0);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(kept);
	free(objects);
}

/* A span whose free pages were just released goes to the end of its class's
 * list: fetches take the free objects of spans still resident first, rather
 * than the released span's, whose stranded objects would fault their pages
 * back in. Two spans of a class that tiles the kernel page, both with free
 * objects: A with only its first and last object live (its inner pages are
 * released), B with one live object on each kernel page (nothing of it can
 * be). The next fetch hands out B's objects, before A's kept ones, also after
 * a later release inside B (one more of its objects freed) that found nothing
 * to release, which leaves B where it was: only a span with objects just
 * stranded goes to the end. */
static void a_span_released_inside_is_fetched_from_last(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	size_t kernel_page = tcm_os_kernel_page_bytes();
	unsigned size_class = class_tiling_kernel_pages(3);
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t span_bytes = (size_t)info->objects_per_span * info->object_bytes;
	uint32_t total = 2 * info->objects_per_span;
	void **objects = calloc(total, sizeof(void *));
	assert_non_null(objects);
	fetch_objects(size_class, total, objects);   /* two fresh spans, carved whole */
	qsort(objects, total, sizeof(void *), compare_pointers);
	struct tcm_span *span_a = tcm_page_map_get((uintptr_t)objects[0] >> TCM_PAGE_SHIFT);
	struct tcm_span *span_b = tcm_page_map_get((uintptr_t)objects[total - 1] >> TCM_PAGE_SHIFT);
	assert_ptr_not_equal(span_a, span_b);
	bool *is_live = calloc(total, sizeof(bool));
	assert_non_null(is_live);
	for (uint32_t i = 0; i < total; i++) {
		struct tcm_span *span = tcm_page_map_get((uintptr_t)objects[i] >> TCM_PAGE_SHIFT);
		uintptr_t offset = (uintptr_t)objects[i] - span->start;
		is_live[i] = span == span_a ? offset == 0 || offset == span_bytes - info->object_bytes
					    : offset % kernel_page == 0 || offset == kernel_page + info->object_bytes;
		if (!is_live[i])
			tcm_central_give_back(size_class, objects[i], 1, false);
	}
	tcm_central_drain(size_class, 0);
	assert_int_equal(tcm_release_step(SIZE_MAX), span_bytes - 2 * kernel_page);   /* A's inner pages */
	void *b_later = (void *)(span_b->start + kernel_page + info->object_bytes);
	for (uint32_t i = 0; i < total; i++)
		if (objects[i] == b_later)
			is_live[i] = false;
	tcm_central_give_back(size_class, b_later, 1, false);
	tcm_central_drain(size_class, 0);
	assert_int_equal(tcm_inside_release_span(span_b, size_class, span_b->start, SIZE_MAX), 0);

	uint32_t fetched;
	void *chain = tcm_central_fetch(size_class, 1, &fetched);
	assert_non_null(chain);
	assert_int_equal(fetched, 1);
	assert_ptr_equal(tcm_page_map_get((uintptr_t)chain >> TCM_PAGE_SHIFT), span_b);
	tcm_central_give_back(size_class, chain, 1, false);
	for (uint32_t i = 0; i < total; i++)
		if (is_live[i])
			tcm_central_give_back(size_class, objects[i], 1, false);
	tcm_central_drain(size_class, 0);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(is_live);
	free(objects);
}

static void drain_step_trims_to_capacity_then_empties(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	uint32_t capacity = tcm_central_capacity(CLASS_64);
	uint32_t batch = give_back_batches(capacity + 10, true);
	size_t moved = 0, step;
	while ((step = tcm_release_drain_step(true)) != 0) {
		assert_true(step <= batch);          /* one entry per step */
		moved += step;
	}
	assert_int_equal(moved, 10 * batch);
	/* Without the capacity the rest goes, and the emptied spans leave central. */
	while ((step = tcm_release_drain_step(false)) != 0)
		moved += step;
	assert_int_equal(moved, (capacity + 10) * batch);
	assert_int_equal(tcm_central_cached_bytes(), 0);
	assert_int_equal(in_use_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* In NORMAL a full stack sends give-backs to the spans (central_test); from
 * DRAINING on they all go on the stack, past its capacity. */
static void draining_give_back_pushes_past_capacity(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	uint32_t capacity = tcm_central_capacity(CLASS_64);
	assert_true(tcm_core_enter_draining());
	uint32_t batch = give_back_batches(capacity + 10, false);
	assert_int_equal(tcm_central_drain(CLASS_64, capacity), 10 * batch);
	assert_int_equal(tcm_central_drain(CLASS_64, 0), capacity * batch);
}

static void release_step_is_bounded_by_its_chunk(void **state)
{
	(void)state;
	void *block = tcm_core_malloc((size_t)10 << 20);
	assert_non_null(block);
	memset(block, 1, (size_t)10 << 20);
	tcm_core_free(block);
	uint64_t pending = tcm_release_pending_bytes();
	assert_true(pending >= ((uint64_t)10 << 20));
	size_t chunk = (size_t)2 << 20;
	size_t released = tcm_release_step(chunk);
	assert_true(released > 0 && released <= chunk);
	assert_int_equal(tcm_release_pending_bytes(), pending - released);
	assert_int_equal(tcm_release_step(TCM_PAGE_BYTES - 1), 0);   /* below one page: nothing */
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- kernel pages larger than tcm's (os.c's emulation) ----------------------- */

#define KERNEL_64K ((size_t)64 << 10)

static void assert_bytes(const char *start, size_t len, unsigned char byte)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)start[i] != byte)
			fail_msg("byte %zu of [%p, +%zu) is 0x%02x, not 0x%02x", i, (const void *)start, len,
				 (unsigned char)start[i], byte);
}

/* The bytes of the whole 64 KiB kernel pages inside [start, start + len). */
static uint64_t whole_kernel_page_bytes(const char *start, size_t len)
{
	uintptr_t first = ((uintptr_t)start + KERNEL_64K - 1) & ~(KERNEL_64K - 1);
	uintptr_t end = ((uintptr_t)start + len) & ~(KERNEL_64K - 1);
	return end > first ? end - first : 0;
}

/* A 64 KiB kernel: malloc_trim's path (drain, then release steps until one
 * releases nothing, as the shutdown drain does) gives back exactly the whole
 * kernel pages of the freed 264 KiB blocks and none of the live blocks
 * between them; what is left pending is the freed blocks' edges, which no
 * madvise can take (before, the first step's madvise was rounded up over 56
 * KiB of a live block and the next failed with EINVAL at an unaligned start,
 * ending the drain with whole free kernel pages left). */
static void kernel_64k_trim_releases_whole_kernel_pages_and_keeps_live_blocks(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	enum { BLOCKS = 10 };
	size_t block_bytes = 33 * TCM_PAGE_BYTES;   /* large; not a kernel page multiple */
	char *blocks[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		blocks[i] = tcm_core_malloc(block_bytes);
		assert_non_null(blocks[i]);
		memset(blocks[i], 0x30 + i, block_bytes);
		if (i > 0)
			assert_ptr_equal(blocks[i], blocks[i - 1] + block_bytes);   /* neighbours */
	}
	uint64_t whole = 0;
	for (int i = 0; i < BLOCKS; i += 2) {
		whole += whole_kernel_page_bytes(blocks[i], block_bytes);
		tcm_core_free(blocks[i]);
	}
	size_t released = tcm_core_release_free_memory(SIZE_MAX);
	for (int i = 1; i < BLOCKS; i += 2)
		assert_bytes(blocks[i], block_bytes, 0x30 + i);
	assert_int_equal(released, whole);
	assert_int_equal(tcm_release_step((size_t)2 << 20), 0);
	assert_int_equal(tcm_release_pending_bytes(), BLOCKS / 2 * block_bytes - whole);
	for (int i = 1; i < BLOCKS; i += 2)
		tcm_core_free(blocks[i]);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A 64 KiB kernel: a release step of one tcm page (release.chunk_kib = 8)
 * gives back one whole kernel page, and nothing of the live block after the
 * free one (before, it madvised the free block's last 8 KiB, which the
 * kernel rounded up over the live block's first 56 KiB). */
static void kernel_64k_release_step_below_a_kernel_page_releases_one(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	size_t block_bytes = 33 * TCM_PAGE_BYTES;
	char *block = tcm_core_malloc(block_bytes);
	char *live = tcm_core_malloc(block_bytes);
	assert_ptr_equal(live, block + block_bytes);
	memset(live, 0x5a, block_bytes);
	tcm_core_free(block);
	size_t released = tcm_release_step(TCM_PAGE_BYTES);
	assert_bytes(live, block_bytes, 0x5a);
	assert_int_equal(released, KERNEL_64K);
	tcm_core_free(live);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- quiesce in DRAINING ---------------------------------------------------- */

#define OBJECTS 4096
static void *objects[OBJECTS];

static void *draining_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < OBJECTS; i++)
		objects[i] = tcm_core_malloc(256);
	for (int i = 0; i < OBJECTS - 1; i++)
		tcm_core_free(objects[i]);
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	/* Normal budget (4 MiB): 1 MiB of frees stays in the cache. */
	UNIT_THREAD_CHECK(cache->cached_bytes > TCM_THREAD_CACHE_DRAINING_BYTES);
	UNIT_THREAD_CHECK(tcm_state_advance(TCM_STATE_DRAINING));
	tcm_thread_cache_enter_draining();
	tcm_core_free(objects[OBJECTS - 1]);   /* the next free hands the surplus back */
	UNIT_THREAD_CHECK(cache->cached_bytes <= TCM_THREAD_CACHE_DRAINING_BYTES);
	/* Refills no longer grow a list (scavenging may shrink it): empty the
	 * class's list many times over. */
	unsigned size_class = tcm_size_class_of(256);
	uint32_t max_count = cache->lists[size_class].max_count;
	for (int i = 0; i < OBJECTS; i++)
		objects[i] = tcm_core_malloc(256);
	UNIT_THREAD_CHECK(cache->lists[size_class].max_count <= max_count);
	for (int i = 0; i < OBJECTS; i++)
		tcm_core_free(objects[i]);
	UNIT_THREAD_CHECK(cache->cached_bytes <= TCM_THREAD_CACHE_DRAINING_BYTES);
	return NULL;
}

static void draining_hands_cache_surplus_back_on_next_free(void **state)
{
	(void)state;
	tcm_core_set_thread_cache_budget((size_t)4 << 20, (size_t)64 << 20);
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, draining_worker, NULL), 0);
	pthread_join(thread, NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
}

/* ---- freeing threads help the drain ------------------------------------------ */

static uint64_t released_so_far(void)
{
	uint64_t bytes, calls;
	tcm_release_totals(&bytes, &calls);
	return bytes;
}

/* Mallocs and frees OBJECTS objects of 1 KiB (4 MiB, whole spans); returns
 * what was released while it freed them. */
static uint64_t released_by_frees(void)
{
	for (int i = 0; i < OBJECTS; i++)
		objects[i] = tcm_core_malloc(1024);
	uint64_t before = released_so_far();
	for (int i = 0; i < OBJECTS; i++)
		tcm_core_free(objects[i]);
	return released_so_far() - before;
}

static void *helping_worker(void *arg)
{
	(void)arg;
	/* Asked for help in NORMAL: nobody helps. */
	tcm_release_ask_for_help((size_t)1 << 20);
	UNIT_THREAD_CHECK(released_by_frees() == 0);
	UNIT_THREAD_CHECK(tcm_core_enter_draining());
	/* DRAINING, not asked: the frees go on the stacks, as the worker waits
	 * out a storm. */
	tcm_release_ask_for_help(0);
	UNIT_THREAD_CHECK(released_by_frees() == 0);
	/* Asked: the emptied spans reach the page heap and the freeing thread
	 * releases them itself, about as much as it gave back. */
	while (tcm_release_drain_step(false) != 0)
		;
	tcm_release_ask_for_help((size_t)1 << 20);
	UNIT_THREAD_CHECK(released_by_frees() >= (uint64_t)2 << 20);
	/* EXITING: no more help, asked or not. */
	UNIT_THREAD_CHECK(tcm_core_enter_exiting());
	UNIT_THREAD_CHECK(released_by_frees() == 0);
	return NULL;
}

static void freeing_threads_release_only_while_help_is_asked_for_in_draining(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, helping_worker, NULL), 0);
	pthread_join(thread, NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- thread exit in EXITING ------------------------------------------------- */

static void *caching_worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < 256; i++)
		objects[i] = tcm_core_malloc(512);
	for (int i = 0; i < 256; i++)
		tcm_core_free(objects[i]);
	UNIT_THREAD_CHECK(tcm_thread_cache_self.cached_bytes > 0);
	return NULL;
}

static uint64_t central_bytes_after_thread_exit(void)
{
	uint64_t before = tcm_central_cached_bytes();
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, caching_worker, NULL), 0);
	pthread_join(thread, NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	assert_int_equal(tcm_thread_cache_live_threads(), 0);
	return tcm_central_cached_bytes() - before;
}

static void exiting_thread_exit_drops_cache_in_place(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	/* Control: in NORMAL the dying thread's cache reaches the central lists. */
	uint64_t handed_normal = central_bytes_after_thread_exit();
	assert_true(handed_normal > 0);
	assert_true(tcm_state_advance(TCM_STATE_EXITING));
	/* The worker's fetches take from central first, so compare against what a
	 * hand-off would have added: in EXITING nothing comes back. */
	uint64_t central_before = tcm_central_cached_bytes();
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, caching_worker, NULL), 0);
	pthread_join(thread, NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	assert_true(tcm_central_cached_bytes() < central_before + handed_normal);
	assert_int_equal(tcm_thread_cache_live_threads(), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_moves_forward_only),
		cmocka_unit_test(drain_step_trims_to_capacity_then_empties),
		cmocka_unit_test(draining_give_back_pushes_past_capacity),
		cmocka_unit_test(release_step_is_bounded_by_its_chunk),
		cmocka_unit_test(release_step_frees_pages_inside_a_used_span),
		cmocka_unit_test(a_fetch_faults_in_at_most_one_released_page),
		cmocka_unit_test(a_span_released_inside_is_fetched_from_last),
		cmocka_unit_test(kernel_64k_trim_releases_whole_kernel_pages_and_keeps_live_blocks),
		cmocka_unit_test(kernel_64k_release_step_below_a_kernel_page_releases_one),
		cmocka_unit_test(draining_hands_cache_surplus_back_on_next_free),
		cmocka_unit_test(freeing_threads_release_only_while_help_is_asked_for_in_draining),
		cmocka_unit_test(exiting_thread_exit_drops_cache_in_place),
	};
	return unit_main(argc, argv, "release", tests, sizeof(tests) / sizeof(tests[0]));
}
