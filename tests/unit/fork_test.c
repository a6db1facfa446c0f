/* tests/unit/fork_test.c - fork() while another thread is inside a release
 * (defect 10b). A release step runs on a thread of its own and is held in
 * tcm_os_release_ranges, right before its system call (os.c's release hook), while the
 * main thread forks through tcm's fork handlers; in the child, where the
 * releasing thread does not exist, no page may be lost: a page heap span
 * being madvised (RELEASING) is free committed memory again, and a span whose
 * free list was out for a release inside it hands its objects out again and
 * still empties into the page heap. The child reports through its exit status
 * (_exit, one stderr line per failed check), never through cmocka, whose
 * asserts would longjmp into a copy of the parent's test. */
#include "unit.h"

#include "central.h"
#include "inside_release.h"
#include "core.h"
#include "lock.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "release.h"
#include "size_class.h"
#include "span.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

/* ---- a release held in its madvise while the main thread forks ------------- */

/* Only the first release that overlaps [start, end) is held: one releasing
 * the test's own memory, not whatever else a step may reach first. */
static struct {
	uintptr_t    start, end;
	atomic_bool  is_armed;      /* the next release in range is held */
	atomic_bool  was_held;
	sem_t        reached;       /* the hook holds the release, or the step ended unheld */
	sem_t        forked;        /* the parent has forked: the release goes on */
} held;

static void wait_for(sem_t *semaphore)
{
	while (sem_wait(semaphore) != 0 && errno == EINTR)
		;
}

static void hold_release_until_forked(void *addr, size_t len_bytes)
{
	uintptr_t start = (uintptr_t)addr;
	if (start >= held.end || start + len_bytes <= held.start || !atomic_exchange(&held.is_armed, false))
		return;
	atomic_store(&held.was_held, true);
	sem_post(&held.reached);
	wait_for(&held.forked);
}

static void *release_step_thread(void *released_out)
{
	*(size_t *)released_out = tcm_release_step(SIZE_MAX);
	if (atomic_exchange(&held.is_armed, false))
		sem_post(&held.reached);   /* never held: do not leave the main thread waiting */
	return NULL;
}

/* Runs a release step on a thread of its own, holds it in its madvise of
 * memory in [start, end), forks there through tcm's fork handlers and runs
 * child_checks in the child, whose exit status is its failed-check count;
 * then lets the release finish. Returns the bytes the step released in the
 * parent. */
static size_t fork_during_release(uintptr_t start, uintptr_t end, int (*child_checks)(void))
{
	static bool handlers_installed;
	if (!handlers_installed) {
		tcm_core_install_fork_handlers();
		handlers_installed = true;
	}
	held.start = start;
	held.end = end;
	atomic_store(&held.was_held, false);
	assert_int_equal(sem_init(&held.reached, 0, 0), 0);
	assert_int_equal(sem_init(&held.forked, 0, 0), 0);
	atomic_store(&held.is_armed, true);
	tcm_os_testing_on_release(hold_release_until_forked);

	size_t released = 0;
	pthread_t releaser;
	assert_int_equal(pthread_create(&releaser, NULL, release_step_thread, &released), 0);
	wait_for(&held.reached);
	if (!atomic_load(&held.was_held)) {
		pthread_join(releaser, NULL);
		tcm_os_testing_on_release(NULL);
		fail_msg("the release step (%zu bytes) never madvised [%#lx, %#lx)", released,
			 (unsigned long)start, (unsigned long)end);
	}
	fflush(NULL);
	pid_t child = fork();
	if (child == 0) {
		tcm_os_testing_on_release(NULL);
		int failed = child_checks();
		_exit(failed > 125 ? 125 : failed);
	}
	sem_post(&held.forked);
	pthread_join(releaser, NULL);
	tcm_os_testing_on_release(NULL);
	sem_destroy(&held.reached);
	sem_destroy(&held.forked);
	assert_true(child > 0);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	if (!WIFEXITED(status))
		fail_msg("the fork child was killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	if (WEXITSTATUS(status) != 0)
		fail_msg("the fork child failed %d check(s)", WEXITSTATUS(status));
	return released;
}

/* ---- checks in the child ------------------------------------------------------ */

static int child_failures;

#define CHILD_CHECK(condition)                                                           \
	do {                                                                             \
		if (!(condition)) {                                                      \
			fprintf(stderr, "%s:%d: check failed in the fork child: %s\n",   \
				__FILE__, __LINE__, #condition);                         \
			child_failures++;                                                \
		}                                                                        \
	} while (0)

#define CHILD_CHECK_EQUAL(actual, expected)                                              \
	do {                                                                             \
		unsigned long long actual_value = (actual), expected_value = (expected); \
		if (actual_value != expected_value) {                                    \
			fprintf(stderr, "%s:%d: check failed in the fork child: %s == "  \
				"%s: %llu != %llu\n", __FILE__, __LINE__, #actual,       \
				#expected, actual_value, expected_value);                \
			child_failures++;                                                \
		}                                                                        \
	} while (0)

static struct tcm_page_heap_stats heap_stats(void)
{
	struct tcm_page_heap_stats stats;
	tcm_page_heap_stats(&stats);
	return stats;
}

static uint64_t heap_total_bytes(void)
{
	struct tcm_page_heap_stats stats = heap_stats();
	return stats.in_use_bytes + stats.free_committed_bytes + stats.free_released_bytes;
}

/* ---- the page heap's release ------------------------------------------------ */

static struct {
	char     *block;
	size_t    block_bytes;
	uint64_t  total_bytes;       /* the page heap's, at the fork */
	uint64_t  committed_bytes;   /* free committed, before the release */
} page_heap_case;

/* The block's pages, taken out as RELEASING when the parent forked, are the
 * child's again: every page of the heap is accounted for, the block's pages
 * are free committed memory, and a block of the same size is served from them
 * (committed memory first) without mapping anything. */
static int page_heap_child_checks(void)
{
	CHILD_CHECK_EQUAL(tcm_page_heap_check(), 0);
	CHILD_CHECK_EQUAL(heap_total_bytes(), page_heap_case.total_bytes);
	CHILD_CHECK_EQUAL(heap_stats().free_committed_bytes, page_heap_case.committed_bytes);
	uint64_t mapped = tcm_os_mapped_bytes();
	char *again = tcm_core_malloc(page_heap_case.block_bytes);
	CHILD_CHECK(again == page_heap_case.block);
	CHILD_CHECK_EQUAL(tcm_os_mapped_bytes(), mapped);
	tcm_core_free(again);
	CHILD_CHECK_EQUAL(heap_total_bytes(), page_heap_case.total_bytes);
	CHILD_CHECK_EQUAL(tcm_page_heap_check(), 0);
	return child_failures;
}

static void fork_during_page_heap_release_keeps_the_span(void **state)
{
	(void)state;
	page_heap_case.block_bytes = 64 * TCM_PAGE_BYTES;   /* 512 KiB: a large block */
	page_heap_case.block = tcm_core_malloc(page_heap_case.block_bytes);
	assert_non_null(page_heap_case.block);
	memset(page_heap_case.block, 0xa5, page_heap_case.block_bytes);
	tcm_core_free(page_heap_case.block);
	page_heap_case.total_bytes = heap_total_bytes();
	page_heap_case.committed_bytes = heap_stats().free_committed_bytes;
	assert_true(page_heap_case.committed_bytes >= page_heap_case.block_bytes);

	uintptr_t start = (uintptr_t)page_heap_case.block;
	size_t released = fork_during_release(start, start + page_heap_case.block_bytes, page_heap_child_checks);
	/* The parent's release went on: its pages are released, none lost. */
	assert_true(released > 0 && released <= page_heap_case.block_bytes);
	assert_int_equal(heap_total_bytes(), page_heap_case.total_bytes);
	assert_int_equal(heap_stats().free_committed_bytes, page_heap_case.committed_bytes - released);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- a release inside a span ------------------------------------------------ */

static int compare_pointers(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* Fetches count objects of size_class (several fetches if need be) into out[];
 * false when a fetch fails or hands out more than asked. */
static bool fetch_objects(unsigned size_class, uint32_t count, void **out)
{
	uint32_t got = 0;
	while (got < count) {
		uint32_t fetched;
		void *chain = tcm_central_fetch(size_class, count - got, &fetched);
		if (chain == NULL || got + fetched > count)
			return false;
		for (; chain != NULL; chain = *(void **)chain)
			out[got++] = chain;
	}
	return true;
}

static struct {
	unsigned  size_class;
	uintptr_t span_start, span_end;   /* the span's pages */
	void     *first, *last;           /* its objects still allocated */
	uint64_t  in_use_bytes;           /* the page heap's, before the span was made */
} inside_case;

/* Gives back count objects one by one, then drains the class's stack into
 * its spans (emptied spans go to the page heap). */
static void give_back_objects(unsigned size_class, void **objects, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		tcm_central_give_back(size_class, objects[i], 1, false);
	tcm_central_drain(size_class, 0);
}

/* The span's free objects, out of its free list when the parent forked, are
 * handed out again, each once, from that span (no other span is made), and
 * once every object is back the span empties into the page heap. */
static int inside_span_child_checks(void)
{
	const struct tcm_size_class_info *info = &tcm_size_classes[inside_case.size_class];
	uint32_t free_count = info->objects_per_span - 2;
	uint64_t span_bytes = inside_case.span_end - inside_case.span_start;
	void **objects = calloc(info->objects_per_span, sizeof(void *));
	CHILD_CHECK(objects != NULL);
	if (objects == NULL)
		return child_failures;
	bool fetched = fetch_objects(inside_case.size_class, free_count, objects);
	CHILD_CHECK(fetched);
	if (!fetched)
		return child_failures;
	qsort(objects, free_count, sizeof(void *), compare_pointers);
	uint32_t outside = 0, repeated = 0;
	for (uint32_t i = 0; i < free_count; i++) {
		uintptr_t address = (uintptr_t)objects[i];
		outside += address < inside_case.span_start || address >= inside_case.span_end;
		repeated += i > 0 && objects[i] == objects[i - 1];
		repeated += objects[i] == inside_case.first || objects[i] == inside_case.last;
	}
	CHILD_CHECK_EQUAL(outside, 0);
	CHILD_CHECK_EQUAL(repeated, 0);
	CHILD_CHECK_EQUAL(heap_stats().in_use_bytes, inside_case.in_use_bytes + span_bytes);

	objects[free_count] = inside_case.first;
	objects[free_count + 1] = inside_case.last;
	give_back_objects(inside_case.size_class, objects, info->objects_per_span);
	CHILD_CHECK_EQUAL(heap_stats().in_use_bytes, inside_case.in_use_bytes);
	CHILD_CHECK_EQUAL(tcm_central_cached_bytes(), 0);
	CHILD_CHECK_EQUAL(tcm_page_heap_check(), 0);
	free(objects);
	return child_failures;
}

/* The first class from 1 KiB objects up whose spans may release pages inside
 * them and whose objects but the first and the last fill two kernel pages:
 * wherever the span lies, a whole kernel page among them holds only free
 * objects. 0 when there is none (a 64 KiB kernel: those spans hold two
 * objects at most). */
static unsigned class_with_a_free_kernel_page_inside(void)
{
	size_t kernel_page = tcm_os_kernel_page_bytes();
	for (unsigned size_class = tcm_size_class_of(1024); size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		if (tcm_size_classes[size_class].has_object_map && info->objects_per_span >= 3 &&
		    (uint64_t)(info->objects_per_span - 2) * info->object_bytes >= 2 * kernel_page)
			return size_class;
	}
	return 0;
}

/* Needs a class whose spans hold a whole free kernel page between kept
 * objects: none does at 64 KiB, where tests/pages leaves it out. */
static void fork_during_release_inside_a_span_gives_its_objects_back(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	unsigned size_class = class_with_a_free_kernel_page_inside();
	if (size_class == 0)
		fail_msg("no class has a free kernel page inside its spans at a %zu-byte kernel page",
			 tcm_os_kernel_page_bytes());
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	inside_case.size_class = size_class;
	inside_case.in_use_bytes = heap_stats().in_use_bytes;

	/* One fresh span, carved whole; all its objects but the first and the
	 * last go back to it, so its inner pages hold only free objects. */
	void **objects = calloc(info->objects_per_span, sizeof(void *));
	assert_non_null(objects);
	assert_true(fetch_objects(size_class, info->objects_per_span, objects));
	qsort(objects, info->objects_per_span, sizeof(void *), compare_pointers);
	struct tcm_span *span = tcm_page_map_get((uintptr_t)objects[0] >> TCM_PAGE_SHIFT);
	assert_non_null(span);
	inside_case.span_start = span->start;
	inside_case.span_end = span->start + span->npages * TCM_PAGE_BYTES;
	assert_true((uintptr_t)objects[info->objects_per_span - 1] < inside_case.span_end);
	assert_int_equal(heap_stats().in_use_bytes, inside_case.in_use_bytes + span->npages * TCM_PAGE_BYTES);
	inside_case.first = objects[0];
	inside_case.last = objects[info->objects_per_span - 1];
	give_back_objects(size_class, objects + 1, info->objects_per_span - 2);

	/* The page heap has no free committed span: the step releases inside
	 * the span, and is held between taking its free list out and putting
	 * it back. */
	size_t released = fork_during_release(inside_case.span_start, inside_case.span_end,
					      inside_span_child_checks);
	assert_true(released > 0);
	void *kept[2] = { inside_case.first, inside_case.last };
	give_back_objects(size_class, kept, 2);
	assert_int_equal(heap_stats().in_use_bytes, inside_case.in_use_bytes);
	assert_int_equal(tcm_page_heap_check(), 0);
	free(objects);
}

/* ---- help asked of the freeing threads ---------------------------------------------- */

/* A drain pass asked the parent's threads to help release; the child has no such pass (its
 * worker is the parent's, which does not exist there), so its frees must not go on releasing
 * as if one did: it starts with no help asked. The parent's request stands. */
static void fork_child_starts_with_no_help_asked(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	tcm_core_install_fork_handlers();
	assert_true(tcm_core_enter_draining());
	tcm_release_ask_for_help((size_t)1 << 20);
	assert_int_equal(tcm_release_help_chunk_bytes(), (size_t)1 << 20);
	fflush(NULL);
	pid_t child = fork();
	if (child == 0)
		_exit(tcm_release_help_chunk_bytes() == 0 ? 0 : 1);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(tcm_release_help_chunk_bytes(), (size_t)1 << 20);
}

/* The handlers are installed at start-up without setting core up (a process that never allocates
 * pays nothing for it); a fork before the first allocation sets it up then, with the central
 * locks it takes and gives back, and parent and child allocate afterwards. */
static void fork_before_the_first_allocation(void **state)
{
	(void)state;
	tcm_core_install_fork_handlers();
	fflush(NULL);
	pid_t child = fork();
	if (child == 0) {
		void *object = tcm_core_malloc(100);
		void *large = tcm_core_malloc(1 << 20);
		_exit(object != NULL && large != NULL && tcm_lock_held_count() == 0 ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(tcm_lock_held_count(), 0);
	void *object = tcm_core_malloc(100);
	assert_non_null(object);
	tcm_core_free(object);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fork_during_page_heap_release_keeps_the_span),
		cmocka_unit_test(fork_during_release_inside_a_span_gives_its_objects_back),
		cmocka_unit_test(fork_child_starts_with_no_help_asked),
		cmocka_unit_test(fork_before_the_first_allocation),
	};
	return unit_main(argc, argv, "fork", tests, sizeof(tests) / sizeof(tests[0]));
}
