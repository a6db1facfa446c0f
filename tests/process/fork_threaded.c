/* tests/process/fork_threaded.c - fork from a multi-threaded process using libtcm.so.
 *
 * Run as `env LD_PRELOAD=libtcm.so fork_threaded`. A parent whose 4 threads allocate
 * and free in a loop forks 20 times; each child allocates, fills, checks and frees
 * 10000 blocks (16 B .. 300 KiB), does the same from a new thread, and leaves through
 * exit() so tcm's exit path runs too; the parent requires exit status 0 every time
 * (DESIGN.md invariant 6: fork in a threaded program gives a working child). A child
 * still running after 60 s is killed and reported as a deadlock (a hang detector,
 * not a timing assert). Also checks that malloc is libtcm.so's (TCM_TESTING_EXPECT_LIB_NAME
 * overrides the expected file name). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "pattern.h"


static void test_shim_fork_malloc_served_by_tcm(void **state)
{
	(void)state;
	const char *lib = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	if (lib == NULL || lib[0] == '\0')
		lib = "libtcm.so";
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	const char *path = sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL
		? info.dli_fname : "(unknown)";
	const char *slash = strrchr(path, '/');
	if (strcmp(slash != NULL ? slash + 1 : path, lib) != 0)
		fail_msg("malloc resolves to %s, expected %s", path, lib);
}

#define FORK_ROUNDS 20
#define FORK_PARENT_THREADS 4
#define FORK_CHILD_BLOCKS 10000
#define FORK_CHILD_WAIT_S 60  /* a hang detector, not a timing assert */

static atomic_bool fork_stop;
static atomic_ulong fork_parent_ops;

static void *fork_parent_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *ring[64] = { 0 };
	unsigned long ops = 0;
	while (!atomic_load_explicit(&fork_stop, memory_order_relaxed)) {
		seed = seed * 1103515245u + 12345u;
		unsigned slot = (seed >> 8) % 64;
		size_t n = 16 + (seed >> 16) % ((seed & 7) == 0 ? 70000 : 1024);
		free(ring[slot]);
		ring[slot] = malloc(n);
		if (ring[slot] == NULL)
			abort();
		memset(ring[slot], (int)slot, n < 64 ? n : 64);
		ops++;
	}
	for (int i = 0; i < 64; i++)
		free(ring[i]);
	atomic_fetch_add(&fork_parent_ops, ops);
	return NULL;
}

/* Allocates and frees `count` checked blocks; returns 0 or 1 on corruption. */
static int child_churn(unsigned seed, int count)
{
	void *ring[128] = { 0 };
	size_t len[128] = { 0 };
	for (int i = 0; i < count; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned slot = (seed >> 8) % 128;
		if (ring[slot] != NULL) {
			if (check_fill(ring[slot], len[slot], slot) != len[slot])
				return 1;
			free(ring[slot]);
		}
		len[slot] = 1 + (seed >> 16) % ((seed & 15) == 0 ? 300000 : 2048);
		ring[slot] = malloc(len[slot]);
		if (ring[slot] == NULL)
			return 1;
		fill(ring[slot], len[slot], slot);
	}
	for (int i = 0; i < 128; i++) {
		if (ring[i] != NULL && check_fill(ring[i], len[i], (unsigned)i) != len[i])
			return 1;
		free(ring[i]);
	}
	return 0;
}

static void *child_thread(void *arg)
{
	return (void *)(uintptr_t)child_churn((unsigned)(uintptr_t)arg, 1000);
}

static void child_main(unsigned round)
{
	int bad = child_churn(round * 7919u + 1, FORK_CHILD_BLOCKS);
	pthread_t t;
	void *ret = (void *)1;
	if (pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)round) == 0)
		pthread_join(t, &ret);
	if (ret != NULL)
		bad |= 2;
	/* exit(), not _exit(): tcm's atexit path runs in the child as well. */
	exit(bad);
}

static void test_shim_fork_in_threaded_parent(void **state)
{
	(void)state;
	atomic_store(&fork_stop, false);
	pthread_t threads[FORK_PARENT_THREADS];
	for (int i = 0; i < FORK_PARENT_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, fork_parent_worker,
		                                (void *)(uintptr_t)(i + 1)), 0);
	int failures = 0;
	for (unsigned round = 0; round < FORK_ROUNDS; round++) {
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_main(round);
		int status = 0;
		pid_t got = 0;
		for (int waited_ms = 0; waited_ms < FORK_CHILD_WAIT_S * 1000; waited_ms += 5) {
			got = waitpid(pid, &status, WNOHANG);
			if (got != 0)
				break;
			nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
		}
		if (got == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			print_error("fork round %u: child %d still running after %d s (deadlock?)\n",
			            round, (int)pid, FORK_CHILD_WAIT_S);
			failures++;
		} else if (got != pid) {
			print_error("fork round %u: waitpid failed: %s\n", round, strerror(errno));
			failures++;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (WIFSIGNALED(status))
				print_error("fork round %u: child killed by signal %d\n", round,
				            WTERMSIG(status));
			else
				print_error("fork round %u: child exit status %d\n", round,
				            WEXITSTATUS(status));
			failures++;
		}
	}
	atomic_store(&fork_stop, true);
	for (int i = 0; i < FORK_PARENT_THREADS; i++)
		pthread_join(threads[i], NULL);
	print_message("fork: %d rounds, parent threads did %lu allocations\n", FORK_ROUNDS,
	              atomic_load(&fork_parent_ops));
	assert_int_equal(failures, 0);
	assert_true(atomic_load(&fork_parent_ops) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shim_fork_malloc_served_by_tcm),
		cmocka_unit_test(test_shim_fork_in_threaded_parent),
	};
	return cmocka_run_group_tests_name("shim_fork", tests, NULL, NULL) == 0 ? 0 : 1;
}
