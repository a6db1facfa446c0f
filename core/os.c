/* core/os.c - the only file of the allocator that makes system calls.
 *
 * Invariants: every function asserts (TCM_DEBUG >= 2) that the calling thread
 * holds no tcm lock, except the futex pair that core/lock.c uses to sleep and
 * wake (DESIGN invariant 1). errno is saved and restored around each call.
 * Never: allocates, prints (tcm_os_write is the printing primitive itself). */
#define _GNU_SOURCE
#include "os.h"

#include "lock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static _Atomic uint64_t mapped_bytes_total;

#ifdef TCM_TESTING
static _Atomic size_t testing_fail_after_bytes = SIZE_MAX;
static _Atomic size_t testing_mapped_since_armed;

void tcm_os_testing_fail_maps_after(size_t after_bytes)
{
	atomic_store(&testing_mapped_since_armed, 0);
	atomic_store(&testing_fail_after_bytes, after_bytes);
}

static bool testing_map_fails(size_t len_bytes)
{
	size_t limit = atomic_load(&testing_fail_after_bytes);
	if (limit == SIZE_MAX)
		return false;
	size_t before = atomic_fetch_add(&testing_mapped_since_armed, len_bytes);
	return before + len_bytes > limit;
}
#else
static bool testing_map_fails(size_t len_bytes)
{
	(void)len_bytes;
	return false;
}
#endif

void *tcm_os_map(size_t len_bytes, size_t align_bytes)
{
	tcm_lock_assert_none_held();
	if (testing_map_fails(len_bytes))
		return NULL;
	int saved_errno = errno;
	/* Over-map by the alignment, then trim both ends: mmap only promises
	 * kernel-page alignment. MAP_NORESERVE: untouched pages cost nothing. */
	size_t kernel_page = tcm_os_kernel_page_bytes();
	size_t slack = align_bytes > kernel_page ? align_bytes - kernel_page : 0;
	if (len_bytes + slack < len_bytes) {
		errno = saved_errno;
		return NULL;
	}
	char *raw = mmap(NULL, len_bytes + slack, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED) {
		errno = saved_errno;
		return NULL;
	}
	uintptr_t start = ((uintptr_t)raw + align_bytes - 1) & ~(uintptr_t)(align_bytes - 1);
	size_t head = start - (uintptr_t)raw;
	size_t tail = slack - head;
	if (head > 0)
		munmap(raw, head);
	if (tail > 0)
		munmap((char *)start + len_bytes, tail);
	if ((start + len_bytes) >> TCM_ADDRESS_BITS) {
		/* Beyond what the page map and the batch stack can address. */
		munmap((void *)start, len_bytes);
		errno = saved_errno;
		return NULL;
	}
	atomic_fetch_add_explicit(&mapped_bytes_total, len_bytes, memory_order_relaxed);
	errno = saved_errno;
	return (void *)start;
}

int tcm_os_release(void *addr, size_t len_bytes)
{
	tcm_lock_assert_none_held();
	int saved_errno = errno;
	int err = madvise(addr, len_bytes, MADV_DONTNEED) == 0 ? 0 : errno;
	errno = saved_errno;
	return err;
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

size_t tcm_os_kernel_page_bytes(void)
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

uint64_t tcm_os_mapped_bytes(void)
{
	return atomic_load_explicit(&mapped_bytes_total, memory_order_relaxed);
}
