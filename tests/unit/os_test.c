/* tests/unit/os_test.c - core/os.c's release of many ranges (tcm_os_release_ranges):
 * each range zeroed and nothing else, failures reported in place, one system call for
 * all where the kernel batches (process_madvise on the calling process), one madvise
 * each where it does not, and never a process_madvise under a seccomp filter, which
 * may kill the process for it.
 * Each test runs in a fresh process (unit.h) and picks its kernel first: the real
 * kernel's page, with or without the batched release. */
#include "unit.h"

#include "os.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define RANGES 5

/* RANGES ranges of one kernel page each, every other page of a region of
 * 2 * RANGES pages filled with 0x5a. */
static char *fill_region(struct tcm_os_range *ranges)
{
	size_t page = tcm_os_kernel_page_bytes();
	char *region = tcm_os_map(2 * RANGES * page, TCM_PAGE_BYTES);
	assert_non_null(region);
	memset(region, 0x5a, 2 * RANGES * page);
	for (size_t i = 0; i < RANGES; i++)
		ranges[i] = (struct tcm_os_range){ region + 2 * i * page, page };
	return region;
}

/* Released pages (even ones) read zero, the pages between keep their bytes. */
static void assert_even_pages_zero(const char *region, size_t skip_range)
{
	size_t page = tcm_os_kernel_page_bytes();
	for (size_t i = 0; i < 2 * RANGES; i++) {
		char expected = i % 2 == 0 && i / 2 != skip_range ? 0 : 0x5a;
		for (size_t at = 0; at < page; at += 256)
			if (region[i * page + at] != expected)
				fail_msg("page %zu byte %zu is 0x%02x, expected 0x%02x", i, at,
					 (unsigned char)region[i * page + at], (unsigned char)expected);
	}
}

static void release_ranges_zeroes_each_range_and_nothing_else(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);
	struct tcm_os_range ranges[RANGES];
	char *region = fill_region(ranges);
	errno = 1234;
	tcm_os_release_ranges(ranges, RANGES);
	assert_int_equal(errno, 1234);
	for (size_t i = 0; i < RANGES; i++)
		assert_int_equal(ranges[i].bytes, tcm_os_kernel_page_bytes());
	assert_even_pages_zero(region, SIZE_MAX);
}

/* Where the kernel takes process_madvise on the calling process (Linux 6.13,
 * one TLB flush for all from 6.16), five ranges cost one system call; on
 * other kernels, five madvise calls. */
static void release_ranges_in_one_call_where_the_kernel_batches(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);
	struct tcm_os_range ranges[RANGES];
	char *region = fill_region(ranges);
	unsigned calls = tcm_os_release_ranges(ranges, RANGES);
	unsigned expected = unit_kernel_batches_release() ? 1 : RANGES;
	print_message("kernel batches: %s; calls %u\n", expected == 1 ? "yes" : "no", calls);
	assert_int_equal(calls, expected);
	assert_even_pages_zero(region, SIZE_MAX);
}

static void release_ranges_one_madvise_each_on_a_kernel_without_batching(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_POPULATE_WRITE);
	struct tcm_os_range ranges[RANGES];
	char *region = fill_region(ranges);
	assert_int_equal(tcm_os_release_ranges(ranges, RANGES), RANGES);
	assert_even_pages_zero(region, SIZE_MAX);
}

/* A range the kernel refuses (not mapped: ENOMEM) comes back with bytes 0;
 * the ranges after it are released all the same, batched or not. */
static void check_failed_range_comes_back_empty(unsigned features)
{
	tcm_os_testing_emulate_kernel(0, features);
	struct tcm_os_range ranges[RANGES];
	char *region = fill_region(ranges);
	size_t page = tcm_os_kernel_page_bytes();
	assert_int_equal(munmap(region + 4 * page, page), 0);   /* range 2 */
	tcm_os_release_ranges(ranges, RANGES);
	for (size_t i = 0; i < RANGES; i++)
		assert_int_equal(ranges[i].bytes, i == 2 ? 0 : page);
	for (size_t i = 0; i < 2 * RANGES; i++) {
		if (i == 4)
			continue;   /* unmapped */
		char expected = i % 2 == 0 ? 0 : 0x5a;
		assert_int_equal(region[i * page], expected);
	}
}

static void release_ranges_failed_range_comes_back_empty(void **state)
{
	(void)state;
	check_failed_range_comes_back_empty(TCM_OS_TESTING_MODERN_KERNEL);
}

static void release_ranges_failed_range_comes_back_empty_without_batching(void **state)
{
	(void)state;
	check_failed_range_comes_back_empty(TCM_OS_TESTING_POPULATE_WRITE);
}

/* A filter that kills the process at process_madvise and allows the rest (as
 * a sandbox that never heard of it would). */
static void install_filter_killing_process_madvise(void)
{
#if defined(__x86_64__)
	const uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
	const uint32_t arch = AUDIT_ARCH_AARCH64;
#endif
	struct sock_filter program[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_madvise, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog filter = { .len = sizeof(program) / sizeof(program[0]), .filter = program };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) != 0)
		_exit(3);
}

/* Under a seccomp filter the release makes one madvise per range and no
 * process_madvise: a filter that does not know it may kill the process (the
 * child here would die of SIGSYS). */
static void release_ranges_under_a_seccomp_filter_makes_no_process_madvise(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(0, TCM_OS_TESTING_MODERN_KERNEL);
	struct tcm_os_range ranges[RANGES];
	char *region = fill_region(ranges);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		install_filter_killing_process_madvise();
		unsigned calls = tcm_os_release_ranges(ranges, RANGES);
		for (size_t i = 0; i < 2 * RANGES; i++)
			if (region[i * tcm_os_kernel_page_bytes()] != (i % 2 == 0 ? 0 : 0x5a))
				_exit(4);
		_exit(calls == RANGES ? 0 : 5);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	if (WIFSIGNALED(status))
		fail_msg("the child died of signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 3)
		fail_msg("the child could not install its seccomp filter");
	assert_int_equal(WEXITSTATUS(status), 0);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(release_ranges_zeroes_each_range_and_nothing_else),
	cmocka_unit_test(release_ranges_in_one_call_where_the_kernel_batches),
	cmocka_unit_test(release_ranges_one_madvise_each_on_a_kernel_without_batching),
	cmocka_unit_test(release_ranges_failed_range_comes_back_empty),
	cmocka_unit_test(release_ranges_failed_range_comes_back_empty_without_batching),
	cmocka_unit_test(release_ranges_under_a_seccomp_filter_makes_no_process_madvise),
};

UNIT_MAIN("os", tests)
