/* core/os.c - the only file of the allocator that makes system calls.
 *
 * Beyond core/, its callers are the orchestrator's clock (tcm_os_now_ns,
 * tcm_os_thread_cpu_ns, tcm_os_sleep_ns, tcm_os_yield), release worker (the tcm_os_wake_fd_*
 * eventfd, tcm_os_close, tcm_os_block_signals), exit
 * and live statistics files (tcm_os_open_for_writing, tcm_os_write,
 * tcm_os_close, tcm_os_rename, and the report's own buffer,
 * tcm_os_map_scratch), sd_notify's
 * main-process check (tcm_os_process_id), the SIGTERM interposition
 * (tcm_os_process_id_unchecked, tcm_os_block_signals; its sigaction calls
 * are its own, orchestrator/sigterm.c), and conf/current.c's error lines
 * (tcm_os_write).
 *
 * Invariants: every function that enters the kernel asserts (TCM_DEBUG >= 2)
 * that the calling thread holds no tcm lock, except the futex pair that
 * core/lock.c uses to sleep and wake, tcm_os_write_unchecked (tcm_fatal),
 * and the async-signal-safe calls the SIGTERM hook makes in a signal handler
 * (tcm_os_wake_fd_signal, tcm_os_process_id_unchecked, the signal mask pair)
 * (DESIGN invariant 1). errno is saved and restored around each call.
 * The kernel's page is read, never assumed (invariant 11): mmap, munmap and
 * madvise go through the helpers below, which in the testing build also
 * emulate a kernel with larger pages (tcm_os_testing_emulate_kernel).
 * Never: allocates, prints (tcm_os_write is the printing primitive itself). */
#define _GNU_SOURCE
#include "os.h"

#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>   /* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14; older headers lack the name */
#endif

static _Atomic uint64_t mapped_bytes_total;

#ifdef TCM_TESTING
static _Atomic size_t testing_fail_after_bytes = SIZE_MAX;
static _Atomic size_t testing_mapped_since_armed;
static _Atomic unsigned testing_fail_every_nth;        /* 0: off */
static _Atomic uint64_t testing_calls_since_nth_armed;
static _Atomic uint64_t testing_map_calls;
static _Atomic uint64_t testing_maps_refused;
static void (*_Atomic testing_release_hook)(void *addr, size_t len_bytes);
/* The emulated kernel: its page (0 until decided: the setter or the
 * environment, read once), and what it has (TCM_OS_TESTING_*). */
static _Atomic size_t testing_kernel_page_bytes;
static _Atomic unsigned testing_kernel_features;

void tcm_os_testing_fail_maps_after(size_t after_bytes)
{
	atomic_store(&testing_mapped_since_armed, 0);
	atomic_store(&testing_fail_after_bytes, after_bytes);
}

void tcm_os_testing_fail_every_nth_map(unsigned n)
{
	atomic_store(&testing_calls_since_nth_armed, 0);
	atomic_store(&testing_fail_every_nth, n);
}

uint64_t tcm_os_testing_map_calls(void)
{
	return atomic_load(&testing_map_calls);
}

uint64_t tcm_os_testing_maps_refused(void)
{
	return atomic_load(&testing_maps_refused);
}

void tcm_os_testing_on_release(void (*hook)(void *addr, size_t len_bytes))
{
	atomic_store(&testing_release_hook, hook);
}

static void testing_before_release(void *addr, size_t len_bytes)
{
	void (*hook)(void *addr, size_t len_bytes) = atomic_load(&testing_release_hook);
	if (hook != NULL)
		hook(addr, len_bytes);
}

static bool after_bytes_fails(size_t len_bytes)
{
	size_t limit = atomic_load(&testing_fail_after_bytes);
	if (limit == SIZE_MAX)
		return false;
	size_t before = atomic_fetch_add(&testing_mapped_since_armed, len_bytes);
	return before + len_bytes > limit;
}

static bool every_nth_fails(void)
{
	unsigned n = atomic_load(&testing_fail_every_nth);
	if (n == 0)
		return false;
	return (atomic_fetch_add(&testing_calls_since_nth_armed, 1) + 1) % n == 0;
}

static bool testing_map_fails(size_t len_bytes)
{
	atomic_fetch_add(&testing_map_calls, 1);
	/* Both hooks count every call, so each keeps its own rhythm. */
	bool after_bytes = after_bytes_fails(len_bytes);
	bool nth = every_nth_fails();
	if (!after_bytes && !nth)
		return false;
	atomic_fetch_add(&testing_maps_refused, 1);
	return true;
}
#else
static bool testing_map_fails(size_t len_bytes)
{
	(void)len_bytes;
	return false;
}

static void testing_before_release(void *addr, size_t len_bytes)
{
	(void)addr;
	(void)len_bytes;
}
#endif

/* ---- the kernel's page ------------------------------------------------------ */

/* The page the MMU maps and faults in: the real kernel's, even while the
 * testing build emulates a larger one. */
static size_t mmu_page_bytes(void)
{
	static _Atomic size_t cached;
	size_t page = atomic_load_explicit(&cached, memory_order_relaxed);
	if (page == 0) {
		long value = sysconf(_SC_PAGESIZE);
		page = value > 0 ? (size_t)value : 4096;
		atomic_store_explicit(&cached, page, memory_order_relaxed);
	}
	return page;
}

/* Whether the kernel has MADV_POPULATE_WRITE (kernel_has_populate_write) and
 * process_madvise on the calling process (kernel_has_batched_release):
 * 0 not known yet (again after an emulation change), 1 has it, -1 lacks it. */
static _Atomic int populate_write_support;
static _Atomic int batched_release_support;

#ifdef TCM_TESTING
void tcm_os_testing_emulate_kernel(size_t page_bytes, unsigned features)
{
	size_t mmu_page = mmu_page_bytes();
	atomic_store(&testing_kernel_page_bytes, page_bytes > mmu_page ? page_bytes : mmu_page);
	atomic_store(&testing_kernel_features, features);
	atomic_store(&populate_write_support, 0);
	atomic_store(&batched_release_support, 0);
}

static bool testing_kernel_has(unsigned feature)
{
	return (atomic_load(&testing_kernel_features) & feature) != 0;
}

size_t tcm_os_kernel_page_bytes(void)
{
	size_t page = atomic_load_explicit(&testing_kernel_page_bytes, memory_order_relaxed);
	if (page == 0) {
		/* getenv allocates nothing; the variables are the test's, not tcm.conf's. */
		const char *page_kib = getenv("TCM_TESTING_KERNEL_PAGE_KIB");
		const char *populate_write = getenv("TCM_TESTING_KERNEL_POPULATE_WRITE");
		const char *batched_release = getenv("TCM_TESTING_KERNEL_BATCHED_RELEASE");
		size_t emulated = page_kib != NULL ? (size_t)strtoul(page_kib, NULL, 10) << 10 : 0;
		if (emulated != 0 && (emulated & (emulated - 1)) != 0)
			tcm_fatal("TCM_TESTING_KERNEL_PAGE_KIB is not a power of two");
		unsigned features = 0;
		if (populate_write == NULL || strcmp(populate_write, "0") != 0)
			features |= TCM_OS_TESTING_POPULATE_WRITE;
		if (batched_release == NULL || strcmp(batched_release, "0") != 0)
			features |= TCM_OS_TESTING_BATCHED_RELEASE;
		tcm_os_testing_emulate_kernel(emulated, features);
		page = atomic_load_explicit(&testing_kernel_page_bytes, memory_order_relaxed);
	}
	return page;
}
#else
size_t tcm_os_kernel_page_bytes(void)
{
	return mmu_page_bytes();
}
#endif

static size_t round_up_to(size_t bytes, size_t page)
{
	return (bytes + page - 1) & ~(page - 1);
}

/* madvise as the kernel does it: EINVAL for a start not aligned to its page,
 * the length rounded up to whole pages. The real kernel does so itself; the
 * testing build does it for the emulated page, on top. Returns 0 or errno. */
static int kernel_madvise(void *addr, size_t len_bytes, int advice)
{
#ifdef TCM_TESTING
	size_t page = tcm_os_kernel_page_bytes();
	if ((uintptr_t)addr % page != 0 || round_up_to(len_bytes, page) < len_bytes)
		return EINVAL;
	if (advice == MADV_POPULATE_WRITE && !testing_kernel_has(TCM_OS_TESTING_POPULATE_WRITE))
		return EINVAL;   /* an advice the emulated kernel does not know */
	len_bytes = round_up_to(len_bytes, page);
#endif
	return madvise(addr, len_bytes, advice) == 0 ? 0 : errno;
}

/* munmap as the kernel does it (see kernel_madvise). */
static int kernel_munmap(void *addr, size_t len_bytes)
{
#ifdef TCM_TESTING
	size_t page = tcm_os_kernel_page_bytes();
	if ((uintptr_t)addr % page != 0)
		return EINVAL;
	len_bytes = round_up_to(len_bytes, page);
#endif
	return munmap(addr, len_bytes) == 0 ? 0 : errno;
}

/* ---- memory ---------------------------------------------------------------- */

/* Where the last region began: the kernel hands out addresses downwards, so
 * the next region is asked for just below it, aligned, and usually gets it. */
static _Atomic uintptr_t next_map_hint;

/* The start-up reservation. The first tcm_os_map maps RESERVATION_BYTES at
 * once (MAP_NORESERVE: address space, no memory) and the maps that follow are
 * carved from it, top down, until it is used up: the heap's set-up (the
 * metadata region, the first heap region and its page-map leaf: 24 MiB) is
 * one mmap instead of three, a start-up cost of every process that allocates
 * (issue 12). Only the top moves, by compare-and-swap, and the reservation is
 * made once and never replaced, so carving takes no lock; a fork child carves
 * no more (tcm_os_after_fork_in_child). Carved memory was never handed out before, so it
 * is fresh and zero. When the kernel refuses that much at once (RLIMIT_AS),
 * every map is its own, as before. */
#define RESERVATION_BYTES ((size_t)32 << 20)
enum { RESERVATION_NOT_MADE = 0, RESERVATION_NONE = 1, RESERVATION_BEING_MADE = 2 };
static _Atomic uintptr_t reservation_start;   /* an address, or one of the three states above */
static _Atomic uintptr_t reservation_top;     /* carved below this; written before the start is published */

/* The reservation's start once it is made (making it on the first call), or 0. */
static uintptr_t reservation(void)
{
	uintptr_t start = atomic_load_explicit(&reservation_start, memory_order_acquire);
	if (start != RESERVATION_NOT_MADE)
		return start > RESERVATION_BEING_MADE ? start : 0;
	uintptr_t expected = RESERVATION_NOT_MADE;
	if (!atomic_compare_exchange_strong(&reservation_start, &expected, RESERVATION_BEING_MADE))
		return 0;   /* another thread makes it: this map is its own */
	char *got = mmap(NULL, RESERVATION_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (got != MAP_FAILED && ((uintptr_t)got + RESERVATION_BYTES) >> TCM_ADDRESS_BITS) {
		munmap(got, RESERVATION_BYTES);
		got = MAP_FAILED;
	}
	if (got == MAP_FAILED) {
		atomic_store_explicit(&reservation_start, RESERVATION_NONE, memory_order_release);
		return 0;
	}
	start = (uintptr_t)got;
	atomic_store_explicit(&next_map_hint, start, memory_order_relaxed);   /* later maps go below it */
	atomic_store_explicit(&reservation_top, start + RESERVATION_BYTES, memory_order_relaxed);
	atomic_store_explicit(&reservation_start, start, memory_order_release);
	return start;
}

void tcm_os_after_fork_in_child(void)
{
	/* fork copies memory while the parent's other threads run, so the
	 * child's copy of the top may be older than its copy of a region carved
	 * just before the fork (a page-map leaf installed in the root): carving
	 * on could hand that region out twice. The child maps on its own. */
	uintptr_t start = atomic_load_explicit(&reservation_start, memory_order_acquire);
	if (start > RESERVATION_BEING_MADE)
		atomic_store_explicit(&reservation_top, start, memory_order_relaxed);
}

/* map_bytes aligned to align_bytes from the top of the reservation; 0 when
 * there is no reservation or not enough of it is left. */
static uintptr_t carve_from_reservation(size_t map_bytes, size_t align_bytes)
{
	uintptr_t start = reservation();
	if (start == 0)
		return 0;
	uintptr_t top = atomic_load_explicit(&reservation_top, memory_order_relaxed);
	for (;;) {
		if (top - start < map_bytes)
			return 0;
		uintptr_t carved = (top - map_bytes) & ~(uintptr_t)(align_bytes - 1);
		if (carved < start)
			return 0;
		if (atomic_compare_exchange_weak_explicit(&reservation_top, &top, carved, memory_order_relaxed,
							  memory_order_relaxed))
			return carved;
	}
}

/* One mmap at an aligned hint below the last region: the region's start, or
 * 0 when there is no hint yet or the kernel put the mapping elsewhere
 * (unaligned: given back). Saves tcm_os_map the over-map and its trims, two
 * or three system calls where one will do. */
static uintptr_t map_at_hint(size_t map_bytes, size_t align_bytes)
{
	uintptr_t below = atomic_load_explicit(&next_map_hint, memory_order_relaxed);
	if (below < map_bytes + align_bytes)
		return 0;
	uintptr_t hint = (below - map_bytes) & ~(uintptr_t)(align_bytes - 1);
	char *got = mmap((void *)hint, map_bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (got == MAP_FAILED)
		return 0;
	if (((uintptr_t)got & (align_bytes - 1)) == 0)
		return (uintptr_t)got;
	munmap(got, map_bytes);
	return 0;
}

void *tcm_os_map(size_t len_bytes, size_t align_bytes)
{
	tcm_lock_assert_none_held();
	if (testing_map_fails(len_bytes))
		return NULL;
	int saved_errno = errno;
	/* Over-map by the alignment, then trim both ends: mmap only promises
	 * alignment to the page the MMU maps. The kernel maps whole kernel pages
	 * at kernel-page-aligned addresses, so the region is both, and the tail
	 * trimmed starts on a kernel page (munmap fails on any other start).
	 * MAP_NORESERVE: untouched pages cost nothing. */
	size_t kernel_page = tcm_os_kernel_page_bytes();
	if (align_bytes < kernel_page)
		align_bytes = kernel_page;
	size_t map_bytes = round_up_to(len_bytes, kernel_page);
	size_t slack = align_bytes - mmu_page_bytes();
	if (map_bytes < len_bytes || map_bytes + slack < map_bytes) {
		errno = saved_errno;
		return NULL;
	}
	uintptr_t start = carve_from_reservation(map_bytes, align_bytes);
	if (start != 0) {
		atomic_fetch_add_explicit(&mapped_bytes_total, len_bytes, memory_order_relaxed);
		errno = saved_errno;
		return (void *)start;
	}
	start = map_at_hint(map_bytes, align_bytes);
	if (start == 0) {
		char *raw = mmap(NULL, map_bytes + slack, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (raw == MAP_FAILED) {
			errno = saved_errno;
			return NULL;
		}
		start = ((uintptr_t)raw + align_bytes - 1) & ~(uintptr_t)(align_bytes - 1);
		size_t head = start - (uintptr_t)raw;
		size_t tail = slack - head;
		if (head > 0)
			munmap(raw, head);
		if (tail > 0)
			munmap((char *)start + map_bytes, tail);
	}
	atomic_store_explicit(&next_map_hint, start, memory_order_relaxed);
	if ((start + map_bytes) >> TCM_ADDRESS_BITS) {
		/* Beyond what the page map and the batch stack can address. */
		munmap((void *)start, map_bytes);
		errno = saved_errno;
		return NULL;
	}
	atomic_fetch_add_explicit(&mapped_bytes_total, len_bytes, memory_order_relaxed);
	errno = saved_errno;
	return (void *)start;
}

void tcm_os_unmap(void *addr, size_t len_bytes)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	if (kernel_munmap(addr, len_bytes) == 0)
		atomic_fetch_sub_explicit(&mapped_bytes_total, len_bytes, memory_order_relaxed);
	errno = saved_errno;
}

void *tcm_os_map_scratch(size_t len_bytes)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	void *got = mmap(NULL, len_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved_errno;
	return got == MAP_FAILED ? NULL : got;
}

void tcm_os_unmap_scratch(void *addr, size_t len_bytes)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	munmap(addr, len_bytes);
	errno = saved_errno;
}

/* ---- releasing many ranges in one call --------------------------------------- */

#ifdef SYS_process_madvise
/* PIDFD_SELF_THREAD of <linux/pidfd.h> (Linux 6.15; Debian 12's headers lack
 * it): the calling thread, with no descriptor to open, keep, lose to an
 * application that closes every descriptor, or carry into a fork child.
 * Kernels without it fail with EBADF: the probe says "lacks it". */
#define PIDFD_SELF_THREAD_VALUE (-10000)

/* Whether process_madvise(MADV_DONTNEED) works on the calling process, asked
 * once with an empty vector: the kernel checks the descriptor, the advice and
 * the target before it looks at the vector, so only a kernel that has it all
 * answers 0 (ENOSYS before 5.10, EBADF before 6.15, EINVAL for the advice
 * before 6.13). Called only by an unfiltered thread (thread_is_unfiltered). */
static bool kernel_has_batched_release(void)
{
	int support = atomic_load_explicit(&batched_release_support, memory_order_relaxed);
	if (support == 0) {
		support = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_VALUE, NULL, 0, MADV_DONTNEED, 0) == 0
			? 1 : -1;
#ifdef TCM_TESTING
		if (!testing_kernel_has(TCM_OS_TESTING_BATCHED_RELEASE))
			support = -1;
#endif
		atomic_store_explicit(&batched_release_support, support, memory_order_relaxed);
	}
	return support > 0;
}

/* Whether the calling thread runs under no seccomp filter: "Seccomp:\t0" in
 * /proc/thread-self/status, read afresh for every batch (a filter is per
 * thread, and a program may install one at any time: tor's sandbox, sshd's
 * privilege separation, systemd's SystemCallFilter= before exec). A filter
 * that does not list process_madvise may kill the process for it; madvise is
 * on every list a program that allocates can live with. Anything unreadable
 * counts as filtered. What is left is the window between this read and the
 * call: a filter installed by another thread with SECCOMP_FILTER_FLAG_TSYNC
 * in those few microseconds. */
static bool thread_is_unfiltered(void)
{
	/* Straight to the kernel: an open or read interposed by another library
	 * (fakeroot, a tracer) may allocate. */
	long fd = syscall(SYS_openat, AT_FDCWD, "/proc/thread-self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char status[4096];
	long length = syscall(SYS_read, (int)fd, status, sizeof(status) - 1);
	syscall(SYS_close, (int)fd);
	if (length <= 0)
		return false;
	status[length] = '\0';
	const char *line = strstr(status, "\nSeccomp:");
	if (line == NULL)
		return false;
	line += strlen("\nSeccomp:");
	while (*line == ' ' || *line == '\t')
		line++;
	return line[0] == '0' && (line[1] == '\n' || line[1] == '\0');
}

/* One process_madvise over the ranges from the first (counted in *calls):
 * returns how many of them it released whole (0 when the call failed before
 * the first). In the testing build a range the emulated kernel would refuse
 * ends the batch there. */
static size_t release_batched(const struct tcm_os_range *ranges, size_t count, unsigned *calls)
{
	struct iovec vector[TCM_OS_RELEASE_RANGES_MAX];
	size_t length = 0;
	for (; length < count; length++) {
		vector[length].iov_base = ranges[length].start;
		vector[length].iov_len = ranges[length].bytes;
#ifdef TCM_TESTING
		size_t page = tcm_os_kernel_page_bytes();
		if ((uintptr_t)ranges[length].start % page != 0 || round_up_to(ranges[length].bytes, page) < ranges[length].bytes)
			break;
		vector[length].iov_len = round_up_to(ranges[length].bytes, page);
#endif
	}
	if (length < 2)
		return 0;
	++*calls;
	ssize_t advised = syscall(SYS_process_madvise, PIDFD_SELF_THREAD_VALUE, vector, length, MADV_DONTNEED, 0);
	/* On an error the kernel returns the bytes of the ranges it did before. */
	size_t released = 0;
	for (size_t bytes = 0; released < length && advised > 0 &&
			       bytes + vector[released].iov_len <= (size_t)advised; released++)
		bytes += vector[released].iov_len;
	return released;
}
#else
static bool kernel_has_batched_release(void)
{
	return false;
}

static bool thread_is_unfiltered(void)
{
	return false;
}

static size_t release_batched(const struct tcm_os_range *ranges, size_t count, unsigned *calls)
{
	(void)ranges;
	(void)count;
	(void)calls;
	return 0;
}
#endif

unsigned tcm_os_release_ranges(struct tcm_os_range *ranges, size_t count)
{
	tcm_lock_assert_none_held();
	TCM_ASSERT(count <= TCM_OS_RELEASE_RANGES_MAX);
	int saved_errno = errno;
	for (size_t i = 0; i < count; i++)
		testing_before_release(ranges[i].start, ranges[i].bytes);
	unsigned calls = 0;
	size_t done = 0;
	if (count >= 2 && thread_is_unfiltered() && kernel_has_batched_release())
		done = release_batched(ranges, count, &calls);
	for (size_t i = done; i < count; i++) {
		if (kernel_madvise(ranges[i].start, ranges[i].bytes, MADV_DONTNEED) != 0)
			ranges[i].bytes = 0;
		calls++;
	}
	errno = saved_errno;
	return calls;
}

/* MADV_POPULATE_WRITE (Linux 5.14) over whole kernel pages from an aligned
 * start; whether the kernel knows the advice is learnt from the first call
 * rather than asked apart (a system call fewer at every start-up). The range
 * is tcm's own anonymous memory at an aligned start, so EINVAL can only mean
 * an advice the kernel does not know: from then on touching does the work.
 * Other errors (ENOMEM, EINTR) decide nothing. False: the caller touches. */
static bool populate_write(void *aligned_addr, size_t len_bytes)
{
	int support = atomic_load_explicit(&populate_write_support, memory_order_relaxed);
	if (support < 0)
		return false;
	int error = kernel_madvise(aligned_addr, len_bytes, MADV_POPULATE_WRITE);
	if (support == 0 && (error == 0 || error == EINVAL))
		atomic_store_explicit(&populate_write_support, error == 0 ? 1 : -1, memory_order_relaxed);
	return error == 0;
}

/* Faults in each page of [start, end) as the MMU maps them (the real kernel
 * page, also while a larger one is emulated) by reading a byte of it and
 * writing the byte back: the contents stay. */
static void touch_pages(uintptr_t start, uintptr_t end)
{
	size_t page = mmu_page_bytes();
	for (uintptr_t at = start; at < end; at = (at | (page - 1)) + 1) {
		volatile unsigned char *byte = (volatile unsigned char *)at;
		*byte = *byte;
	}
}

void tcm_os_populate(void *addr, size_t len_bytes, uintptr_t bound_start, uintptr_t bound_end)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	size_t kernel_page = tcm_os_kernel_page_bytes();
	uintptr_t start = (uintptr_t)addr, end = start + len_bytes;
	/* One call for the whole kernel pages the range lies on, as far as the
	 * bounds let them reach past it (a populate writes nothing); bytes of the
	 * range on kernel pages that cross a bound are touched, and only those. */
	uintptr_t outer_start = start & ~(uintptr_t)(kernel_page - 1);
	if (outer_start < bound_start)
		outer_start = round_up_to(start, kernel_page);
	uintptr_t outer_end = round_up_to(end, kernel_page);
	if (outer_end > bound_end)
		outer_end = end & ~(uintptr_t)(kernel_page - 1);
	if (outer_start < outer_end && populate_write((void *)outer_start, outer_end - outer_start)) {
		touch_pages(start, outer_start > end ? end : outer_start);
		touch_pages(outer_end < start ? start : outer_end, end);
	} else {
		touch_pages(start, end);
	}
	errno = saved_errno;
}

void tcm_os_touch(void *addr, size_t len_bytes)
{
	tcm_lock_assert_none_held();
	touch_pages((uintptr_t)addr, (uintptr_t)addr + len_bytes);
}

void tcm_os_futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	int saved_errno = errno;
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
	errno = saved_errno;
}

void tcm_os_futex_wake(_Atomic uint32_t *word)
{
	int saved_errno = errno;
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	errno = saved_errno;
}

uint64_t tcm_os_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

uint64_t tcm_os_resident_bytes(void)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	char text[128];
	ssize_t length = -1;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		length = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	errno = saved_errno;
	if (length <= 0)
		return 0;
	text[length] = '\0';
	const char *at = strchr(text, ' ');   /* "size resident shared ..." in pages */
	if (at == NULL)
		return 0;
	uint64_t pages = 0;
	for (at++; *at >= '0' && *at <= '9'; at++)
		pages = pages * 10 + (uint64_t)(*at - '0');
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint64_t tcm_os_wall_clock_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static _Atomic uint64_t calibration_start_ticks;
static _Atomic uint64_t calibration_start_ns;   /* 0: not started */

/* CLOCK_MONOTONIC and the counter read together: the counter on both sides of
 * the clock, again until the two reads are close (not preempted between). */
static void read_clock_and_ticks(uint64_t *ns, uint64_t *ticks)
{
	uint64_t before, after;
	do {
		before = tcm_os_ticks();
		*ns = tcm_os_now_ns();
		after = tcm_os_ticks();
	} while (after - before > 10000);   /* a few microseconds at any TSC rate */
	*ticks = before + (after - before) / 2;
}

void tcm_os_ticks_calibration_start(void)
{
	if (atomic_load_explicit(&calibration_start_ns, memory_order_acquire) != 0)
		return;
	uint64_t ns, ticks;
	read_clock_and_ticks(&ns, &ticks);
	atomic_store_explicit(&calibration_start_ticks, ticks, memory_order_relaxed);
	uint64_t expected = 0;
	atomic_compare_exchange_strong_explicit(&calibration_start_ns, &expected, ns,
						memory_order_release, memory_order_relaxed);
}

uint64_t tcm_os_ticks_to_ns(uint64_t ticks)
{
#if defined(__aarch64__)
	uint64_t frequency;
	__asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(frequency));
	return frequency == 0 ? ticks : (uint64_t)((unsigned __int128)ticks * 1000000000u / frequency);
#elif defined(__x86_64__)
	tcm_os_ticks_calibration_start();
	uint64_t start_ns = atomic_load_explicit(&calibration_start_ns, memory_order_acquire);
	uint64_t start_ticks = atomic_load_explicit(&calibration_start_ticks, memory_order_relaxed);
	uint64_t now_ns, now_ticks;
	do   /* at most 1 ms, once in the process's life: a rate over less is too coarse */
		read_clock_and_ticks(&now_ns, &now_ticks);
	while (now_ns - start_ns < 1000000u || now_ticks <= start_ticks);
	return (uint64_t)((unsigned __int128)ticks * (now_ns - start_ns) / (now_ticks - start_ticks));
#else
	return ticks;
#endif
}

uint64_t tcm_os_thread_cpu_ns(void)
{
	tcm_lock_assert_none_held();
	struct timespec used;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used);
	return (uint64_t)used.tv_sec * 1000000000u + (uint64_t)used.tv_nsec;
}

void tcm_os_write(int fd, const char *buf, size_t len_bytes)
{
	tcm_lock_assert_none_held();
	tcm_os_write_unchecked(fd, buf, len_bytes);
}

void tcm_os_write_unchecked(int fd, const char *buf, size_t len_bytes)
{
	int saved_errno = errno;
	while (len_bytes > 0) {
		ssize_t written = write(fd, buf, len_bytes);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			break;
		buf += written;
		len_bytes -= (size_t)written;
	}
	errno = saved_errno;
}

void tcm_os_sleep_ns(uint64_t ns)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	struct timespec pause = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
	while (nanosleep(&pause, &pause) != 0)
		;
	errno = saved_errno;
}

void tcm_os_yield(void)
{
	tcm_lock_assert_none_held();
	sched_yield();
}

int tcm_os_wake_fd_create(int *fd_out)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int err = fd >= 0 ? 0 : errno;
	if (fd >= 0)
		*fd_out = fd;
	errno = saved_errno;
	return err;
}

void tcm_os_wake_fd_signal(int fd)
{
	int saved_errno = errno;
	uint64_t one = 1;
	ssize_t written = write(fd, &one, sizeof(one));
	(void)written;   /* a full counter already means "wake up" */
	errno = saved_errno;
}

void tcm_os_wake_fd_wait(int fd, int timeout_ms)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
	if (poll(&poll_fd, 1, timeout_ms) > 0) {
		uint64_t count;
		ssize_t got = read(fd, &count, sizeof(count));
		(void)got;
	}
	errno = saved_errno;
}

int tcm_os_rename(const char *from, const char *to)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	int err = rename(from, to) == 0 ? 0 : errno;
	errno = saved_errno;
	return err;
}

int tcm_os_open_for_writing(const char *path, int *fd_out)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = fd >= 0 ? 0 : errno;
	if (fd >= 0)
		*fd_out = fd;
	errno = saved_errno;
	return err;
}

void tcm_os_close(int fd)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	close(fd);
	errno = saved_errno;
}

pid_t tcm_os_process_id(void)
{
	tcm_lock_assert_none_held();
	return getpid();
}

pid_t tcm_os_process_id_unchecked(void)
{
	return (pid_t)syscall(SYS_getpid);   /* no cache to be stale in a vfork child */
}

_Static_assert(sizeof(sigset_t) <= sizeof(struct tcm_os_signal_mask), "a signal mask fits");

void tcm_os_block_signals(struct tcm_os_signal_mask *previous)
{
	int saved_errno = errno;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, (sigset_t *)previous);
	errno = saved_errno;
}

void tcm_os_restore_signals(const struct tcm_os_signal_mask *previous)
{
	int saved_errno = errno;
	pthread_sigmask(SIG_SETMASK, (const sigset_t *)previous, NULL);
	errno = saved_errno;
}

uint64_t tcm_os_mapped_bytes(void)
{
	return atomic_load_explicit(&mapped_bytes_total, memory_order_relaxed);
}
