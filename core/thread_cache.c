/* core/thread_cache.c - slow paths of the thread cache: activation, refill,
 * overflow, scavenging under the byte budget, and the thread-exit hand-off.
 *
 * Invariants: see thread_cache.h. Nothing here takes a lock directly; all
 * exchange with other threads goes through core/central (lock-free stack
 * first). */
#include "thread_cache.h"

#include "central.h"
#include "debug.h"
#include "os.h"
#include "release.h"
#include "core.h"
#include "state.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define MAX_LIST_OBJECTS   8192
#define MIN_BUDGET_BYTES   ((size_t)64 * 1024)

__thread struct tcm_thread_cache tcm_thread_cache_self __attribute__((tls_model("initial-exec")));

/* Until the constructor applies tcm.conf: its defaults (conf/schema.c). */
_Atomic size_t tcm_thread_cache_budget_bytes = (size_t)512 << 10;

#define KEYLESS_MESSAGE "tcm: no pthread key left for thread caches; running without them\n"

static pthread_key_t exit_key;
static atomic_bool has_exit_key;
static _Atomic size_t thread_max_bytes = (size_t)512 << 10;
static _Atomic size_t total_max_bytes = (size_t)64 << 20;
static _Atomic int64_t live_threads;
static _Atomic int64_t total_cached_bytes;
static _Atomic int64_t class_cached_objects[TCM_SIZE_CLASS_COUNT];

static void on_thread_exit(void *unused);
static void recompute_budget(void);
static void scavenge(struct tcm_thread_cache *cache);

void tcm_thread_cache_bootstrap(void)
{
	/* Without a key no cache could be handed back at thread exit: then every
	 * thread runs uncached (slower, still correct) rather than leak. */
	if (pthread_key_create(&exit_key, on_thread_exit) == 0)
		atomic_store(&has_exit_key, true);
	else
		tcm_os_write(2, KEYLESS_MESSAGE, sizeof(KEYLESS_MESSAGE) - 1);
}

void tcm_thread_cache_set_budget(size_t thread_max, size_t total_max)
{
	atomic_store(&thread_max_bytes, thread_max);
	atomic_store(&total_max_bytes, total_max);
	recompute_budget();
}

uint64_t tcm_thread_cache_total_bytes(void)
{
	int64_t bytes = atomic_load_explicit(&total_cached_bytes, memory_order_relaxed);
	return bytes > 0 ? (uint64_t)bytes : 0;
}

uint64_t tcm_thread_cache_live_threads(void)
{
	int64_t threads = atomic_load_explicit(&live_threads, memory_order_relaxed);
	return threads > 0 ? (uint64_t)threads : 0;
}

uint64_t tcm_thread_cache_class_objects(unsigned size_class)
{
	const struct tcm_thread_cache_list *own = &tcm_thread_cache_self.lists[size_class];
	int64_t objects = atomic_load_explicit(&class_cached_objects[size_class], memory_order_relaxed) +
			  ((int64_t)tcm_thread_cache_list_count(own) - own->reported_count);
	return objects > 0 ? (uint64_t)objects : 0;
}

/* Brings the class's gauge up to date with list, one of the calling thread's. */
static void report_list(struct tcm_thread_cache_list *list, unsigned size_class)
{
	int32_t count = (int32_t)tcm_thread_cache_list_count(list);
	if (count != list->reported_count) {
		atomic_fetch_add_explicit(&class_cached_objects[size_class], count - list->reported_count,
					  memory_order_relaxed);
		list->reported_count = count;
	}
}

static void report_bytes(struct tcm_thread_cache *cache)
{
	int64_t delta = (int64_t)cache->cached_bytes - cache->reported_bytes;
	if (delta != 0) {
		atomic_fetch_add_explicit(&total_cached_bytes, delta, memory_order_relaxed);
		cache->reported_bytes = (int64_t)cache->cached_bytes;
	}
}

/* Recomputes the shared budget from the live thread count (or the DRAINING
 * budget). Racing recomputations may briefly leave a stale value; the next
 * thread start or end corrects it. One that read NORMAL and stored after the
 * move to DRAINING stored a normal budget over the draining one, with no
 * later move to correct it: the state is read again after the store, and the
 * budget recomputed while it moved (it only moves forward: this ends).
 * That re-read needs a fence on both sides: the thread that moved the state
 * runs this too, and without the first fence its budget store could become
 * visible before its state change does (aarch64 lets a plain store pass the
 * store half of the compare-and-swap); then a NORMAL store ordered after it
 * could still re-read NORMAL. With both fences, C11's rules for seq_cst
 * fences (7.17.3) make the later store's re-read see DRAINING. */
#ifdef TCM_TESTING
static void (*_Atomic testing_budget_hook)(void);

void tcm_thread_cache_testing_on_budget_computed(void (*hook)(void))
{
	atomic_store(&testing_budget_hook, hook);
}

static void testing_budget_computed(void)
{
	void (*hook)(void) = atomic_load(&testing_budget_hook);
	if (hook != NULL)
		hook();
}
#else
static void testing_budget_computed(void)
{
}
#endif

static void recompute_budget(void)
{
	for (;;) {
		atomic_thread_fence(memory_order_seq_cst);   /* a state change of ours before the store */
		enum tcm_state state = tcm_state_get();
		size_t budget = TCM_THREAD_CACHE_DRAINING_BYTES;
		if (state == TCM_STATE_NORMAL) {
			int64_t threads = atomic_load_explicit(&live_threads, memory_order_relaxed);
			budget = atomic_load_explicit(&total_max_bytes, memory_order_relaxed) /
				 (size_t)(threads > 0 ? threads : 1);
			if (budget < MIN_BUDGET_BYTES)
				budget = MIN_BUDGET_BYTES;
			size_t own_max = atomic_load_explicit(&thread_max_bytes, memory_order_relaxed);
			if (budget > own_max)
				budget = own_max;
		}
		testing_budget_computed();
		atomic_store_explicit(&tcm_thread_cache_budget_bytes, budget, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);   /* the store before the second read */
		if (tcm_state_get() == state)
			return;
	}
}

void tcm_thread_cache_enter_draining(void)
{
	recompute_budget();
}

static size_t budget_bytes(void)
{
	return atomic_load_explicit(&tcm_thread_cache_budget_bytes, memory_order_relaxed);
}

static void activate(struct tcm_thread_cache *cache)
{
	if (!atomic_load_explicit(&has_exit_key, memory_order_relaxed)) {
		cache->state = TCM_THREAD_CACHE_DEAD;   /* uncached: see tcm_thread_cache_bootstrap */
		return;
	}
	cache->state = TCM_THREAD_CACHE_ACTIVATING;
	/* A non-NULL value makes the key's destructor run at thread exit. */
	pthread_setspecific(exit_key, cache);
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		cache->lists[size_class].max_count = tcm_size_classes[size_class].batch_objects;
		cache->lists[size_class].room = (int16_t)tcm_size_classes[size_class].batch_objects;
		cache->lists[size_class].object_bytes = tcm_size_classes[size_class].object_bytes;
		cache->lists[size_class].object_start_multiplier =
			tcm_size_classes[size_class].object_start_multiplier;
	}
	atomic_fetch_add_explicit(&live_threads, 1, memory_order_relaxed);
	recompute_budget();
	cache->state = TCM_THREAD_CACHE_ACTIVE;
}

/* Cuts up to count objects off the head of list; returns the chain (NULL-terminated). */
static void *cut_head(struct tcm_thread_cache_list *list, uint16_t count)
{
	void *first = list->head;
	void *last = first;
	for (uint16_t i = 1; i < count; i++)
		last = *(void **)last;
	list->head = *(void **)last;
	*(void **)last = NULL;
	list->room = (int16_t)(list->room + count);
	return first;
}

static void give_back(struct tcm_thread_cache *cache, unsigned size_class, uint16_t count)
{
	struct tcm_thread_cache_list *list = &cache->lists[size_class];
	void *chain = cut_head(list, count);
	report_list(list, size_class);
	size_t bytes = (size_t)count * tcm_size_classes[size_class].object_bytes;
	cache->cached_bytes -= bytes;
	if (TCM_LIKELY(tcm_release_help_chunk_bytes() == 0)) {
		tcm_central_give_back(size_class, chain, count, false);
		return;
	}
	/* Helping the drain (release.h): paid for at the end of the free. */
	tcm_central_give_back_to_spans(size_class, chain, count);
	cache->release_credit_bytes += bytes;
}

/* The heap could not give a class a span. The objects in the central stacks
 * and in this thread's cache may be what keeps spans in use all over it,
 * cutting its free pages into pieces: given back, emptied spans merge in the
 * page heap. Once, before ENOMEM. */
__attribute__((noinline, cold)) static void *fetch_after_reclaim(unsigned size_class, uint32_t want,
								 uint32_t *count)
{
	tcm_core_release_free_memory(0);
	return tcm_central_fetch(size_class, want, count);
}

void *tcm_thread_cache_refill(struct tcm_thread_cache_list *list)
{
	tcm_core_bootstrap();
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	unsigned size_class = tcm_thread_cache_class_of(list);
	if (TCM_UNLIKELY(cache->state != TCM_THREAD_CACHE_ACTIVE)) {
		if (cache->state == TCM_THREAD_CACHE_UNINIT)
			activate(cache);
		if (cache->state != TCM_THREAD_CACHE_ACTIVE) {
			uint32_t count;
			void *object = tcm_central_fetch(size_class, 1, &count);
			if (object == NULL)
				object = fetch_after_reclaim(size_class, 1, &count);
			if (object == NULL)
				errno = ENOMEM;
			else
				((void **)object)[1] = NULL;   /* the double-free mark */
			return object;
		}
	}
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	uint32_t count;
	void *first = tcm_central_fetch(size_class, info->batch_objects, &count);
	if (first == NULL)
		first = fetch_after_reclaim(size_class, info->batch_objects, &count);
	if (first == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if (cache->set_aside_object != NULL &&
	    tcm_central_give_back_to_span(cache->set_aside_class, cache->set_aside_object))
		cache->set_aside_object = NULL;
	/* Slow start: each refill lets the list hold one more batch, while the
	 * process is not shutting down. */
	if (list->max_count < MAX_LIST_OBJECTS && tcm_state_get() == TCM_STATE_NORMAL)
		list->max_count += info->batch_objects;
	/* An entry is at most one list's worth (a dying thread's), so it fits. */
	TCM_ASSERT(count - 1 <= INT16_MAX);
	list->head = *(void **)first;
	list->room = (int16_t)((int32_t)list->max_count - (int32_t)(count - 1));
	cache->cached_bytes += (size_t)(count - 1) * info->object_bytes;
	report_list(list, size_class);
	report_bytes(cache);
	if (cache->cached_bytes > budget_bytes())
		scavenge(cache);
	((void **)first)[1] = NULL;   /* the double-free mark */
	return first;
}

void tcm_thread_cache_overflow(struct tcm_thread_cache_list *list, void *object)
{
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	unsigned size_class = tcm_thread_cache_class_of(list);
	list->room++;
	if (TCM_UNLIKELY(cache->state != TCM_THREAD_CACHE_ACTIVE)) {
		if (cache->state == TCM_THREAD_CACHE_UNINIT) {
			activate(cache);
			if (cache->state == TCM_THREAD_CACHE_ACTIVE) {
				/* A thread whose first call is a free got the object
				 * from another thread. It goes back to its span, not
				 * to this cache or the stack top, where this thread's
				 * first refill would find it: reusing a handed-over
				 * object keeps two threads writing one cache line
				 * (passive false sharing: bench/false_sharing.c). */
				if (!tcm_central_give_back_to_span(size_class, object)) {
					cache->set_aside_object = object;
					cache->set_aside_class = (uint8_t)size_class;
				}
				return;
			}
		}
		if (cache->state != TCM_THREAD_CACHE_ACTIVE) {
			*(void **)object = NULL;
			tcm_central_give_back(size_class, object, 1, false);
			return;
		}
	}
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	*(void **)object = list->head;
	list->head = object;
	list->room--;
	cache->cached_bytes += info->object_bytes;
	uint32_t count = tcm_thread_cache_list_count(list);
	uint16_t batch = info->batch_objects < count ? info->batch_objects : (uint16_t)count;
	give_back(cache, size_class, batch);
	report_bytes(cache);
	if (cache->cached_bytes > budget_bytes())
		scavenge(cache);
	/* One release step per free at most, however much a scavenge gave back. */
	if (TCM_UNLIKELY(cache->release_credit_bytes >= TCM_RELEASE_HELP_CREDIT_BYTES))
		tcm_release_help(&cache->release_credit_bytes);
}

static void scavenge(struct tcm_thread_cache *cache)
{
	/* Each pass halves every list, so this ends after a few passes. */
	while (cache->cached_bytes > budget_bytes()) {
		for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
			struct tcm_thread_cache_list *list = &cache->lists[size_class];
			uint32_t count = tcm_thread_cache_list_count(list);
			if (count == 0)
				continue;
			give_back(cache, size_class, (uint16_t)((count + 1) / 2));
			uint16_t batch = tcm_size_classes[size_class].batch_objects;
			uint16_t max_count = list->max_count / 2 > batch ? list->max_count / 2 : batch;
			list->room = (int16_t)(list->room - (list->max_count - max_count));
			list->max_count = max_count;
		}
	}
	report_bytes(cache);
}

void tcm_thread_cache_scavenge(void)
{
	scavenge(&tcm_thread_cache_self);
}

/* Pushes every list to its central stack whole. */
static void hand_off_all(struct tcm_thread_cache *cache, bool is_thread_exit)
{
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		struct tcm_thread_cache_list *list = &cache->lists[size_class];
		uint32_t count = tcm_thread_cache_list_count(list);
		if (count != 0) {
			tcm_central_give_back(size_class, list->head, count, is_thread_exit);
			list->head = NULL;
			list->room = (int16_t)list->max_count;
		}
		/* Empty lists too: mallocs may have emptied one since its gauge heard of it. */
		report_list(list, size_class);
	}
	if (cache->set_aside_object != NULL) {
		*(void **)cache->set_aside_object = NULL;
		tcm_central_give_back(cache->set_aside_class, cache->set_aside_object, 1, is_thread_exit);
		cache->set_aside_object = NULL;
	}
	cache->cached_bytes = 0;
	report_bytes(cache);
}

void tcm_thread_cache_flush_self(void)
{
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	if (cache->state == TCM_THREAD_CACHE_ACTIVE)
		hand_off_all(cache, false);
}

static void on_thread_exit(void *unused)
{
	(void)unused;
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	if (cache->state != TCM_THREAD_CACHE_ACTIVE)
		return;
	/* In EXITING the process is ending: the cache's objects stay where
	 * they are, which is O(1) and touches no shared state. */
	if (tcm_state_get() != TCM_STATE_EXITING)
		hand_off_all(cache, true);
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		struct tcm_thread_cache_list *list = &cache->lists[size_class];
		list->room = (int16_t)(list->room - list->max_count);   /* its objects stay, in EXITING */
		list->max_count = 0;
	}
	cache->state = TCM_THREAD_CACHE_DEAD;
	atomic_fetch_sub_explicit(&live_threads, 1, memory_order_relaxed);
	recompute_budget();
}

void tcm_thread_cache_after_fork_in_child(void)
{
	bool is_active = tcm_thread_cache_self.state == TCM_THREAD_CACHE_ACTIVE;
	atomic_store(&live_threads, is_active ? 1 : 0);
	atomic_store(&total_cached_bytes, (int64_t)tcm_thread_cache_self.cached_bytes);
	tcm_thread_cache_self.reported_bytes = (int64_t)tcm_thread_cache_self.cached_bytes;
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		struct tcm_thread_cache_list *list = &tcm_thread_cache_self.lists[size_class];
		list->reported_count = (int32_t)tcm_thread_cache_list_count(list);
		atomic_store(&class_cached_objects[size_class], list->reported_count);
	}
}
