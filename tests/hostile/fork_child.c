/* tests/hostile/fork_child.c - a fork child is single-threaded even when tcm's
 * release worker runs in the parent (DESIGN invariant 6: no extra thread in a
 * fork child).
 *
 *   fork_child rate       run with TCM_RELEASE_RATE_MIB_S=10 (the worker starts at init)
 *   fork_child handler    the program installs a SIGTERM handler (the worker starts then)
 *
 * The parent (main thread plus 2 allocating threads) first checks that tcm's
 * worker really runs (a thread beyond its own), then forks 10 times. Right after
 * fork each child counts /proc/self/task, which must hold exactly 1 entry, and
 * calls unshare(CLONE_NEWUSER), which the kernel refuses (EINVAL) to a
 * multi-threaded process. The unshare check is skipped, saying why, only when
 * unshare(CLONE_NEWUSER) also fails in a process without the preload (probed by
 * running this program as `probe-unshare` with LD_PRELOAD removed). */
#define _GNU_SOURCE
#include "hostile.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ROUNDS 10
#define APP_THREADS 3   /* main + 2 churn threads */

static void on_sigterm(int signo)
{
	(void)signo;
}

/* Exit 0 when unshare(CLONE_NEWUSER) works here, else 1 with the reason. */
static int probe_unshare(void)
{
	if (unshare(CLONE_NEWUSER) == 0)
		return 0;
	hostile_print("unshare(CLONE_NEWUSER) without tcm: %s", strerror(errno));
	return 1;
}

/* Runs this program as probe-unshare with LD_PRELOAD removed from the environment. */
static bool unshare_works_without_tcm(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	HOSTILE_CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	size_t count = 0;
	while (environ[count] != NULL)
		count++;
	char **env = calloc(count + 1, sizeof(char *));
	HOSTILE_CHECK(env != NULL, "calloc");
	size_t kept = 0;
	for (size_t i = 0; i < count; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
			env[kept++] = environ[i];
	char *argv[] = { exe, "probe-unshare", NULL };
	pid_t pid;
	int err = posix_spawn(&pid, exe, NULL, NULL, argv, env);
	free(env);
	HOSTILE_CHECK(err == 0, "posix_spawn: %s", strerror(err));
	int status;
	HOSTILE_CHECK(hostile_wait(pid, &status, 10000), "probe-unshare did not exit");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void child_main(bool check_unshare)
{
	hostile_child_alarm(20);
	int tasks = hostile_count_tasks();   /* first thing after fork */
	int bad = 0;
	if (tasks != 1) {
		hostile_print("FAIL: fork child: /proc/self/task has %d entries right after fork, expected 1 "
			      "(a thread was started in the child)", tasks);
		bad |= 1;
	}
	if (check_unshare && unshare(CLONE_NEWUSER) != 0) {
		hostile_print("FAIL: fork child: unshare(CLONE_NEWUSER) failed: %s (it works without tcm; EINVAL "
			      "means the child is multi-threaded)", strerror(errno));
		bad |= 2;
	}
	_exit(bad);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "probe-unshare") == 0)
		return probe_unshare();
	bool with_handler = argc == 2 && strcmp(argv[1], "handler") == 0;
	if (argc != 2 || (!with_handler && strcmp(argv[1], "rate") != 0)) {
		fprintf(stderr, "usage: fork_child rate|handler\n");
		return 2;
	}
	bool under_tcm = hostile_require_tcm("fork_child");
	hostile_watchdog(50, "fork_child: did not finish in 50 s");
	if (with_handler) {
		struct sigaction action = { .sa_handler = on_sigterm };
		sigemptyset(&action.sa_mask);
		HOSTILE_CHECK(sigaction(SIGTERM, &action, NULL) == 0, "sigaction: %s", strerror(errno));
	}
	hostile_churn_start(APP_THREADS - 1);
	int tasks = hostile_count_tasks();
	for (long long deadline = hostile_now_ms() + 3000; under_tcm && tasks <= APP_THREADS &&
	     hostile_now_ms() < deadline; tasks = hostile_count_tasks())
		hostile_sleep_ms(10);
	if (under_tcm)
		HOSTILE_CHECK(tasks > APP_THREADS, "fork_child %s: the parent has %d threads, its own %d: tcm's worker "
			      "is not running, so this scenario would test nothing (%s)", argv[1], tasks, APP_THREADS,
			      with_handler ? "a SIGTERM handler is installed" : "is TCM_RELEASE_RATE_MIB_S set?");
	hostile_print("fork_child %s: parent runs %d threads (%d of its own)", argv[1], tasks, APP_THREADS);
	bool check_unshare = unshare_works_without_tcm();
	if (!check_unshare)
		hostile_print("fork_child %s: SKIPPED the unshare(CLONE_NEWUSER) sub-check: it fails without tcm too",
			      argv[1]);
	int failures = 0;
	for (int round = 0; round < ROUNDS; round++) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0)
			child_main(check_unshare);
		HOSTILE_CHECK(pid > 0, "fork: %s", strerror(errno));
		int status;
		char text[96];
		HOSTILE_CHECK(hostile_wait(pid, &status, 10000), "round %d: the child did not exit within 10 s", round);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			hostile_print("FAIL: fork_child %s round %d: child ended with %s", argv[1], round,
				      hostile_describe_status(status, text, sizeof(text)));
			failures++;
		}
	}
	hostile_churn_stop();
	HOSTILE_CHECK(failures == 0, "fork_child %s: %d of %d fork children were not single-threaded", argv[1],
		      failures, ROUNDS);
	hostile_print("fork_child %s: %d fork children had one thread%s", argv[1], ROUNDS,
		      check_unshare ? " and could unshare(CLONE_NEWUSER)" : "");
	return 0;
}
