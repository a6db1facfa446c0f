/* core/lock.c - slow paths and bookkeeping of the spin-then-futex lock.
 *
 * Invariants: word is 0 (free), 1 (held) or 2 (held, and some thread may be
 * asleep on it); a releaser that saw 2 wakes one sleeper. The held-lock
 * bookkeeping (per-thread, TCM_DEBUG >= 2) checks the order in lock.h.
 * Never: allocates; sleeps anywhere but in tcm_os_futex_wait. */
#include "lock.h"

#include "os.h"

__thread bool tcm_lock_is_fork_holder __attribute__((tls_model("initial-exec")));

#if TCM_DEBUG >= 2
static __thread int held_count __attribute__((tls_model("initial-exec")));
static __thread uint8_t held_per_rank[TCM_LOCK_RANK_COUNT] __attribute__((tls_model("initial-exec")));
#endif

void tcm_lock_init(struct tcm_lock *lock, enum tcm_lock_rank rank)
{
	*lock = (struct tcm_lock)TCM_LOCK_INITIALIZER(rank);
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static void update_max(_Atomic uint64_t *max, uint64_t value)
{
	if (value > atomic_load_explicit(max, memory_order_relaxed))
		atomic_store_explicit(max, value, memory_order_relaxed);
}

static void counter_add(_Atomic uint64_t *counter)
{
	/* Only the holder writes: a relaxed load and store, not an atomic RMW. */
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void tcm_lock_note_acquired(struct tcm_lock *lock, uint64_t wait_start_ticks)
{
#if TCM_DEBUG >= 2
	for (int rank = lock->rank; rank < TCM_LOCK_RANK_COUNT; rank++)
		if (held_per_rank[rank] != 0)
			tcm_fatal("lock order violated (see core/lock.h)");
	held_per_rank[lock->rank]++;
	held_count++;
#endif
	uint64_t now = tcm_os_ticks();
	lock->acquired_at_ticks = now;
	counter_add(&lock->acquisitions);
	if (wait_start_ticks != 0) {
		counter_add(&lock->contended);
		update_max(&lock->wait_ticks_max, now - wait_start_ticks);
		update_max(&lock->wait_ticks_max_since_t0, now - wait_start_ticks);
	}
}

void tcm_lock_note_released(struct tcm_lock *lock)
{
	uint64_t held = tcm_os_ticks() - lock->acquired_at_ticks;
	update_max(&lock->hold_ticks_max, held);
	update_max(&lock->hold_ticks_max_since_t0, held);
#if TCM_DEBUG >= 2
	if (held_per_rank[lock->rank] == 0)
		tcm_fatal("released a lock that is not held");
	held_per_rank[lock->rank]--;
	held_count--;
#endif
}

void tcm_lock_acquire_slow(struct tcm_lock *lock)
{
	if (tcm_lock_is_fork_holder)
		return;   /* held already, for the fork (lock.h) */
	uint64_t wait_start_ticks = tcm_os_ticks();
	for (int spin = 0; spin < TCM_LOCK_SPINS; spin++) {
		uint32_t expected = 0;
		if (atomic_load_explicit(&lock->word, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&lock->word, &expected, 1,
				memory_order_acquire, memory_order_relaxed)) {
			tcm_lock_note_acquired(lock, wait_start_ticks);
			return;
		}
		cpu_relax();
	}
	/* Announce a sleeper by storing 2; whoever gets 0 back owns the lock
	 * (and wakes one sleeper on release, which may be spurious: harmless). */
	while (atomic_exchange_explicit(&lock->word, 2, memory_order_acquire) != 0) {
		atomic_fetch_add_explicit(&lock->sleeps, 1, memory_order_relaxed);
		tcm_os_futex_wait(&lock->word, 2);
	}
	tcm_lock_note_acquired(lock, wait_start_ticks);
}

void tcm_lock_release_slow(struct tcm_lock *lock)
{
	tcm_os_futex_wake(&lock->word);
}

/* The word protocol of tcm_lock without its statistics: a free lock is taken
 * as 1, so giving it back wakes nobody unless a thread announced itself
 * asleep meanwhile (2). Taking every lock as 2 made each fork's parent wake
 * 54 locks nobody slept on, 54 system calls per fork. */
void tcm_lock_take_for_fork(struct tcm_lock *lock)
{
	uint32_t expected = 0;
	if (atomic_compare_exchange_strong_explicit(&lock->word, &expected, 1,
			memory_order_acquire, memory_order_relaxed))
		return;
	while (atomic_exchange_explicit(&lock->word, 2, memory_order_acquire) != 0)
		tcm_os_futex_wait(&lock->word, 2);
}

void tcm_lock_give_back_after_fork(struct tcm_lock *lock)
{
	if (atomic_exchange_explicit(&lock->word, 0, memory_order_release) == 2)
		tcm_os_futex_wake(&lock->word);
}

void tcm_lock_reset_in_child(struct tcm_lock *lock)
{
	atomic_store_explicit(&lock->word, 0, memory_order_relaxed);
}

void tcm_lock_start_t0_window(struct tcm_lock *lock)
{
	atomic_store_explicit(&lock->hold_ticks_max_since_t0, 0, memory_order_relaxed);
	atomic_store_explicit(&lock->wait_ticks_max_since_t0, 0, memory_order_relaxed);
}

void tcm_lock_set_fork_holder(bool is_holder)
{
	tcm_lock_is_fork_holder = is_holder;
}

void tcm_lock_assert_none_held(void)
{
#if TCM_DEBUG >= 2
	if (held_count != 0)
		tcm_fatal("system call made while holding an allocator lock (DESIGN invariant 1)");
#endif
}

int tcm_lock_held_count(void)
{
#if TCM_DEBUG >= 2
	return held_count;
#else
	return 0;
#endif
}
