/* tests/hostile/resethand.c - SA_RESETHAND under back-to-back SIGTERMs in a
 * multi-threaded process, under LD_PRELOAD=libtcm.so.
 *
 *   resethand threads|peer|process|busy|kill
 *
 * Each of 50-120 rounds forks a target process that installs a SIGTERM handler with
 * SA_RESETHAND and runs several threads; then two SIGTERMs arrive back to back.
 * The kernel resets the action to SIG_DFL when it delivers the first, so the
 * handler runs at most once and the second SIGTERM kills the process, every
 * time (the target's main thread gives up and exits 0 a second after it was
 * ready, which counts as a failure: the process survived its second SIGTERM):
 *   threads  a third thread of the target sends tgkill to the main thread and to
 *            another spinning thread, back to back (per-thread signals are never
 *            merged, so both are delivered, possibly at the same time);
 *   peer     the spinning thread itself sends them: to the main thread, then to
 *            itself (both deliveries start within microseconds);
 *   process  the same two tgkills from the test's process;
 *   busy     four threads of the target allocate and free; the test's process
 *            sends the tgkills to two of them, a different pair each round;
 *   kill     four allocating threads; the test's process sends kill(pid, SIGTERM),
 *            waits until /proc/<pid>/status shows it is no longer pending (the
 *            handler runs, the action is SIG_DFL), and sends the second kill.
 * A reference run without the preload dies by SIGTERM in every round.
 * The bug this was written for: tcm's wrapper removed SA_RESETHAND from the
 * kernel's action and reset it from inside the handler, so a second SIGTERM
 * delivered to another thread before that reset ran the wrapper again, which
 * then ran the handler a second time or swallowed the signal. */
#define _GNU_SOURCE
#include "hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FAILURES 3      /* stop early: the verdict is clear and each failure costs a second */
#define TARGET_THREADS 4
#define SURVIVE_MS 1000     /* after its handler ran, a target still alive this long survived */

/* Shared between the test's process and the target (MAP_SHARED). */
struct shared {
	atomic_int handler_runs;
	atomic_int threads_ready;
	atomic_int ready;                 /* 1: handler installed, tids published */
	pid_t tids[TARGET_THREADS];       /* [0] is the main thread */
};

enum mode { MODE_THREADS, MODE_PEER, MODE_PROCESS, MODE_BUSY, MODE_KILL, MODE_COUNT };
static const char *const mode_names[MODE_COUNT] = { "threads", "peer", "process", "busy", "kill" };
/* Each round is one chance to meet a race that is microseconds wide; the
 * cheaper modes (two spinning threads) get more rounds. */
static const int mode_rounds[MODE_COUNT] = { 100, 50, 120, 100, 100 };

static struct shared *shared;
static enum mode mode;
static int round_number;

static pid_t current_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void on_sigterm(int signo)
{
	(void)signo;
	atomic_fetch_add(&shared->handler_runs, 1);
}

static void send_pair(pid_t pid, int first, int second);

static void *spin(void *arg)
{
	int index = (int)(intptr_t)arg;
	shared->tids[index] = current_tid();
	atomic_fetch_add(&shared->threads_ready, 1);
	bool allocates = mode == MODE_BUSY || mode == MODE_KILL;
	while (atomic_load(&shared->ready) == 0)
		sched_yield();   /* on a loaded machine, leave the CPU to the threads still starting */
	if (mode == MODE_PEER && index == 1)
		send_pair(getpid(), 0, 1);
	for (unsigned i = 0;; i++) {
		if (allocates && hostile_churn(i * 13u + (unsigned)index, 64) != 0)
			_exit(3);
	}
	return NULL;
}

static void send_pair(pid_t pid, int first, int second)
{
	syscall(SYS_tgkill, pid, shared->tids[first], SIGTERM);
	syscall(SYS_tgkill, pid, shared->tids[second], SIGTERM);
}

static void *send_from_thread(void *unused)
{
	(void)unused;
	while (atomic_load(&shared->ready) == 0)
		sched_yield();
	send_pair(getpid(), 0, 1);
	return NULL;
}

static void target_main(void)
{
	hostile_child_alarm(10);
	shared->tids[0] = current_tid();
	struct sigaction action = { .sa_handler = on_sigterm, .sa_flags = SA_RESETHAND };
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGTERM, &action, NULL) != 0)
		_exit(4);
	int threads = mode == MODE_THREADS || mode == MODE_PROCESS || mode == MODE_PEER ? 2 : TARGET_THREADS;
	pthread_t thread;
	for (int i = 1; i < threads; i++)
		if (pthread_create(&thread, NULL, spin, (void *)(intptr_t)i) != 0)
			_exit(5);
	if (mode == MODE_THREADS) {
		/* The sender never takes SIGTERM itself: it is created with SIGTERM blocked. */
		sigset_t term, previous;
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &term, &previous);
		if (pthread_create(&thread, NULL, send_from_thread, NULL) != 0)
			_exit(5);
		pthread_sigmask(SIG_SETMASK, &previous, NULL);
	}
	while (atomic_load(&shared->threads_ready) < threads - 1)
		sched_yield();
	atomic_store(&shared->ready, 1);
	/* Spin (no system call) until the handler ran, then give the second
	 * SIGTERM a second to kill. */
	long long since_handler = 0;
	for (unsigned i = 0;; i++) {
		if (i % 4096 == 0 && atomic_load(&shared->handler_runs) > 0) {
			long long now = hostile_now_ms();
			if (since_handler == 0)
				since_handler = now;
			else if (now - since_handler > SURVIVE_MS)
				_exit(0);
		}
	}
}

/* True while SIGTERM is pending for the whole process (ShdPnd in /proc/<pid>/status). */
static bool is_term_pending(pid_t pid)
{
	char path[64], text[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	const char *line = strstr(text, "ShdPnd:");
	if (line == NULL)
		return false;
	unsigned long long pending = strtoull(line + 7, NULL, 16);
	return (pending >> (SIGTERM - 1)) & 1;
}

static void send_from_test(pid_t pid)
{
	long long deadline = hostile_now_ms() + 5000;
	while (atomic_load(&shared->ready) == 0 && hostile_now_ms() < deadline)
		sched_yield();
	if (atomic_load(&shared->ready) == 0)
		return;   /* the wait reports the target's state */
	if (mode == MODE_PROCESS) {
		send_pair(pid, 0, 1);
	} else if (mode == MODE_BUSY) {
		int first = round_number % TARGET_THREADS;
		send_pair(pid, first, (first + 1 + round_number / TARGET_THREADS % (TARGET_THREADS - 1)) %
			  TARGET_THREADS);
	} else {
		kill(pid, SIGTERM);
		while (is_term_pending(pid) && hostile_now_ms() < deadline)
			;
		kill(pid, SIGTERM);
	}
}

/* Returns true when the round went as it does without tcm. */
static bool run_round(void)
{
	memset(shared, 0, sizeof(*shared));
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		target_main();
	HOSTILE_CHECK(pid > 0, "fork: %s", strerror(errno));
	if (mode != MODE_THREADS && mode != MODE_PEER)
		send_from_test(pid);
	int status;
	char text[96];
	/* Blocking: the sender sleeps at once, so a target thread that shares its CPU
	 * takes the second SIGTERM soon after the first. The target's alarm and this
	 * process's watchdog bound the wait. */
	while (waitpid(pid, &status, 0) < 0)
		HOSTILE_CHECK(errno == EINTR, "waitpid: %s", strerror(errno));
	int runs = atomic_load(&shared->handler_runs);
	bool died_by_term = WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM;
	if (died_by_term && runs <= 1)
		return true;
	hostile_print("FAIL: resethand %s round %d: the target ended with %s%s, and its SA_RESETHAND handler ran %d "
		      "times (expected: killed by the second SIGTERM, handler at most once)", mode_names[mode],
		      round_number, hostile_describe_status(status, text, sizeof(text)),
		      WIFEXITED(status) && WEXITSTATUS(status) == 0 ? " (it survived the second SIGTERM)" : "", runs);
	return false;
}

int main(int argc, char **argv)
{
	int found = -1;
	for (int i = 0; argc == 2 && i < MODE_COUNT; i++)
		if (strcmp(argv[1], mode_names[i]) == 0)
			found = i;
	if (found < 0) {
		fprintf(stderr, "usage: resethand threads|peer|process|busy|kill\n");
		return 2;
	}
	mode = (enum mode)found;
	hostile_require_tcm("resethand");
	hostile_watchdog(55, "resethand: the rounds did not finish in 55 s");
	shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	HOSTILE_CHECK(shared != MAP_FAILED, "mmap: %s", strerror(errno));
	int failures = 0, rounds = 0;
	for (round_number = 0; round_number < mode_rounds[mode] && failures < MAX_FAILURES; round_number++, rounds++)
		failures += !run_round();
	HOSTILE_CHECK(failures == 0, "resethand %s: %d of %d rounds went wrong", mode_names[mode], failures, rounds);
	hostile_print("resethand %s: %d rounds, the target died by its second SIGTERM every time", mode_names[mode],
		      rounds);
	return 0;
}
