/* core/thread_cache.h - per-thread free lists: no locks, a byte budget, and a
 * thread-exit hand-off of whole batches.
 *
 * Invariants:
 *   - a thread touches only its own cache (the TLS block below);
 *   - a list's room (max_count minus the objects on it) is above 0 on entry
 *     to the free fast path, and max_count == 0 in every state but ACTIVE, so
 *     that the first free of a new thread and every free of a dead one take
 *     the slow path;
 *   - the sum over threads is bounded: every thread's budget is the one global
 *     tcm_thread_cache_budget_bytes = min(thread_max_bytes,
 *     max(total_max_bytes / live threads, 64 KiB)), recomputed when a thread
 *     starts or ends; in DRAINING it drops to TCM_THREAD_CACHE_DRAINING_BYTES, so
 *     each thread's next free hands its surplus back (DESIGN "quiesce"), and
 *     refills no longer grow the lists;
 *   - in EXITING, thread exit drops the cache in O(1): the process is ending;
 *   - thread exit pushes each non-empty list to its central stack as one entry
 *     and does nothing else: O(size classes), no lock (DESIGN invariant 4);
 *   - lists[0] stays all zeros: class 0 is no small object, and the free fast
 *     path sends class 0 (large blocks, NULL, foreign pointers) to its slow
 *     path through that list's zero multiplier;
 *   - the double-free mark: an object freed onto a list holds that list's
 *     address in its second word, and every object malloc hands out has had
 *     that word cleared, so a free that finds its list's address there is a
 *     double free unless the list proves otherwise (core/alloc.c walks it). */
#ifndef TCM_CORE_THREAD_CACHE_H
#define TCM_CORE_THREAD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "size_class.h"

enum tcm_thread_cache_state {
	TCM_THREAD_CACHE_UNINIT = 0,     /* zeroed TLS: first use activates it */
	TCM_THREAD_CACHE_ACTIVE,
	TCM_THREAD_CACHE_ACTIVATING,     /* pthread_setspecific may call malloc: serve it uncached */
	TCM_THREAD_CACHE_DEAD,           /* after thread exit: serve uncached */
};

/* One class's list; 32 bytes, so that a class number indexes it with a shift.
 * The class's constants sit beside head for the fast paths; they are 0 until
 * the cache is activated, which sends a new thread's first free to the slow
 * path (the object-start test fails with a 0 multiplier). */
struct tcm_thread_cache_list {
	void    *head;          /* objects linked through their first word */
	uint64_t object_start_multiplier;   /* tcm_size_classes[c].object_start_multiplier */
	uint32_t object_bytes;  /* tcm_size_classes[c].object_bytes */
	/* max_count minus the objects on the list: a free decrements it and takes
	 * the slow path when it went below 0, a malloc increments it. Below 0
	 * while a refill's entry holds more than max_count (at most a dying
	 * thread's whole list: about 8192 objects). */
	int16_t  room;
	uint16_t max_count;     /* grows by a batch per refill, up to 8192 */
	int32_t  reported_count;   /* objects on it as the class's gauge last heard (slow paths) */
} __attribute__((aligned(32)));
_Static_assert(sizeof(struct tcm_thread_cache_list) == 32, "a class number indexes the lists with a shift");

static inline uint32_t tcm_thread_cache_list_count(const struct tcm_thread_cache_list *list)
{
	return (uint32_t)((int32_t)list->max_count - list->room);
}

#define TCM_THREAD_CACHE_DRAINING_BYTES ((size_t)128 * 1024)

struct tcm_thread_cache {
	struct tcm_thread_cache_list lists[TCM_SIZE_CLASS_COUNT];
	size_t  cached_bytes;    /* bytes on all lists; over the budget it scavenges */
	/* An object another thread malloc'd that this thread freed as its very
	 * first call while its class lock was busy: it goes back to its span at
	 * this thread's next refill, after that refill's fetch, and never to the
	 * stack top, where the refill would find it (passive false sharing). */
	void   *set_aside_object;
	uint8_t set_aside_class;
	int64_t reported_bytes;  /* part of cached_bytes already in the global gauge */
	uint8_t state;           /* enum tcm_thread_cache_state */
	size_t  release_credit_bytes;  /* given back while helping the drain, not yet paid for (release.h) */
};

extern __thread struct tcm_thread_cache tcm_thread_cache_self
	__attribute__((tls_model("initial-exec")));

/* The byte budget of every thread's cache (read on the free fast path). */
extern _Atomic size_t tcm_thread_cache_budget_bytes __attribute__((visibility("hidden")));

/* Creates the thread-exit key. Bootstrap only; allocates nothing. If no key
 * can be had, says so on stderr once and every thread runs uncached. */
void tcm_thread_cache_bootstrap(void);

/* Sets the budgets (bytes); every cache sees the new one on its next free. */
void tcm_thread_cache_set_budget(size_t thread_max_bytes, size_t total_max_bytes);

/* Applies the DRAINING budget (call after moving core/state to DRAINING). */
void tcm_thread_cache_enter_draining(void);

/* The size class of list, one of the calling thread's lists. The slow paths
 * take the list rather than its class, which the fast paths then need not
 * keep in a register. */
static inline unsigned tcm_thread_cache_class_of(const struct tcm_thread_cache_list *list)
{
	return (unsigned)(list - tcm_thread_cache_self.lists);
}

/* Slow path of allocation: list, the calling thread's list of a class, is
 * empty. Bootstraps core if that is not done. Returns an object, its
 * double-free mark cleared, or NULL (ENOMEM). */
void *tcm_thread_cache_refill(struct tcm_thread_cache_list *list);

/* Slow path of free: list, the calling thread's list of the object's class,
 * is at max_count (or the cache is not ACTIVE). The fast path has taken one
 * from its room already: this gives it back first. */
void tcm_thread_cache_overflow(struct tcm_thread_cache_list *list, void *object);

/* The calling thread's cached_bytes went over the budget: gives half of
 * every list back until it is within the budget again. */
void tcm_thread_cache_scavenge(void);

/* Gives the calling thread's whole cache back to the central lists. */
void tcm_thread_cache_flush_self(void);

/* Bytes in all threads' caches (as last reported by each) and live caches. */
uint64_t tcm_thread_cache_total_bytes(void);

/* Objects of size_class in all threads' caches: the calling thread's as they
 * are, the others' as of their last slow path of the class. */
uint64_t tcm_thread_cache_class_objects(unsigned size_class);
uint64_t tcm_thread_cache_live_threads(void);

#ifdef TCM_TESTING
/* Testing hook: called by every budget recomputation between its read of the
 * state and its store of the budget (NULL: none), so that a test can hold a
 * recomputation there while the state moves. */
void tcm_thread_cache_testing_on_budget_computed(void (*hook)(void));
#endif

/* In a fork child: only the calling thread exists. */
void tcm_thread_cache_after_fork_in_child(void);

#endif
