/* core/lock.h - the allocator's lock: spin briefly, then sleep on a futex.
 *
 * THE LOCK ORDER (the only place it is written down): a thread may take a lock
 * only if its rank is greater than the rank of every lock it already holds.
 *
 *     TCM_LOCK_RANK_CENTRAL    central[class]; never two classes at once
 *     TCM_LOCK_RANK_PAGE_HEAP  the page heap
 *     TCM_LOCK_RANK_METADATA   the metadata arena; a leaf
 *
 * In practice tcm never nests them: central code drops its lock before it
 * calls the page heap (DESIGN invariant 8), and the page heap refills its
 * pool of span records before it locks. TCM_DEBUG >= 2 checks the order on
 * every acquisition, and core/os.c checks that no lock is held at all
 * (invariant 1). The fork handlers (core/fork.c) take every lock in this
 * order and are the one place that holds several.
 *
 * Waiters spin TCM_LOCK_SPINS times, then sleep in the kernel (invariant 5),
 * so a holder that is descheduled does not burn the other cores.
 *
 * Counters are written by the holder only and read racily by stats. */
#ifndef TCM_CORE_LOCK_H
#define TCM_CORE_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"

enum tcm_lock_rank {
	/* 0, so that a zero-filled lock is a central list's: the 52 of them need no
	 * initialisation, and a start writes only the pages of the classes it uses. */
	TCM_LOCK_RANK_CENTRAL = 0,
	TCM_LOCK_RANK_PAGE_HEAP,
	TCM_LOCK_RANK_METADATA,
	TCM_LOCK_RANK_COUNT,
};

#define TCM_LOCK_SPINS 128

/* clang's thread-safety analysis (-Wthread-safety, which checks C too): a
 * struct tcm_lock is a capability that tcm_lock and tcm_lock_try acquire and
 * tcm_unlock releases, so clang reports a function that returns with a lock
 * it took still held, or releases one it does not hold (the CTest
 * test_lock_thread_safety runs it over core/ with -Werror). gcc has no such
 * analysis: the macros are empty there. */
#if defined(__clang__)
#define TCM_THREAD_ANNOTATION(attribute) __attribute__((attribute))
#else
#define TCM_THREAD_ANNOTATION(attribute)
#endif
#define TCM_CAPABILITY(name)           TCM_THREAD_ANNOTATION(capability(name))
#define TCM_ACQUIRE(lock)              TCM_THREAD_ANNOTATION(acquire_capability(lock))
#define TCM_RELEASE(lock)              TCM_THREAD_ANNOTATION(release_capability(lock))
#define TCM_TRY_ACQUIRE(result, lock)  TCM_THREAD_ANNOTATION(try_acquire_capability(result, lock))
/* On the functions that implement a lock rather than use one. */
#define TCM_NO_THREAD_SAFETY_ANALYSIS  TCM_THREAD_ANNOTATION(no_thread_safety_analysis)

struct TCM_CAPABILITY("mutex") tcm_lock {
	_Atomic uint32_t word;                 /* 0 free, 1 held, 2 held and a waiter may sleep */
	uint8_t          rank;                 /* enum tcm_lock_rank; fixed */
	uint64_t         acquired_at_ticks;    /* holder only; tcm_os_ticks */
	_Atomic uint64_t acquisitions;         /* holder only; read by stats */
	_Atomic uint64_t contended;            /* holder only; acquisitions that had to wait */
	_Atomic uint64_t sleeps;               /* waiters: futex waits */
	/* Longest hold and wait in tcm_os_ticks, holder only: over the process's
	 * life, and since the shutdown began (T0, tcm_lock_start_t0_window). */
	_Atomic uint64_t hold_ticks_max;
	_Atomic uint64_t wait_ticks_max;
	_Atomic uint64_t hold_ticks_max_since_t0;
	_Atomic uint64_t wait_ticks_max_since_t0;
};

#define TCM_LOCK_INITIALIZER(lock_rank) { .rank = (lock_rank) }

void tcm_lock_init(struct tcm_lock *lock, enum tcm_lock_rank rank);
void tcm_lock_acquire_slow(struct tcm_lock *lock);
void tcm_lock_release_slow(struct tcm_lock *lock);
void tcm_lock_note_acquired(struct tcm_lock *lock, uint64_t wait_start_ticks);
void tcm_lock_note_released(struct tcm_lock *lock);

/* True on the thread that holds every lock for a fork (core/fork.c), from
 * the prepare handler until the parent's or the child's handler: see below. */
extern __thread bool tcm_lock_is_fork_holder __attribute__((tls_model("initial-exec")));

static inline void tcm_lock(struct tcm_lock *lock) TCM_ACQUIRE(lock);
static inline void tcm_unlock(struct tcm_lock *lock) TCM_RELEASE(lock);
static inline bool tcm_lock_try(struct tcm_lock *lock) TCM_TRY_ACQUIRE(true, lock);

static inline TCM_NO_THREAD_SAFETY_ANALYSIS void tcm_lock(struct tcm_lock *lock)
{
	uint32_t expected = 0;
	if (TCM_LIKELY(atomic_compare_exchange_strong_explicit(&lock->word, &expected, 1,
			memory_order_acquire, memory_order_relaxed)))
		tcm_lock_note_acquired(lock, 0);
	else
		tcm_lock_acquire_slow(lock);
}

static inline TCM_NO_THREAD_SAFETY_ANALYSIS void tcm_unlock(struct tcm_lock *lock)
{
	if (TCM_UNLIKELY(tcm_lock_is_fork_holder))
		return;   /* the fork handlers give the lock back */
	tcm_lock_note_released(lock);
	if (TCM_UNLIKELY(atomic_exchange_explicit(&lock->word, 0, memory_order_release) == 2))
		tcm_lock_release_slow(lock);
}

/* Takes the lock only if it is free right now: for callers that can defer
 * their work rather than wait behind a holder that may be descheduled. */
static inline TCM_NO_THREAD_SAFETY_ANALYSIS bool tcm_lock_try(struct tcm_lock *lock)
{
	uint32_t expected = 0;
	if (!atomic_compare_exchange_strong_explicit(&lock->word, &expected, 1,
			memory_order_acquire, memory_order_relaxed))
		return TCM_UNLIKELY(tcm_lock_is_fork_holder);
	tcm_lock_note_acquired(lock, 0);
	return true;
}

/* True when some thread holds the lock right now (a racy hint for callers
 * that have something better to do than wait; never a correctness check). */
static inline bool tcm_lock_is_busy(struct tcm_lock *lock)
{
	return atomic_load_explicit(&lock->word, memory_order_relaxed) != 0;
}

/* Fork support (core/fork.c), outside the order check: the prepare handler
 * takes every lock in rank order with tcm_lock_take_for_fork, the parent
 * gives them back with tcm_lock_give_back_after_fork, and the child, which
 * has one thread and so no other holder, resets them.
 * Between the two, the forking thread is the fork holder
 * (tcm_lock_set_fork_holder): it already holds every lock, so its tcm_lock
 * and tcm_lock_try return at once and its tcm_unlock does nothing. That is
 * what lets other libraries' fork handlers allocate whatever their order
 * against tcm's: prepare handlers registered before tcm's run after it, and
 * child and parent handlers registered before tcm's run before it, all on
 * the forking thread. Other threads wait, as they would under glibc. */
void tcm_lock_take_for_fork(struct tcm_lock *lock);
void tcm_lock_give_back_after_fork(struct tcm_lock *lock);
void tcm_lock_reset_in_child(struct tcm_lock *lock);
void tcm_lock_set_fork_holder(bool is_holder);

/* Zeroes lock's since-T0 maxima: the shutdown has begun. Async-signal-safe. */
void tcm_lock_start_t0_window(struct tcm_lock *lock);

/* TCM_DEBUG >= 2: fails loudly if the calling thread holds any tcm lock. */
void tcm_lock_assert_none_held(void);

/* The number of tcm locks the calling thread holds (counted at TCM_DEBUG >= 2,
 * always 0 otherwise). */
int tcm_lock_held_count(void);

#endif
