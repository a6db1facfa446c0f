/* tests/hostile/sigaction_lock.c - sigaction(SIGTERM) stays async-signal-safe
 * and fork-safe under LD_PRELOAD=libtcm.so, as it is in glibc (a plain system
 * call there; tcm interposes it and keeps a record of the application's action).
 *
 *   sigaction_lock fork_child
 *     one thread calls sigaction(SIGTERM, handler) in a loop while the main thread
 *     forks 200 times; each child calls signal(SIGTERM, SIG_DFL) and
 *     sigaction(SIGTERM, SIG_DFL) and _exit(0)s. A lock tcm held in the parent
 *     when it forked (taken by the looping thread) must not block the child: a
 *     child still there after 5 s (its alarm) is a deadlock.
 *   sigaction_lock handler_reenter
 *     the main thread calls sigaction(SIGTERM, ...) in a loop; another thread
 *     sends it 500 SIGTERMs, one at a time; the handler itself calls
 *     sigaction(SIGTERM, ...). A handler that interrupts its own thread inside
 *     tcm's sigaction must not wait for a lock that thread holds: a SIGTERM not
 *     handled within 5 s is a deadlock. */
#define _GNU_SOURCE
#include "hostile.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORK_ROUNDS 200
#define SIGNALS 500
#define HANG_MS 5000   /* a hang detector, not a timing assert */

static atomic_bool stop;
static atomic_uint handled;
static atomic_ulong setting_calls;
static struct sigaction handler_action;

static void on_sigterm(int signo)
{
	(void)signo;
	int saved_errno = errno;
	sigaction(SIGTERM, &handler_action, NULL);   /* re-install from inside the handler */
	atomic_fetch_add(&handled, 1);
	errno = saved_errno;
}

static void *set_in_a_loop(void *unused)
{
	(void)unused;
	while (!atomic_load(&stop)) {
		struct sigaction old;
		if (sigaction(SIGTERM, &handler_action, &old) != 0 || signal(SIGTERM, on_sigterm) == SIG_ERR)
			HOSTILE_FAIL("sigaction(SIGTERM) in the loop: %s", strerror(errno));
		atomic_fetch_add(&setting_calls, 2);
	}
	return NULL;
}

static int fork_child_scenario(void)
{
	pthread_t setter;
	HOSTILE_CHECK(pthread_create(&setter, NULL, set_in_a_loop, NULL) == 0, "pthread_create");
	while (atomic_load(&setting_calls) == 0)
		hostile_sleep_ms(1);
	for (int round = 0; round < FORK_ROUNDS; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			hostile_child_alarm(HANG_MS / 1000);
			struct sigaction default_action = { .sa_handler = SIG_DFL };
			sigemptyset(&default_action.sa_mask);
			if (signal(SIGTERM, SIG_DFL) == SIG_ERR || sigaction(SIGTERM, &default_action, NULL) != 0)
				_exit(2);
			_exit(0);
		}
		HOSTILE_CHECK(pid > 0, "fork: %s", strerror(errno));
		int status;
		char text[96];
		HOSTILE_CHECK(hostile_wait(pid, &status, 2 * HANG_MS), "round %d: the child did not exit within %d s",
			      round, 2 * HANG_MS / 1000);
		HOSTILE_CHECK(!(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM),
			      "fork_child round %d: the child hung in signal/sigaction(SIGTERM) for %d s (a lock "
			      "another thread of the parent held at fork time?)", round, HANG_MS / 1000);
		HOSTILE_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork_child round %d: child ended with %s",
			      round, hostile_describe_status(status, text, sizeof(text)));
	}
	atomic_store(&stop, true);
	pthread_join(setter, NULL);
	hostile_print("sigaction_lock fork_child: %d children reset SIGTERM while the parent made %lu "
		      "sigaction/signal calls", FORK_ROUNDS, atomic_load(&setting_calls));
	return 0;
}

static void *send_signals(void *unused)
{
	(void)unused;
	for (unsigned i = 0; i < SIGNALS; i++) {
		unsigned before = atomic_load(&handled);
		kill(getpid(), SIGTERM);
		long long deadline = hostile_now_ms() + HANG_MS;
		while (atomic_load(&handled) == before) {
			if (hostile_now_ms() > deadline)
				HOSTILE_FAIL("handler_reenter: SIGTERM %u of %d was not handled within %d s: the handler's "
					     "sigaction(SIGTERM) deadlocked against the one it interrupted", i + 1, SIGNALS,
					     HANG_MS / 1000);
			sched_yield();
		}
	}
	atomic_store(&stop, true);
	return NULL;
}

static int handler_reenter_scenario(void)
{
	HOSTILE_CHECK(sigaction(SIGTERM, &handler_action, NULL) == 0, "sigaction: %s", strerror(errno));
	/* Only the main thread takes SIGTERM: the sender blocks it from birth. */
	sigset_t term, previous;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &previous);
	pthread_t sender;
	HOSTILE_CHECK(pthread_create(&sender, NULL, send_signals, NULL) == 0, "pthread_create");
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	unsigned long calls = 0;
	while (!atomic_load(&stop)) {
		struct sigaction old;
		HOSTILE_CHECK(sigaction(SIGTERM, &handler_action, &old) == 0, "sigaction: %s", strerror(errno));
		HOSTILE_CHECK(old.sa_handler == on_sigterm, "sigaction(SIGTERM) reported another handler");
		calls++;
	}
	pthread_join(sender, NULL);
	hostile_print("sigaction_lock handler_reenter: %u SIGTERMs handled while the main thread made %lu "
		      "sigaction calls", atomic_load(&handled), calls);
	return 0;
}

int main(int argc, char **argv)
{
	bool fork_child = argc == 2 && strcmp(argv[1], "fork_child") == 0;
	if (argc != 2 || (!fork_child && strcmp(argv[1], "handler_reenter") != 0)) {
		fprintf(stderr, "usage: sigaction_lock fork_child|handler_reenter\n");
		return 2;
	}
	hostile_require_tcm("sigaction_lock");
	hostile_watchdog(50, "sigaction_lock: did not finish in 50 s");
	handler_action.sa_handler = on_sigterm;
	sigemptyset(&handler_action.sa_mask);
	handler_action.sa_flags = SA_RESTART;
	return fork_child ? fork_child_scenario() : handler_reenter_scenario();
}
