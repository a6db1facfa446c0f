/* tests/hostile/atfork.c - fork() from a threaded, allocating process whose
 * pthread_atfork handlers allocate, under LD_PRELOAD=libtcm.so.
 *
 *   atfork lib-first|tcm-first|main-only
 *
 * lib-first: LD_PRELOAD="libtcm.so libtcm_hostile_atfork.so", so the library's
 * constructor (atfork_lib.c) registers its allocating handlers BEFORE tcm's;
 * tcm-first: the other order; main-only: no library. In every mode main()
 * registers allocating handlers too (after tcm's). The program checks that the
 * library really registered in the order the mode names, then forks 30 times
 * while 4 threads malloc/free/realloc mixed sizes; each child allocates and
 * exits 0; every handler must have run once per fork.
 * The bug this was written for (lib-first): prepare handlers run in reverse
 * order of registration, so the library's prepare runs after tcm's, which has
 * taken every allocator lock, and its malloc waits for a lock its own thread
 * holds: fork() never returns. (The library's parent and child handlers run
 * before tcm gives the locks back, the same deadlock on the other side.)
 * A fork that does not return within 10 s, or a child that does not exit
 * within 10 s, fails the test. */
#define _GNU_SOURCE
#include "hostile.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 30

static atomic_uint main_prepare_runs, main_parent_runs, main_child_runs;

static void allocate_or_abort(const char *tag)
{
	char *copy = strdup(tag);
	void *large = malloc(512 * 1024);
	void *small = malloc(200);
	if (copy == NULL || large == NULL || small == NULL || strcmp(copy, tag) != 0)
		abort();
	memset(large, 1, 4096);
	free(small);
	free(large);
	free(copy);
}

static void main_prepare(void) { allocate_or_abort("main prepare"); atomic_fetch_add(&main_prepare_runs, 1); }
static void main_parent(void) { allocate_or_abort("main parent"); atomic_fetch_add(&main_parent_runs, 1); }
static void main_child(void) { allocate_or_abort("main child"); atomic_fetch_add(&main_child_runs, 1); }

static atomic_uint *lib_counter(const char *name)
{
	return (atomic_uint *)dlsym(RTLD_DEFAULT, name);
}

/* The library's registration order as the mode requires; returns whether it is loaded. */
static bool check_library(const char *mode, bool under_tcm)
{
	int *ran_before_tcm = (int *)dlsym(RTLD_DEFAULT, "hostile_atfork_lib_ran_before_tcm");
	if (strcmp(mode, "main-only") == 0) {
		HOSTILE_CHECK(ran_before_tcm == NULL, "main-only: the atfork library is loaded");
		return false;
	}
	HOSTILE_CHECK(ran_before_tcm != NULL, "%s: the atfork library is not preloaded", mode);
	HOSTILE_CHECK(*ran_before_tcm >= 0, "%s: the library's constructor %s", mode,
		      *ran_before_tcm == -1 ? "did not run" : "could not probe SIGTERM");
	if (!under_tcm)
		return true;
	bool want_first = strcmp(mode, "lib-first") == 0;
	hostile_print("atfork %s: the library's constructor ran %s tcm's, so its fork handlers were registered %s "
		      "tcm's", mode, *ran_before_tcm ? "before" : "after", *ran_before_tcm ? "before" : "after");
	HOSTILE_CHECK(*ran_before_tcm == want_first, "%s: wrong order of constructors for this mode (LD_PRELOAD=%s)",
		      mode, getenv("LD_PRELOAD"));
	return true;
}

static void child_main(unsigned round)
{
	hostile_child_alarm(20);
	if (hostile_churn(round * 31u + 7u, 1000) != 0)
		_exit(10);
	char *copy = strdup("child");
	if (copy == NULL)
		_exit(10);
	free(copy);
	exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "lib-first") != 0 && strcmp(argv[1], "tcm-first") != 0 &&
			  strcmp(argv[1], "main-only") != 0)) {
		fprintf(stderr, "usage: atfork lib-first|tcm-first|main-only\n");
		return 2;
	}
	const char *mode = argv[1];
	bool under_tcm = hostile_require_tcm("atfork");
	bool has_library = check_library(mode, under_tcm);
	HOSTILE_CHECK(pthread_atfork(main_prepare, main_parent, main_child) == 0, "pthread_atfork");
	hostile_churn_start(4);
	for (unsigned round = 0; round < ROUNDS; round++) {
		fflush(NULL);
		hostile_watchdog(10, "atfork: fork() did not return within 10 s: a deadlock in the fork handlers "
				 "(an allocating handler met the locks tcm's prepare handler holds)");
		pid_t pid = fork();
		if (pid == 0)
			child_main(round);
		hostile_watchdog(0, "");
		HOSTILE_CHECK(pid > 0, "fork: %s", strerror(errno));
		int status;
		char text[96];
		HOSTILE_CHECK(hostile_wait(pid, &status, 10000), "%s round %u: the child did not exit within 10 s "
			      "(a deadlock in the child's fork handlers?)", mode, round);
		HOSTILE_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s round %u: child ended with %s", mode,
			      round, hostile_describe_status(status, text, sizeof(text)));
	}
	unsigned long ops = hostile_churn_stop();
	HOSTILE_CHECK(atomic_load(&main_prepare_runs) == ROUNDS && atomic_load(&main_parent_runs) == ROUNDS,
		      "main's fork handlers ran %u/%u times, expected %d", atomic_load(&main_prepare_runs),
		      atomic_load(&main_parent_runs), ROUNDS);
	if (has_library)
		HOSTILE_CHECK(atomic_load(lib_counter("hostile_atfork_lib_prepare_runs")) == ROUNDS &&
			      atomic_load(lib_counter("hostile_atfork_lib_parent_runs")) == ROUNDS,
			      "the library's fork handlers did not run once per fork");
	hostile_print("atfork %s: %d forks passed, parent threads made %lu allocations meanwhile", mode, ROUNDS, ops);
	return 0;
}
