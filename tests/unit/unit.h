/* tests/unit/unit.h - scaffolding shared by the cmocka unit tests of core/.
 *
 * Each test program holds one layer's tests. CTest runs every test in a process
 * of its own (argv[1] names it), so no test sees the heap another one left
 * behind and tests may rely on starting from an empty heap; without an
 * argument a program runs each of its tests in a forked child, the same way.
 * A name that matches no test is an error, so a misspelt CTest entry cannot
 * pass by running nothing.
 *
 * cmocka's asserts longjmp into the test's frame, so they must not run on
 * other threads: workers use UNIT_THREAD_CHECK, which prints and counts, and
 * the test asserts the count is zero after joining. */
#ifndef TCM_TESTS_UNIT_UNIT_H
#define TCM_TESTS_UNIT_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static _Atomic unsigned long unit_thread_failures __attribute__((unused));

#define UNIT_THREAD_CHECK(condition)                                                    \
	do {                                                                             \
		if (!(condition)) {                                                      \
			fprintf(stderr, "%s:%d: check failed on a worker thread: %s\n",  \
				__FILE__, __LINE__, #condition);                         \
			atomic_fetch_add(&unit_thread_failures, 1);                      \
		}                                                                        \
	} while (0)

/* Whether the kernel under the test releases many ranges in one system call
 * for the calling thread (core/os.h, tcm_os_release_ranges), asked the test's
 * own way: process_madvise(MADV_DONTNEED) on PIDFD_SELF_THREAD answers an
 * empty call, and /proc/thread-self/status says "Seccomp: 0". */
static inline bool unit_kernel_batches_release(void)
{
	if (syscall(SYS_process_madvise, -10000 /* PIDFD_SELF_THREAD */, NULL, 0, 4 /* MADV_DONTNEED */, 0) != 0)
		return false;
	FILE *status = fopen("/proc/thread-self/status", "r");
	if (status == NULL)
		return false;
	char line[256];
	bool is_unfiltered = false;
	while (fgets(line, sizeof(line), status) != NULL)
		if (strncmp(line, "Seccomp:", 8) == 0)
			is_unfiltered = strtol(line + 8, NULL, 10) == 0;
	fclose(status);
	return is_unfiltered;
}

/* The pages the MMU maps (the real kernel's) of [start, start + len) that are in memory now
 * (mincore); *pages, when not NULL, gets how many pages the range touches. */
static inline size_t unit_resident_pages(uintptr_t start, size_t len, size_t *pages)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t at = start & ~(uintptr_t)(page - 1), end = start + len;
	size_t resident = 0, counted = 0;
	while (at < end) {
		unsigned char in_memory[256];
		size_t count = (end - at + page - 1) / page;
		if (count > sizeof in_memory)
			count = sizeof in_memory;
		assert_int_equal(mincore((void *)at, count * page, in_memory), 0);
		for (size_t i = 0; i < count; i++)
			resident += in_memory[i] & 1;
		counted += count;
		at += count * page;
	}
	if (pages != NULL)
		*pages = counted;
	return resident;
}

static inline int unit_run_one(const char *group, const struct CMUnitTest *tests, size_t count,
				const char *name)
{
	cmocka_set_test_filter(name);
	return _cmocka_run_group_tests(group, tests, count, NULL, NULL);
}

static inline int unit_main(int argc, char **argv, const char *group,
			    const struct CMUnitTest *tests, size_t count)
{
	if (argc > 2) {
		fprintf(stderr, "usage: %s [test-name]\n", argv[0]);
		return 2;
	}
	if (argc == 2) {
		for (size_t i = 0; i < count; i++)
			if (strcmp(tests[i].name, argv[1]) == 0)
				return unit_run_one(group, tests, count, argv[1]);
		fprintf(stderr, "%s: no test named '%s' in group %s\n", argv[0], argv[1], group);
		return 2;
	}
	/* No argument: every test, each in a forked child of this still
	 * tcm-free process, as CTest would run them. */
	int failed = 0;
	for (size_t i = 0; i < count; i++) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 2;
		}
		if (pid == 0)
			_exit(unit_run_one(group, tests, count, tests[i].name) == 0 ? 0 : 1);
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "%s: test %s failed (status %#x)\n", argv[0], tests[i].name, status);
			failed++;
		}
	}
	return failed;
}

#define UNIT_MAIN(group, tests)                                                          \
	int main(int argc, char **argv)                                                  \
	{                                                                                \
		return unit_main(argc, argv, group, tests, sizeof(tests) / sizeof((tests)[0])); \
	}

#endif
