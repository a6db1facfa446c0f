/* core/os.h - every system call the allocator makes (core/, orchestrator/,
 * conf/current.c and shim/), behind one contract. The other layers reach it
 * through core/core.h.
 *
 * Contract for every function here, unless its comment says otherwise:
 *   addr is aligned to the kernel's page (tcm_os_kernel_page_bytes()), and
 *   len_bytes is > 0 (the kernel rounds it up to whole kernel pages);
 *   the return value is 0 or a positive errno; errno is left as the caller had
 *   it (free() must not change errno); nothing is printed or allocated;
 *   the caller holds no tcm lock (checked at TCM_DEBUG >= 2: DESIGN invariant 1).
 * The exceptions to the last rule: the futex pair, which core/lock.c alone calls
 * while acquiring or releasing a lock; tcm_os_write_unchecked (tcm_fatal); and
 * tcm_os_wake_fd_signal, which the SIGTERM hook calls in a signal handler. */
#ifndef TCM_CORE_OS_H
#define TCM_CORE_OS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The allocator's page: spans and the page map work in these on every kernel.
 * The kernel's own page is read at run time, never assumed (DESIGN invariant
 * 11): 4 KiB on x86_64, 4, 16 or 64 KiB on aarch64. Where it is larger than
 * tcm's, only whole kernel pages with no live byte are ever madvised: a free
 * span gives back the whole kernel pages inside it (start rounded up, end
 * rounded down), and a kernel page it shares with a neighbour in use stays
 * committed until that neighbour is free too (core/page_heap.c, which also
 * says how released neighbours are handled). See README "Design notes" for
 * why tcm's page stays 8 KiB. */
#define TCM_PAGE_SHIFT 13
#define TCM_PAGE_BYTES ((size_t)1 << TCM_PAGE_SHIFT)
/* Every address tcm hands out is below this; the batch stack packs pointers
 * into 44 bits (core/batch_stack.h) and the page map covers this range. */
#define TCM_ADDRESS_BITS 48

/* Maps len_bytes of fresh zeroed read-write memory aligned to align_bytes
 * (a power of two) and to the kernel page, in whole kernel pages. An
 * alignment no larger than the kernel page costs one mmap; a larger one may
 * cost an over-map and its trims. NULL when the kernel refuses (ENOMEM). */
void *tcm_os_map(size_t len_bytes, size_t align_bytes);

/* In a fork child (core/fork.c): no more regions from the start-up
 * reservation, which the parent may have been carving during the fork. */
void tcm_os_after_fork_in_child(void);

/* Unmaps a range tcm_os_map returned that was never handed out (a growth
 * whose bookkeeping failed): no pointer into it may exist (invariant 9). */
void tcm_os_unmap(void *addr, size_t len_bytes);

/* A buffer of len_bytes of zeroed memory that is not the heap's: not counted
 * in tcm_os_mapped_bytes, mapped wherever the kernel likes (a report is built
 * in one rather than on a caller's stack, which may be small). NULL when the
 * kernel refuses. */
void *tcm_os_map_scratch(size_t len_bytes);
void tcm_os_unmap_scratch(void *addr, size_t len_bytes);

/* A range of whole kernel pages that hold no live byte (the layout of struct
 * iovec: tcm_os_release_ranges hands the array to the kernel as it is). */
struct tcm_os_range {
	void  *start;
	size_t bytes;
};

/* The most ranges one tcm_os_release_ranges call takes. */
#define TCM_OS_RELEASE_RANGES_MAX 64

/* Returns the pages of ranges[0..count) (count 1..TCM_OS_RELEASE_RANGES_MAX)
 * to the kernel with MADV_DONTNEED: each range stays mapped and reads back as
 * zeros, so no pointer into it can fault (invariant 9). The kernel fails an
 * unaligned start with EINVAL and rounds a length up to its page, zeroing
 * whatever lies past the range up to the next kernel page. Two or more ranges
 * go to the kernel in one process_madvise call where it takes one on the
 * calling process (Linux 6.13; from 6.16 it flushes the TLB once for all of
 * them, where each madvise flushes it once, a cost per call whatever its
 * length) and the calling thread runs under no seccomp
 * filter (a filter that does not know process_madvise may kill the process
 * for trying it); otherwise, and for what such a call left, one madvise per
 * range. Unlike the rest of this file, returns the system calls it made that
 * released memory, and reports failures in place: a range it could not release
 * comes back with bytes 0, the others are released. */
unsigned tcm_os_release_ranges(struct tcm_os_range *ranges, size_t count);

/* Makes the range resident and writable now, with no lock held, so that the
 * writes that follow take no page fault: one MADV_POPULATE_WRITE over the
 * whole kernel pages the range lies on where the kernel has it (Linux 5.14;
 * learnt from the first call's answer), reaching past the range to the ends of
 * those pages as far as [bound_start, bound_end) allows (a populate writes
 * nothing, so memory others write meanwhile may be in the bounds: a span's
 * other objects); otherwise (the bytes on kernel pages that cross a bound,
 * older kernels, a failed call) a touch of each page: a byte read and written
 * back, so the contents stay. addr need not be kernel-page aligned. REQUIRES:
 * the range within the bounds; no other thread writes the range meanwhile (it
 * is the caller's). */
void tcm_os_populate(void *addr, size_t len_bytes, uintptr_t bound_start, uintptr_t bound_end);

/* As tcm_os_populate with no system call: a touch of each page, for memory
 * that is resident but for a few pages (a committed span that had pages
 * released inside it), where a populate call would cost more than the page
 * faults it saves. REQUIRES: no other thread writes the range meanwhile. */
void tcm_os_touch(void *addr, size_t len_bytes);

/* Sleeps while *word == expected (FUTEX_WAIT_PRIVATE); spurious wake-ups
 * are possible. Called by core/lock.c only. */
void tcm_os_futex_wait(_Atomic uint32_t *word, uint32_t expected);
/* Wakes one waiter on word (FUTEX_WAKE_PRIVATE). Called by core/lock.c only. */
void tcm_os_futex_wake(_Atomic uint32_t *word);

/* CLOCK_MONOTONIC in nanoseconds (vDSO: no system call on Linux). */
uint64_t tcm_os_now_ns(void);

/* The process's resident memory in bytes (/proc/self/statm's second field), or 0 when it
 * cannot be read. */
uint64_t tcm_os_resident_bytes(void);

/* CLOCK_REALTIME in nanoseconds since the epoch: the wall clock a report is dated by. */
uint64_t tcm_os_wall_clock_ns(void);

/* A counter that only moves forward, cheap enough to read twice per lock
 * hold: the TSC on x86_64, CNTVCT_EL0 on aarch64 (an instruction, not a
 * clock call); CLOCK_MONOTONIC nanoseconds elsewhere. Only differences mean
 * anything; tcm_os_ticks_to_ns converts them. */
static inline uint64_t tcm_os_ticks(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
	uint64_t ticks;
	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(ticks));
	return ticks;
#else
	return tcm_os_now_ns();
#endif
}

/* Starts the TSC's calibration against CLOCK_MONOTONIC (core's bootstrap
 * calls it; later calls do nothing). */
void tcm_os_ticks_calibration_start(void);

/* A difference of tcm_os_ticks in nanoseconds: at CNTFRQ_EL0 on aarch64, at
 * the TSC rate measured since the calibration started on x86_64 (waiting
 * until 1 ms has passed since then, if it has not). Never allocates. */
uint64_t tcm_os_ticks_to_ns(uint64_t ticks);

/* CPU time the calling thread has used, in nanoseconds (CLOCK_THREAD_CPUTIME_ID:
 * a system call). */
uint64_t tcm_os_thread_cpu_ns(void);

/* Writes all of buf to fd, retrying on EINTR and short writes. */
void tcm_os_write(int fd, const char *buf, size_t len_bytes);

/* As tcm_os_write, without the no-lock check: for tcm_fatal only, which may
 * run under a lock on its way to abort(). */
void tcm_os_write_unchecked(int fd, const char *buf, size_t len_bytes);

/* Sleeps for ns > 0 nanoseconds (nanosleep), resuming after signals. */
void tcm_os_sleep_ns(uint64_t ns);

/* Gives the CPU to any other runnable thread (sched_yield). */
void tcm_os_yield(void);

/* Creates the worker's wake-up counter (a non-blocking close-on-exec eventfd)
 * into *fd_out. */
int tcm_os_wake_fd_create(int *fd_out);

/* Adds one to the wake-up counter fd (a full counter already means "wake
 * up"). Async-signal-safe, and without the no-lock check: the SIGTERM hook
 * calls it in a signal handler, which may interrupt a thread holding a lock. */
void tcm_os_wake_fd_signal(int fd);

/* Sleeps until the wake-up counter fd is signalled or timeout_ms pass (-1: no
 * timeout), then clears the counter. */
void tcm_os_wake_fd_wait(int fd, int timeout_ms);

/* Opens path write-only and close-on-exec, created (mode 0644) or truncated,
 * into *fd_out. */
int tcm_os_open_for_writing(const char *path, int *fd_out);

/* Closes fd; a failure is ignored (the descriptor is gone either way). */
void tcm_os_close(int fd);

/* Renames from to to, replacing to at once (rename(2)): a reader of to sees the old file or the
 * new one, never part of either. Returns 0 or the errno. */
int tcm_os_rename(const char *from, const char *to);

/* The calling process's id (getpid: a fork child gets its own; so does a
 * vfork or clone(CLONE_VM) child, which shares the parent's memory). */
pid_t tcm_os_process_id(void);

/* As tcm_os_process_id, without the no-lock check: async-signal-safe, for
 * the SIGTERM hook, which may interrupt a thread holding a lock. */
pid_t tcm_os_process_id_unchecked(void);

/* A thread's signal mask (glibc's sigset_t, which strict C11 headers hide). */
struct tcm_os_signal_mask {
	unsigned long words[1024 / (8 * sizeof(unsigned long))];
};

/* Blocks every signal in the calling thread, the previous mask into
 * *previous; tcm_os_restore_signals puts it back. Async-signal-safe. */
void tcm_os_block_signals(struct tcm_os_signal_mask *previous);
void tcm_os_restore_signals(const struct tcm_os_signal_mask *previous);

/* The kernel's page size (sysconf, read once): 4 KiB on x86_64, 4, 16 or
 * 64 KiB on aarch64; the emulated one in the testing build (below). */
size_t tcm_os_kernel_page_bytes(void);

/* The bytes of address space mapped so far (for stats). */
uint64_t tcm_os_mapped_bytes(void);

#ifdef TCM_TESTING
/* Fault hook of the testing build: the next map calls succeed while fewer
 * than after_bytes have been mapped in total since the call; then they fail
 * with ENOMEM. SIZE_MAX switches the hook off. */
void tcm_os_testing_fail_maps_after(size_t after_bytes);

/* Second fault hook: counting tcm_os_map calls from this one, every n-th
 * (n, 2n, ...) fails with ENOMEM; 0 switches the hook off. The two hooks are
 * independent: a call fails when either says so, and both count it. */
void tcm_os_testing_fail_every_nth_map(unsigned n);

/* tcm_os_map calls since the process started, and how many of them the hooks
 * failed. With these, tcm_os_mapped_bytes() (net of tcm_os_unmap) lets the
 * fault tests check that every mapped byte stays accounted for. */
uint64_t tcm_os_testing_map_calls(void);
uint64_t tcm_os_testing_maps_refused(void);

/* Release hook: tcm_os_release_ranges calls hook (NULL: none) with each of
 * its ranges right before its system call, with no lock held, so that a test
 * can hold a release there (tests/unit/fork_test.c forks meanwhile). */
void tcm_os_testing_on_release(void (*hook)(void *addr, size_t len_bytes));

/* Kernel emulation (DESIGN invariant 11 tested on x86_64): a kernel whose
 * page is page_bytes (a power of two; 0 or the real page size: the real
 * kernel's), as aarch64 kernels with 16 or 64 KiB pages behave:
 * tcm_os_kernel_page_bytes returns it; tcm_os_map aligns to it and maps
 * whole pages of it; tcm_os_unmap, and the madvise of tcm_os_release_ranges and
 * tcm_os_populate, fail with EINVAL on a start not aligned to it and round
 * the length up to it, so a wrong length zeroes the bytes past the range as
 * the kernel would; so does a range of a batched release, which stops there.
 * features says what the emulated kernel has beyond that: without
 * TCM_OS_TESTING_POPULATE_WRITE, MADV_POPULATE_WRITE fails with EINVAL, as
 * before Linux 5.14 (5.10 was the incident's kernel); without
 * TCM_OS_TESTING_BATCHED_RELEASE, tcm_os_release_ranges makes one madvise per
 * range, as before Linux 6.13 (also what a real kernel without it, or a
 * seccomp filter, gets). Call before core's first use (tcm_os_kernel_page_bytes
 * is read once by some layers). Without a call, the environment decides, read
 * once: TCM_TESTING_KERNEL_PAGE_KIB (e.g. 16 or 64),
 * TCM_TESTING_KERNEL_POPULATE_WRITE=0 and TCM_TESTING_KERNEL_BATCHED_RELEASE=0,
 * so whole suites run per kernel (tests/pages). The real kernel may lack what
 * the emulated one has: then the real kernel's answer stands. */
#define TCM_OS_TESTING_POPULATE_WRITE  1u
#define TCM_OS_TESTING_BATCHED_RELEASE 2u
#define TCM_OS_TESTING_MODERN_KERNEL   (TCM_OS_TESTING_POPULATE_WRITE | TCM_OS_TESTING_BATCHED_RELEASE)
void tcm_os_testing_emulate_kernel(size_t page_bytes, unsigned features);
#endif

#endif
