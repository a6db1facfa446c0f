/* tests/unit/page_map_test.c - the page map: set/get round trips of span and
 * size class, NULL for pages never ensured and for addresses at or above
 * 2^TCM_ADDRESS_BITS, leaves on both sides of a leaf boundary, leaves
 * that never move once installed, and a fresh region's entries written on two
 * pages of its leaf.
 *
 * The pages used here are made up: addresses in [2^47, 2^48) that the page map
 * covers but the kernel never hands to a process with 4-level paging, so no
 * real span can ever sit there. Entries are written under the page-heap lock
 * as page_map.h requires; nothing in this program uses the page heap. */
#include "unit.h"

#include "lock.h"
#include "page_heap.h"
#include "page_map.h"
#include "span.h"

#include <errno.h>
#include <pthread.h>

/* The first page of a leaf high in the covered range. */
#define HIGH_LEAF_INDEX(n) (((uintptr_t)1 << TCM_PAGE_MAP_ROOT_BITS) - 2 - (n))
#define LEAF_FIRST_PAGE(index) ((uintptr_t)(index) << TCM_PAGE_MAP_LEAF_BITS)

static void set_locked(uintptr_t page, struct tcm_span *span, unsigned size_class)
{
	tcm_lock(tcm_page_heap_lock_object());
	tcm_page_map_set(page, span, size_class);
	tcm_unlock(tcm_page_heap_lock_object());
}

static void *address_of(uintptr_t page, size_t offset)
{
	return (void *)((page << TCM_PAGE_SHIFT) + offset);
}

static void set_get_round_trip(void **state)
{
	(void)state;
	static struct tcm_span span_a, span_b;
	uintptr_t page = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(0)) + 12345;
	assert_int_equal(tcm_page_map_ensure(page, 1), 0);
	assert_non_null(tcm_page_map_leaf_of(page));
	/* A fresh leaf is all zeros. */
	assert_null(tcm_page_map_get(page));
	assert_int_equal(tcm_page_map_size_class(address_of(page, 0)), 0);

	set_locked(page, &span_a, 7);
	assert_ptr_equal(tcm_page_map_get(page), &span_a);
	/* Every byte of the page reads the page's class. */
	assert_int_equal(tcm_page_map_size_class(address_of(page, 0)), 7);
	assert_int_equal(tcm_page_map_size_class(address_of(page, 4096)), 7);
	assert_int_equal(tcm_page_map_size_class(address_of(page, TCM_PAGE_BYTES - 1)), 7);
	/* Neighbours are untouched. */
	assert_null(tcm_page_map_get(page - 1));
	assert_null(tcm_page_map_get(page + 1));
	assert_int_equal(tcm_page_map_size_class(address_of(page + 1, 0)), 0);
	assert_int_equal(tcm_page_map_size_class(address_of(page, 0) - 1), 0);

	/* Overwrite, then clear. */
	set_locked(page, &span_b, 0);
	assert_ptr_equal(tcm_page_map_get(page), &span_b);
	assert_int_equal(tcm_page_map_size_class(address_of(page, 100)), 0);
	set_locked(page, NULL, 0);
	assert_null(tcm_page_map_get(page));
}

static void size_class_byte_round_trips(void **state)
{
	(void)state;
	static struct tcm_span span;
	uintptr_t first = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(1)) + 1000;
	assert_int_equal(tcm_page_map_ensure(first, 256), 0);
	/* Every value of the byte, each on its own page, then read them all back. */
	for (unsigned value = 0; value < 256; value++)
		set_locked(first + value, &span, value);
	for (unsigned value = 0; value < 256; value++) {
		assert_int_equal(tcm_page_map_size_class(address_of(first + value, 8)), value);
		assert_ptr_equal(tcm_page_map_get(first + value), &span);
	}
	/* The span pointer and the class are independent entries. */
	static struct tcm_span other;
	set_locked(first + 52, &other, 52);
	assert_ptr_equal(tcm_page_map_get(first + 52), &other);
	assert_int_equal(tcm_page_map_size_class(address_of(first + 52, 0)), 52);
}

/* The free path's lookup: the class and, for a small-object span, the exact
 * distance from the address to the span's end, from any page of the span. */
static void small_object_lookup_gives_distance_to_span_end(void **state)
{
	(void)state;
	uintptr_t first = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(1)) + 3000;
	static struct tcm_span span;
	span.start = first << TCM_PAGE_SHIFT;
	span.npages = 5;
	assert_int_equal(tcm_page_map_ensure(first, span.npages), 0);
	for (size_t page = 0; page < span.npages; page++)
		set_locked(first + page, &span, 17);
	uintptr_t end = span.start + span.npages * TCM_PAGE_BYTES;
	uintptr_t addresses[] = { span.start, span.start + 16, span.start + TCM_PAGE_BYTES + 3, end - 640, end - 1 };
	for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
		uint64_t bytes_to_span_end = 0;
		assert_int_equal(tcm_page_map_small_object((void *)addresses[i], &bytes_to_span_end), 17);
		assert_int_equal(bytes_to_span_end, end - addresses[i]);
	}
	/* A large span's page gives class 0; an address no leaf covers leaves the distance alone. */
	set_locked(first + 2, &span, 0);
	uint64_t bytes_to_span_end = 12345;
	assert_int_equal(tcm_page_map_small_object((void *)(span.start + 2 * TCM_PAGE_BYTES), &bytes_to_span_end), 0);
	bytes_to_span_end = 12345;
	assert_int_equal(tcm_page_map_small_object((void *)(uintptr_t)4096, &bytes_to_span_end), 0);
	assert_int_equal(bytes_to_span_end, 12345);
}

static void unmapped_addresses_read_null(void **state)
{
	(void)state;
	/* Leaves nobody ensured: low memory, and a high leaf this test never touches. */
	uintptr_t never_pages[] = {
		0,
		1,
		LEAF_FIRST_PAGE(1) + 17,
		LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(5)),
		LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(5)) + TCM_PAGE_MAP_LEAF_PAGES - 1,
	};
	for (size_t i = 0; i < sizeof(never_pages) / sizeof(never_pages[0]); i++) {
		assert_null(tcm_page_map_leaf_of(never_pages[i]));
		assert_null(tcm_page_map_get(never_pages[i]));
		assert_int_equal(tcm_page_map_size_class(address_of(never_pages[i], 64)), 0);
	}
	assert_int_equal(tcm_page_map_size_class(NULL), 0);
	int on_stack = 0;
	/* Nothing in this process ensured the stack's leaf. */
	assert_int_equal(tcm_page_map_size_class(&on_stack), 0);
	assert_null(tcm_page_map_get((uintptr_t)&on_stack >> TCM_PAGE_SHIFT));
}

static void addresses_beyond_48_bits_read_null(void **state)
{
	(void)state;
	uintptr_t limit = (uintptr_t)1 << TCM_ADDRESS_BITS;
	/* Make the last covered leaf exist, so the check is the range and not a missing leaf. */
	uintptr_t last_page = (limit >> TCM_PAGE_SHIFT) - 1;
	assert_int_equal(tcm_page_map_ensure(last_page, 1), 0);
	static struct tcm_span span;
	set_locked(last_page, &span, 3);
	assert_ptr_equal(tcm_page_map_get(last_page), &span);
	assert_int_equal(tcm_page_map_size_class((void *)(limit - 1)), 3);

	uintptr_t beyond[] = { limit, limit + TCM_PAGE_BYTES, limit * 2 + 5, (uintptr_t)1 << 63, UINTPTR_MAX };
	for (size_t i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
		assert_null(tcm_page_map_leaf_of(beyond[i] >> TCM_PAGE_SHIFT));
		assert_null(tcm_page_map_get(beyond[i] >> TCM_PAGE_SHIFT));
		assert_int_equal(tcm_page_map_size_class((void *)beyond[i]), 0);
	}
	/* Ensuring past the covered range fails instead of writing out of bounds. */
	assert_int_equal(tcm_page_map_ensure(limit >> TCM_PAGE_SHIFT, 1), ENOMEM);
	assert_int_equal(tcm_page_map_ensure(last_page, 2), ENOMEM);
}

static void ensure_across_leaf_boundary(void **state)
{
	(void)state;
	static struct tcm_span left_span, right_span;
	uintptr_t boundary = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(3));
	assert_null(tcm_page_map_leaf_of(boundary - 1));
	assert_null(tcm_page_map_leaf_of(boundary));
	assert_int_equal(tcm_page_map_ensure(boundary - 2, 4), 0);
	struct tcm_page_map_leaf *left = tcm_page_map_leaf_of(boundary - 1);
	struct tcm_page_map_leaf *right = tcm_page_map_leaf_of(boundary);
	assert_non_null(left);
	assert_non_null(right);
	assert_ptr_not_equal(left, right);
	assert_ptr_equal(tcm_page_map_leaf_of(boundary - TCM_PAGE_MAP_LEAF_PAGES), left);
	assert_ptr_equal(tcm_page_map_leaf_of(boundary + TCM_PAGE_MAP_LEAF_PAGES - 1), right);

	set_locked(boundary - 1, &left_span, 11);
	set_locked(boundary, &right_span, 12);
	assert_ptr_equal(tcm_page_map_get(boundary - 1), &left_span);
	assert_ptr_equal(tcm_page_map_get(boundary), &right_span);
	assert_int_equal(tcm_page_map_size_class(address_of(boundary, 0) - 1), 11);
	assert_int_equal(tcm_page_map_size_class(address_of(boundary, 0)), 12);

	/* Ensuring again keeps the installed leaves and their entries (a leaf never moves). */
	assert_int_equal(tcm_page_map_ensure(boundary - TCM_PAGE_MAP_LEAF_PAGES, 2 * TCM_PAGE_MAP_LEAF_PAGES), 0);
	assert_ptr_equal(tcm_page_map_leaf_of(boundary - 1), left);
	assert_ptr_equal(tcm_page_map_leaf_of(boundary), right);
	assert_ptr_equal(tcm_page_map_get(boundary - 1), &left_span);
	assert_ptr_equal(tcm_page_map_get(boundary), &right_span);
	/* The leaves beyond the range stay absent. */
	assert_null(tcm_page_map_leaf_of(boundary - TCM_PAGE_MAP_LEAF_PAGES - 1));
	assert_null(tcm_page_map_leaf_of(boundary + TCM_PAGE_MAP_LEAF_PAGES));
}

/* Pages of a leaf in memory now: a fresh leaf is its own mapping, none of it resident until
 * written. */
static size_t resident_pages_of(const struct tcm_page_map_leaf *leaf)
{
	return unit_resident_pages((uintptr_t)leaf, sizeof *leaf, NULL);
}

/* What a process's first allocation writes in the map (issue 12: each page costs a fault at
 * every start): a fresh region of 2048 pages records its first small span on each of its pages
 * and the free rest at both ends. A page's entries sit together, so that is two pages of the
 * leaf (the region's two ends), not four (an array each for span ends, spans and classes). */
static void a_fresh_regions_entries_take_two_pages_of_its_leaf(void **state)
{
	(void)state;
	const size_t region_pages = 2048, small_pages = 2;
	uintptr_t first = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(6)) + 70000;
	assert_int_equal(tcm_page_map_ensure(first, region_pages), 0);
	const struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(first);
	assert_non_null(leaf);
	assert_int_equal(resident_pages_of(leaf), 0);
	/* Counted in base pages also where transparent huge pages are always on. */
	uintptr_t leaf_first = (uintptr_t)leaf & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
	assert_int_equal(madvise((void *)leaf_first, (uintptr_t)(leaf + 1) - leaf_first, MADV_NOHUGEPAGE), 0);

	static struct tcm_span small, rest;
	small.start = first << TCM_PAGE_SHIFT;
	small.npages = small_pages;
	rest.start = small.start + small_pages * TCM_PAGE_BYTES;
	rest.npages = region_pages - small_pages;
	tcm_lock(tcm_page_heap_lock_object());
	for (size_t page = 0; page < small_pages; page++)
		tcm_page_map_set(first + page, &small, 4);
	tcm_page_map_set_span(first + small_pages, &rest);
	tcm_page_map_set_span(first + region_pages - 1, &rest);
	tcm_unlock(tcm_page_heap_lock_object());

	/* Two pages of 4 KiB; one where the kernel's pages are 64 KiB. */
	assert_in_range(resident_pages_of(leaf), 1, 2);
	uint64_t bytes_to_span_end = 0;
	assert_int_equal(tcm_page_map_small_object((void *)(small.start + 100), &bytes_to_span_end), 4);
	assert_int_equal(bytes_to_span_end, small_pages * TCM_PAGE_BYTES - 100);
	assert_ptr_equal(tcm_page_map_get(first + region_pages - 1), &rest);
}

#define RACE_THREADS 4
#define RACE_LEAVES  8

static pthread_barrier_t race_barrier;

static void *ensure_racer(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&race_barrier);
	uintptr_t first = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(20));
	UNIT_THREAD_CHECK(tcm_page_map_ensure(first, RACE_LEAVES * TCM_PAGE_MAP_LEAF_PAGES) == 0);
	return NULL;
}

static void concurrent_ensure_installs_one_leaf_each(void **state)
{
	(void)state;
	pthread_t threads[RACE_THREADS];
	pthread_barrier_init(&race_barrier, NULL, RACE_THREADS);
	for (int i = 0; i < RACE_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, ensure_racer, NULL), 0);
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&race_barrier);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);

	uintptr_t first = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(20));
	struct tcm_page_map_leaf *leaves[RACE_LEAVES];
	for (int i = 0; i < RACE_LEAVES; i++) {
		leaves[i] = tcm_page_map_leaf_of(first + (uintptr_t)i * TCM_PAGE_MAP_LEAF_PAGES);
		assert_non_null(leaves[i]);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(leaves[i], leaves[j]);
	}
	/* Each leaf is usable and all zeros where nobody wrote. */
	static struct tcm_span span;
	for (int i = 0; i < RACE_LEAVES; i++) {
		uintptr_t page = first + (uintptr_t)i * TCM_PAGE_MAP_LEAF_PAGES + 77;
		assert_null(tcm_page_map_get(page));
		set_locked(page, &span, (unsigned)i + 1);
		assert_int_equal(tcm_page_map_size_class(address_of(page, 0)), (unsigned)i + 1);
	}
}

/* The walk over small-object pages (tcm_page_map_next_small_page) finds them in address order,
 * skips large and free pages and whole missing leaves, and ends past the last leaf. */
static void small_page_walk_finds_them_in_order_across_leaves(void **state)
{
	(void)state;
	static struct tcm_span small_a, large, small_b;
	uintptr_t first_leaf = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(3)), later_leaf = LEAF_FIRST_PAGE(HIGH_LEAF_INDEX(1));
	assert_int_equal(tcm_page_map_ensure(first_leaf, 1), 0);
	assert_int_equal(tcm_page_map_ensure(later_leaf, 1), 0);   /* the leaf between them stays absent */
	small_a = (struct tcm_span){ .start = (first_leaf + 100) << TCM_PAGE_SHIFT, .npages = 1, .size_class = 9 };
	large = (struct tcm_span){ .start = (first_leaf + 200) << TCM_PAGE_SHIFT, .npages = 1 };
	small_b = (struct tcm_span){ .start = (later_leaf + 7) << TCM_PAGE_SHIFT, .npages = 1, .size_class = 30 };
	set_locked(first_leaf + 100, &small_a, 9);
	set_locked(first_leaf + 200, &large, 0);
	set_locked(later_leaf + 7, &small_b, 30);

	uintptr_t page = first_leaf;
	unsigned size_class = 0;
	struct tcm_span *span = NULL;
	assert_true(tcm_page_map_next_small_page(&page, &size_class, &span));
	assert_int_equal(page, first_leaf + 100);
	assert_int_equal(size_class, 9);
	assert_ptr_equal(span, &small_a);
	page++;
	assert_true(tcm_page_map_next_small_page(&page, &size_class, &span));   /* past the large page */
	assert_int_equal(page, later_leaf + 7);
	assert_int_equal(size_class, 30);
	assert_ptr_equal(span, &small_b);
	page++;
	assert_false(tcm_page_map_next_small_page(&page, &size_class, &span));
	/* From a page itself: that page. */
	page = later_leaf + 7;
	assert_true(tcm_page_map_next_small_page(&page, &size_class, &span));
	assert_int_equal(page, later_leaf + 7);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(set_get_round_trip),
	cmocka_unit_test(size_class_byte_round_trips),
	cmocka_unit_test(small_object_lookup_gives_distance_to_span_end),
	cmocka_unit_test(unmapped_addresses_read_null),
	cmocka_unit_test(addresses_beyond_48_bits_read_null),
	cmocka_unit_test(ensure_across_leaf_boundary),
	cmocka_unit_test(a_fresh_regions_entries_take_two_pages_of_its_leaf),
	cmocka_unit_test(concurrent_ensure_installs_one_leaf_each),
	cmocka_unit_test(small_page_walk_finds_them_in_order_across_leaves),
};

UNIT_MAIN("page_map", tests)
