/* tests/unit/thread_cache_test.c - thread caches: the byte budget holds after
 * every free, the per-thread share of the total budget, the
 * thread-exit hand-off (global gauges drop to the remaining threads' share,
 * the objects land on the central stacks), malloc/free from a later
 * pthread key's destructor after the cache is DEAD, and a thread's first free
 * (a handed-over object) not coming back to it.
 *
 * Each test runs in a fresh process (see unit.h). The main thread never
 * allocates from tcm (but in the false-sharing test), so its cache stays
 * UNINIT and the live-thread count is exactly the workers a test starts. Workers report through globals and
 * UNIT_THREAD_CHECK; the main thread asserts after joining. */
#include "unit.h"

#include "central.h"
#include "core.h"
#include "size_class.h"
#include "thread_cache.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

static void bootstrap_core(void)
{
	tcm_core_bootstrap();
	assert_int_equal(tcm_thread_cache_self.state, TCM_THREAD_CACHE_UNINIT);
}

static void run_threads(int count, void *(*body)(void *))
{
	pthread_t threads[16];
	assert_true(count <= 16);
	for (intptr_t i = 0; i < count; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, body, (void *)i), 0);
	for (int i = 0; i < count; i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
}

/* cached_bytes within the budget, allowing the one object just freed. */
static void check_budget(size_t object_bytes)
{
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	if (cache->cached_bytes > atomic_load(&tcm_thread_cache_budget_bytes) + object_bytes) {
		fprintf(stderr, "cached_bytes %zu > budget %zu + %zu\n", cache->cached_bytes,
			atomic_load(&tcm_thread_cache_budget_bytes), object_bytes);
		atomic_fetch_add(&unit_thread_failures, 1);
	}
}

/* ---- budget ----------------------------------------------------------------------- */

#define BUDGET_OBJECTS 3000
static size_t budget_bytes;   /* the test's per-thread budget */

static const size_t budget_sizes[] = { 16, 64, 200, 1000, 4000, 20000 };
static void *budget_objects[BUDGET_OBJECTS];   /* one worker at a time uses it */

static void budget_malloc_all(void)
{
	for (int i = 0; i < BUDGET_OBJECTS; i++) {
		size_t size = budget_sizes[(size_t)i % (sizeof(budget_sizes) / sizeof(budget_sizes[0]))];
		budget_objects[i] = tcm_core_malloc(size);
		UNIT_THREAD_CHECK(budget_objects[i] != NULL);
	}
}

static void budget_free_all_checking(void)
{
	for (int i = 0; i < BUDGET_OBJECTS; i++) {
		/* Stride 7 over 6 sizes: every class interleaved. */
		int k = (i * 7) % BUDGET_OBJECTS;
		size_t object_bytes = tcm_core_usable_size(budget_objects[k]);
		tcm_core_free(budget_objects[k]);
		check_budget(object_bytes);
	}
	UNIT_THREAD_CHECK(tcm_thread_cache_self.state == TCM_THREAD_CACHE_ACTIVE);
	UNIT_THREAD_CHECK(atomic_load(&tcm_thread_cache_budget_bytes) == budget_bytes);
}

/* The brief's invariant as the program sees it: allocate, then free, and the
 * cache is within budget after every free. */
static void *budget_worker(void *arg)
{
	(void)arg;
	for (int round = 0; round < 3; round++) {
		budget_malloc_all();
		budget_free_all_checking();
	}
	return NULL;
}

/* The same frees starting from an empty cache. */
static void *budget_worker_from_empty(void *arg)
{
	(void)arg;
	for (int round = 0; round < 3; round++) {
		budget_malloc_all();
		tcm_thread_cache_flush_self();
		UNIT_THREAD_CHECK(tcm_thread_cache_self.cached_bytes == 0);
		budget_free_all_checking();
	}
	return NULL;
}

static void run_budget_worker(size_t thread_max_bytes, void *(*worker)(void *))
{
	bootstrap_core();
	budget_bytes = thread_max_bytes;
	tcm_core_set_thread_cache_budget(thread_max_bytes, (size_t)64 << 20);
	run_threads(1, worker);
}

static void small_budget_holds_after_every_free(void **state)
{
	(void)state;
	run_budget_worker(32 * 1024, budget_worker);
}

/* Every short malloc-then-free run of each size: whatever a refill left in
 * the list when the frees start, each free ends within budget. With a budget
 * below about 13 KiB this fails against core as written: a refill leaves up to
 * half a batch over the budget (scavenge halves each list once), and the next
 * free, halving again, can still end above the budget + one object. */
static void *budget_worker_runs(void *arg)
{
	(void)arg;
	for (size_t k = 0; k < sizeof(budget_sizes) / sizeof(budget_sizes[0]); k++) {
		for (int run = 1; run <= 40; run++) {
			for (int i = 0; i < run; i++) {
				budget_objects[i] = tcm_core_malloc(budget_sizes[k]);
				UNIT_THREAD_CHECK(budget_objects[i] != NULL);
			}
			for (int i = 0; i < run; i++) {
				size_t object_bytes = tcm_core_usable_size(budget_objects[i]);
				tcm_core_free(budget_objects[i]);
				check_budget(object_bytes);
			}
		}
	}
	UNIT_THREAD_CHECK(atomic_load(&tcm_thread_cache_budget_bytes) == budget_bytes);
	return NULL;
}

static void tiny_budget_holds_after_every_free(void **state)
{
	(void)state;
	run_budget_worker(8 * 1024, budget_worker_runs);
}

static void free_phase_from_empty_cache_stays_within_budget(void **state)
{
	(void)state;
	run_budget_worker(16 * 1024, budget_worker_from_empty);
}

#define SHARE_THREADS 4
static pthread_barrier_t share_barrier;

static void *share_worker(void *arg)
{
	(void)arg;
	enum { OBJECTS = 2000 };
	void **objects = calloc(OBJECTS, sizeof(void *));   /* glibc: not counted by tcm */
	UNIT_THREAD_CHECK(objects != NULL);
	/* Activate, then wait until every worker is live. */
	tcm_core_free(tcm_core_malloc(64));
	pthread_barrier_wait(&share_barrier);
	for (int i = 0; i < OBJECTS; i++) {
		objects[i] = tcm_core_malloc(256);
		UNIT_THREAD_CHECK(objects[i] != NULL);
	}
	for (int i = 0; i < OBJECTS; i++) {
		tcm_core_free(objects[i]);
		check_budget(256);
	}
	/* 512 KiB of frees forced a rebudget with all 4 live:
	 * min(4 MiB, max(128 KiB / 4, 64 KiB)) = 64 KiB. */
	UNIT_THREAD_CHECK(atomic_load(&tcm_thread_cache_budget_bytes) == 64 * 1024);
	UNIT_THREAD_CHECK(tcm_thread_cache_live_threads() == SHARE_THREADS);
	pthread_barrier_wait(&share_barrier);
	free(objects);
	return NULL;
}

static void total_budget_is_shared_among_live_threads(void **state)
{
	(void)state;
	bootstrap_core();
	tcm_core_set_thread_cache_budget((size_t)4 << 20, 128 * 1024);
	pthread_barrier_init(&share_barrier, NULL, SHARE_THREADS);
	run_threads(SHARE_THREADS, share_worker);
	pthread_barrier_destroy(&share_barrier);
	assert_int_equal(tcm_thread_cache_live_threads(), 0);
}

/* Issue 11, defect 10c: a thread starting (its recomputation read NORMAL and
 * computed a normal budget) while the SIGTERM hook moves to DRAINING must not
 * leave the normal budget in place of the draining one. The thread is held
 * between its read of the state and its store while the state moves. */
static sem_t budget_computed, budget_state_moved, budget_thread_started, budget_thread_may_end;
static atomic_bool budget_hold_armed;

static void hold_budget_store(void)
{
	if (!atomic_exchange(&budget_hold_armed, false))
		return;   /* only the starting thread's first recomputation is held */
	sem_post(&budget_computed);
	while (sem_wait(&budget_state_moved) != 0)
		;
}

static void *starting_thread(void *unused)
{
	(void)unused;
	void *object = tcm_core_malloc(64);   /* activates the cache: a recomputation */
	UNIT_THREAD_CHECK(object != NULL);
	tcm_core_free(object);
	/* Alive until main has looked: its exit recomputes the budget again. */
	sem_post(&budget_thread_started);
	while (sem_wait(&budget_thread_may_end) != 0)
		;
	return NULL;
}

static void budget_stored_after_the_move_to_draining_is_corrected(void **state)
{
	(void)state;
	bootstrap_core();
	tcm_core_set_thread_cache_budget((size_t)4 << 20, (size_t)64 << 20);
	assert_true(atomic_load(&tcm_thread_cache_budget_bytes) > TCM_THREAD_CACHE_DRAINING_BYTES);
	sem_init(&budget_computed, 0, 0);
	sem_init(&budget_state_moved, 0, 0);
	sem_init(&budget_thread_started, 0, 0);
	sem_init(&budget_thread_may_end, 0, 0);
	atomic_store(&budget_hold_armed, true);
	tcm_thread_cache_testing_on_budget_computed(hold_budget_store);
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, starting_thread, NULL), 0);
	while (sem_wait(&budget_computed) != 0)
		;
	assert_true(tcm_core_enter_draining());   /* stores the draining budget meanwhile */
	assert_int_equal(atomic_load(&tcm_thread_cache_budget_bytes), TCM_THREAD_CACHE_DRAINING_BYTES);
	sem_post(&budget_state_moved);
	while (sem_wait(&budget_thread_started) != 0)
		;
	size_t budget = atomic_load(&tcm_thread_cache_budget_bytes);   /* the thread is alive */
	sem_post(&budget_thread_may_end);
	assert_int_equal(pthread_join(thread, NULL), 0);
	tcm_thread_cache_testing_on_budget_computed(NULL);
	assert_int_equal(budget, TCM_THREAD_CACHE_DRAINING_BYTES);
}

/* ---- thread exit ------------------------------------------------------------------------ */

/* Two workers fill their caches and publish what they report; the first exits
 * while the second waits; then the second exits. */
static pthread_barrier_t exit_barrier;        /* main + 2 workers */
static pthread_barrier_t exit_barrier_last;   /* main + worker 1 */
static _Atomic uint64_t reported_by[2];
static _Atomic uint64_t cached_by[2];
static const size_t exit_sizes[2] = { 100, 3000 };

static void *exit_worker(void *arg)
{
	intptr_t me = (intptr_t)arg;
	/* One malloc: a refill of a whole batch, of which all but one stay cached
	 * and are reported to the global gauge. */
	void *object = tcm_core_malloc(exit_sizes[me]);
	UNIT_THREAD_CHECK(object != NULL);
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	UNIT_THREAD_CHECK(cache->state == TCM_THREAD_CACHE_ACTIVE);
	UNIT_THREAD_CHECK(cache->cached_bytes > 0);
	UNIT_THREAD_CHECK((uint64_t)cache->reported_bytes == cache->cached_bytes);
	atomic_store(&reported_by[me], (uint64_t)cache->reported_bytes);
	atomic_store(&cached_by[me], cache->cached_bytes);
	/* Keep the object: it is the program's, not the cache's. */
	pthread_barrier_wait(&exit_barrier);   /* both have reported */
	pthread_barrier_wait(&exit_barrier);   /* main has checked the gauges */
	if (me == 1)
		pthread_barrier_wait(&exit_barrier_last);   /* worker 0 has exited */
	return object;
}

static void thread_exit_hands_everything_back(void **state)
{
	(void)state;
	bootstrap_core();
	uint64_t live_before = tcm_thread_cache_live_threads();
	uint64_t total_before = tcm_thread_cache_total_bytes();
	pthread_barrier_init(&exit_barrier, NULL, 3);
	pthread_barrier_init(&exit_barrier_last, NULL, 2);
	pthread_t workers[2];
	for (intptr_t i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&workers[i], NULL, exit_worker, (void *)i), 0);
	pthread_barrier_wait(&exit_barrier);
	assert_int_equal(tcm_thread_cache_live_threads(), live_before + 2);
	assert_int_equal(tcm_thread_cache_total_bytes(),
			 total_before + atomic_load(&reported_by[0]) + atomic_load(&reported_by[1]));
	uint64_t central_before = tcm_central_cached_bytes();
	pthread_barrier_wait(&exit_barrier);

	void *object0;
	pthread_join(workers[0], &object0);
	assert_non_null(object0);
	/* Worker 0's share is gone from the gauge; worker 1's remains. */
	assert_int_equal(tcm_thread_cache_live_threads(), live_before + 1);
	assert_int_equal(tcm_thread_cache_total_bytes(), total_before + atomic_load(&reported_by[1]));
	/* Its objects went to the central stack of their class, whole. */
	assert_int_equal(tcm_central_cached_bytes(), central_before + atomic_load(&cached_by[0]));
	unsigned class0 = tcm_size_class_of(exit_sizes[0]);
	assert_int_equal(tcm_central_drain(class0, 0) * tcm_size_classes[class0].object_bytes,
			 atomic_load(&cached_by[0]));

	pthread_barrier_wait(&exit_barrier_last);
	void *object1;
	pthread_join(workers[1], &object1);
	assert_non_null(object1);
	assert_int_equal(tcm_thread_cache_live_threads(), live_before);
	assert_int_equal(tcm_thread_cache_total_bytes(), total_before);
	pthread_barrier_destroy(&exit_barrier);
	pthread_barrier_destroy(&exit_barrier_last);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	/* Freed from a thread whose cache is UNINIT: the main thread activates now. */
	tcm_core_free(object0);
	tcm_core_free(object1);
}

/* ---- after death: a later key's destructor -------------------------------------------------- */

static pthread_key_t late_key;
static _Atomic int late_destructor_ran;
static _Atomic int late_state_seen = -1;
static _Atomic uint64_t late_live_seen;
static _Atomic int late_failures;

static void late_destructor(void *value)
{
	(void)value;
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	atomic_store(&late_state_seen, cache->state);
	atomic_store(&late_live_seen, tcm_thread_cache_live_threads());
	static const size_t sizes[] = { 1, 16, 48, 256, 4096, 65536, 262144, 262145, (size_t)1 << 20 };
	for (int round = 0; round < 50; round++) {
		void *objects[sizeof(sizes) / sizeof(sizes[0])];
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			objects[i] = tcm_core_malloc(sizes[i]);
			if (objects[i] == NULL || tcm_core_usable_size(objects[i]) < sizes[i]) {
				atomic_fetch_add(&late_failures, 1);
				continue;
			}
			memset(objects[i], 0x77, sizes[i]);
		}
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			tcm_core_free(objects[i]);
		/* A DEAD cache serves uncached: it never holds anything. */
		if (cache->cached_bytes != 0 || cache->state != TCM_THREAD_CACHE_DEAD)
			atomic_fetch_add(&late_failures, 1);
	}
	atomic_store(&late_destructor_ran, 1);
}

static void *dying_worker(void *arg)
{
	(void)arg;
	/* Activate the cache (its exit key was created at bootstrap, before late_key). */
	void *kept[100];
	for (int i = 0; i < 100; i++)
		kept[i] = tcm_core_malloc(48);
	for (int i = 0; i < 100; i++)
		tcm_core_free(kept[i]);
	UNIT_THREAD_CHECK(tcm_thread_cache_self.state == TCM_THREAD_CACHE_ACTIVE);
	pthread_setspecific(late_key, (void *)1);
	return NULL;
}

static void malloc_in_later_key_destructor_after_death(void **state)
{
	(void)state;
	bootstrap_core();
	assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
	uint64_t live_before = tcm_thread_cache_live_threads();
	run_threads(1, dying_worker);
	assert_int_equal(atomic_load(&late_destructor_ran), 1);
	/* tcm's key was created first, so its destructor ran first: the cache was DEAD. */
	assert_int_equal(atomic_load(&late_state_seen), TCM_THREAD_CACHE_DEAD);
	assert_int_equal(atomic_load(&late_live_seen), live_before);
	assert_int_equal(atomic_load(&late_failures), 0);
	/* The uncached path did not count the dead thread again. */
	assert_int_equal(tcm_thread_cache_live_threads(), live_before);
	assert_int_equal(tcm_thread_cache_total_bytes(), 0);
	pthread_key_delete(late_key);
}

static void flush_self_empties_cache(void **state)
{
	(void)state;
	bootstrap_core();
	void *objects[200];
	for (int i = 0; i < 200; i++)
		objects[i] = tcm_core_malloc((size_t)(i % 8 + 1) * 16);
	for (int i = 0; i < 200; i++)
		tcm_core_free(objects[i]);
	assert_true(tcm_thread_cache_self.cached_bytes > 0);
	uint64_t central_before = tcm_central_cached_bytes();
	size_t cached = tcm_thread_cache_self.cached_bytes;
	tcm_thread_cache_flush_self();
	assert_int_equal(tcm_thread_cache_self.cached_bytes, 0);
	assert_int_equal(tcm_thread_cache_total_bytes(), 0);
	assert_int_equal(tcm_central_cached_bytes(), central_before + cached);
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		assert_int_equal(tcm_thread_cache_list_count(&tcm_thread_cache_self.lists[size_class]), 0);
		assert_null(tcm_thread_cache_self.lists[size_class].head);
	}
	/* Still ACTIVE and usable. */
	assert_int_equal(tcm_thread_cache_self.state, TCM_THREAD_CACHE_ACTIVE);
	void *again = tcm_core_malloc(32);
	assert_non_null(again);
	tcm_core_free(again);
}

/* Passive false sharing: objects malloc'd back to back by one thread, one
 * handed to each of two others, which free it first thing and then malloc
 * the same size. Neither gets a handed-over object back, nor anything on
 * the other's cache line. */
#define HANDED_THREADS 2
static void *handed[HANDED_THREADS];
static void *first_malloc[HANDED_THREADS];
static pthread_barrier_t handed_barrier;   /* both live until both have malloc'd */

static void *handed_worker(void *arg)
{
	intptr_t index = (intptr_t)arg;
	tcm_core_free(handed[index]);
	first_malloc[index] = tcm_core_malloc(16);
	UNIT_THREAD_CHECK(first_malloc[index] != NULL);
	pthread_barrier_wait(&handed_barrier);
	return NULL;
}

static void first_free_of_a_thread_is_not_handed_back_to_it(void **state)
{
	(void)state;
	bootstrap_core();
	for (int i = 0; i < HANDED_THREADS; i++)
		handed[i] = tcm_core_malloc(16);   /* the main thread keeps the rest of its batch */
	for (int i = 0; i < HANDED_THREADS; i++)
		assert_true((uintptr_t)handed[i] / 64 == (uintptr_t)handed[0] / 64);   /* one cache line */
	uintptr_t shared_line = (uintptr_t)handed[0] / 64;
	pthread_barrier_init(&handed_barrier, NULL, HANDED_THREADS);
	run_threads(HANDED_THREADS, handed_worker);
	pthread_barrier_destroy(&handed_barrier);
	for (int i = 0; i < HANDED_THREADS; i++)
		assert_true((uintptr_t)first_malloc[i] / 64 != shared_line);
	assert_true((uintptr_t)first_malloc[0] / 64 != (uintptr_t)first_malloc[1] / 64);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(small_budget_holds_after_every_free),
	cmocka_unit_test(tiny_budget_holds_after_every_free),
	cmocka_unit_test(free_phase_from_empty_cache_stays_within_budget),
	cmocka_unit_test(total_budget_is_shared_among_live_threads),
	cmocka_unit_test(budget_stored_after_the_move_to_draining_is_corrected),
	cmocka_unit_test(thread_exit_hands_everything_back),
	cmocka_unit_test(malloc_in_later_key_destructor_after_death),
	cmocka_unit_test(flush_self_empties_cache),
	cmocka_unit_test(first_free_of_a_thread_is_not_handed_back_to_it),
};

UNIT_MAIN("thread_cache", tests)
