/* tests/process/sigterm_matrix.c - SIGTERM under the shim does what the
 * application asked for, whatever it asked (orchestrator/sigterm.h):
 *   sigterm_matrix SCENARIO
 * forks a child that runs SCENARIO under the preloaded libtcm.so, and the
 * parent checks how the child ended. Scenarios: default_dies, ignored_survives,
 * handler_once_per_signal, siginfo, resethand, restart, no_restart, replaced,
 * signal_api, old_action, sigwait, sigwaitinfo_and_sigtimedwait, signalfd, drain_trigger, fork_while_draining,
 * racing_first_settings, fork_while_another_thread_sets, installed_before_init (run with the early_sigterm library preloaded after
 * libtcm.so), set_raced_by_first_wrap (with the held_sigaction library preloaded after it),
 * straight_set_during_arm (with the arm_race library preloaded after it), adopted_in_fork_child (with the
 * fork_handler_sets library preloaded after it); and the older calls that set a disposition, which glibc
 * does with its internal sigaction: sysv_signal, strict_c_signal (a strict ISO C program's signal(),
 * which is __sysv_signal: strict_c_signal.c), bsd_signal_and_ssignal, sigset_hold_and_release,
 * sigignore_and_siginterrupt. Exit 0 = the scenario behaved as the kernel would without tcm. */
#define _GNU_SOURCE
#include "../../include/tcm.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); _exit(1); } while (0)
#define CHECK(condition, ...) do { if (!(condition)) FAIL(__VA_ARGS__); } while (0)

static volatile sig_atomic_t calls, other_calls;
static volatile sig_atomic_t seen_signo, seen_code;
static volatile pid_t seen_pid;

static void count_call(int signo) { (void)signo; calls++; }
static void count_other(int signo) { (void)signo; other_calls++; }
static void record_info(int signo, siginfo_t *info, void *context)
{
	(void)context;
	calls++;
	seen_signo = signo;
	seen_code = info->si_code;
	seen_pid = info->si_pid;
}

static void sleep_ms(long ms)
{
	struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
		;
}

/* Sends SIGTERM to this process and waits (bounded) until `calls` reaches want. */
static void term_self_and_wait(int want)
{
	kill(getpid(), SIGTERM);
	for (int i = 0; i < 5000 && calls < want; i++)
		sleep_ms(1);
}

static void install(void (*handler)(int), int flags)
{
	struct sigaction action = { .sa_handler = handler, .sa_flags = flags };
	sigemptyset(&action.sa_mask);
	CHECK(sigaction(SIGTERM, &action, NULL) == 0, "sigaction: %s", strerror(errno));
}

void (*strict_c_signal(int signo, void (*handler)(int)))(int);   /* strict_c_signal.c */
__sighandler_t bsd_signal(int signo, __sighandler_t handler);    /* glibc declares it only for old X/Open */

static struct tcm_shutdown_stats shutdown_stats(void)
{
	void (*stats_fn)(struct tcm_stats *) = (void (*)(struct tcm_stats *))dlsym(RTLD_DEFAULT, "tcm_stats");
	CHECK(stats_fn != NULL, "tcm_stats not found: is libtcm.so preloaded?");
	struct tcm_stats stats;
	stats_fn(&stats);
	return stats.shutdown;
}

static void churn(int objects)
{
	void **slots = malloc((size_t)objects * sizeof(void *));
	CHECK(slots != NULL, "malloc");
	for (int i = 0; i < objects; i++) {
		slots[i] = malloc(16 + (size_t)(i % 4000));
		CHECK(slots[i] != NULL, "malloc");
		memset(slots[i], i, 16);
	}
	for (int i = 0; i < objects; i++)
		free(slots[i]);
	free(slots);
}

/* The threads of this process, from /proc/self/task. */
static int thread_count(void)
{
	int count = 0;
	DIR *tasks = opendir("/proc/self/task");
	CHECK(tasks != NULL, "opendir /proc/self/task: %s", strerror(errno));
	for (struct dirent *entry; (entry = readdir(tasks)) != NULL;)
		count += entry->d_name[0] != '.';
	closedir(tasks);
	return count;
}

/* adopted_in_fork_child: this process is a fork child in which the
 * fork_handler_sets library's atfork handler, which runs before tcm's,
 * installed a handler; tcm adopted it. A child that adopted a handler is
 * like one that inherited its parent's: no worker until the child itself
 * installs a handler, and then one, as in any fork child. */
static void adopted_in_fork_child(void)
{
	void (*adopted)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "fork_handler_sets_handler");
	CHECK(adopted != NULL, "the fork_handler_sets library is not preloaded");
	struct sigaction reported;
	CHECK(sigaction(SIGTERM, NULL, &reported) == 0 && reported.sa_handler == adopted,
	      "sigaction reports %p, not the handler the fork handler installed", (void *)reported.sa_handler);
	CHECK(thread_count() == 1, "a fork child has %d threads before it installs a handler", thread_count());
	install(count_call, 0);
	CHECK(thread_count() == 2, "the child's own handler started no worker (%d threads)", thread_count());
	term_self_and_wait(1);
	CHECK(calls == 1, "the handler ran %d times", (int)calls);
	CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "tcm saw no SIGTERM");
}

/* ---- SA_RESTART: is a blocked read restarted after the handler? ---------- */

static int restart_pipe[2];
static pid_t main_tid;

static bool main_thread_is_sleeping(void)
{
	char path[64], stat[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)main_tid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	ssize_t got = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (got <= 0)
		return false;
	stat[got] = '\0';
	const char *end = strrchr(stat, ')');
	return end != NULL && end[1] == ' ' && end[2] == 'S';
}

static volatile sig_atomic_t is_about_to_read;

/* The main thread is blocked in its read: it said it was about to read, and
 * it has slept through five looks 2 ms apart (one look was not enough under
 * qemu, where the thread may sleep in the emulator's own locks on its way to
 * the read, so the signal came before the read and the read then got the
 * byte). */
static void wait_until_main_thread_reads(void)
{
	while (!is_about_to_read)
		sleep_ms(1);
	for (int asleep = 0; asleep < 5;) {
		asleep = main_thread_is_sleeping() ? asleep + 1 : 0;
		sleep_ms(2);
	}
}

static void *interrupt_then_write(void *main_thread)
{
	wait_until_main_thread_reads();
	pthread_kill(*(pthread_t *)main_thread, SIGTERM);
	while (calls == 0)
		sleep_ms(1);
	sleep_ms(20);
	CHECK(write(restart_pipe[1], "x", 1) == 1, "write");
	return NULL;
}

static void run_restart(bool want_restart)
{
	install(count_call, want_restart ? SA_RESTART : 0);
	CHECK(pipe(restart_pipe) == 0, "pipe");
	main_tid = (pid_t)syscall(SYS_gettid);
	pthread_t self = pthread_self(), helper;
	pthread_create(&helper, NULL, interrupt_then_write, &self);
	char byte;
	is_about_to_read = 1;
	ssize_t got = read(restart_pipe[0], &byte, 1);
	int read_errno = errno;
	pthread_join(helper, NULL);
	CHECK(calls == 1, "handler called %d times", (int)calls);
	if (want_restart)
		CHECK(got == 1, "read was not restarted: %zd (%s)", got, strerror(read_errno));
	else
		CHECK(got == -1 && read_errno == EINTR, "read was restarted without SA_RESTART: %zd", got);
}

/* racing_first_settings: a thread installs a handler (the first setting that
 * goes through tcm's lock) while the main thread sets SIG_DFL (straight to the
 * kernel while no setting has needed the lock), in a fresh fork child each
 * time. Whichever won, what sigaction reports must be what the kernel does:
 * the handler with tcm's wrapper in the kernel, SIG_DFL with SIG_DFL. */
static atomic_int race_start, race_ready;

static void *install_at_start(void *unused)
{
	(void)unused;
	atomic_store(&race_ready, 1);
	while (atomic_load(&race_start) == 0)
		;
	install(count_call, 0);
	return NULL;
}

static int race_once(unsigned delay_spins)
{
	pthread_t thread;
	CHECK(pthread_create(&thread, NULL, install_at_start, NULL) == 0, "pthread_create");
	struct sigaction default_action = { .sa_handler = SIG_DFL };
	sigemptyset(&default_action.sa_mask);
	while (atomic_load(&race_ready) == 0)
		;   /* the thread is spinning: both are on a CPU */
	atomic_store(&race_start, 1);
	for (volatile unsigned spin = 0; spin < delay_spins; spin++)
		;
	CHECK(sigaction(SIGTERM, &default_action, NULL) == 0, "sigaction SIG_DFL");
	pthread_join(thread, NULL);
	struct sigaction reported;
	CHECK(sigaction(SIGTERM, NULL, &reported) == 0, "sigaction query");
	void *kernel_action[8] = { 0 };   /* the kernel's struct; the handler comes first */
	CHECK(syscall(SYS_rt_sigaction, SIGTERM, NULL, kernel_action, 8) == 0, "rt_sigaction");
	bool kernel_default = kernel_action[0] == (void *)SIG_DFL;
	if (reported.sa_handler == SIG_DFL) {
		CHECK(kernel_default, "SIG_DFL reported while the kernel has a handler");
		return 1;
	}
	CHECK(reported.sa_handler == count_call, "reported neither SIG_DFL nor the handler");
	CHECK(!kernel_default, "the handler reported while the kernel has SIG_DFL");
	kill(getpid(), SIGTERM);
	for (int i = 0; i < 5000 && calls == 0; i++)
		sleep_ms(1);
	CHECK(calls == 1, "the handler reported but called %d times", (int)calls);
	return 2;
}

static void race_first_settings(void)
{
	int outcomes[3] = { 0 };
	for (int i = 0; i < 300; i++) {
		pid_t child = fork();
		CHECK(child >= 0, "fork");
		if (child == 0)
			_exit(race_once((unsigned)(i * 331) % 100000));   /* a spread of delays: both orders */
		int status;
		CHECK(waitpid(child, &status, 0) == child, "waitpid");
		CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == 1 || WEXITSTATUS(status) == 2),
		      "race %d: child ended with status %#x", i, status);
		outcomes[WEXITSTATUS(status)]++;
	}
	fprintf(stderr, "racing_first_settings: SIG_DFL last %d times, the handler last %d times\n", outcomes[1], outcomes[2]);
}

/* set_raced_by_first_wrap: the main thread's set of SIG_DFL, straight to the
 * kernel while no setting has needed tcm's lock, is held just before the
 * kernel (held_sigaction_lib.c) while another thread installs a handler
 * through the lock; then the set goes on and replaces tcm's wrapper. SIG_DFL
 * was set last, so SIG_DFL is what sigaction must report and what a SIGTERM
 * must do. */
struct held_set {
	atomic_int *is_holding;
	atomic_int *release;
};

static void *install_while_held(void *context)
{
	struct held_set *held = context;
	while (atomic_load(held->is_holding) == 0)
		;
	install(count_call, 0);
	atomic_store(held->release, 1);
	return NULL;
}

static void set_raced_by_first_wrap(void)
{
	atomic_int *hold = dlsym(RTLD_DEFAULT, "hold_next_default_set");
	struct held_set held = { dlsym(RTLD_DEFAULT, "is_holding"), dlsym(RTLD_DEFAULT, "release_held_set") };
	CHECK(hold != NULL && held.is_holding != NULL && held.release != NULL,
	      "the held_sigaction library is not preloaded after libtcm.so");
	pthread_t installer;
	CHECK(pthread_create(&installer, NULL, install_while_held, &held) == 0, "pthread_create");
	struct sigaction default_action = { .sa_handler = SIG_DFL }, replaced;
	sigemptyset(&default_action.sa_mask);
	atomic_store(hold, 1);
	CHECK(sigaction(SIGTERM, &default_action, &replaced) == 0, "sigaction SIG_DFL");
	pthread_join(installer, NULL);
	CHECK(replaced.sa_handler == count_call, "the set replaced %p, not the handler installed while it was held",
	      (void *)replaced.sa_handler);
	struct sigaction reported;
	CHECK(sigaction(SIGTERM, NULL, &reported) == 0, "sigaction query");
	CHECK(reported.sa_handler == SIG_DFL, "sigaction reports %p after SIG_DFL was set last",
	      (void *)reported.sa_handler);
}

/* fork_while_another_thread_sets: one thread keeps setting the handler, the
 * handler with SA_RESETHAND, and SIG_DFL, in turn, while the main thread
 * forks. fork copies the signal actions before the memory, so a child can
 * start with the kernel's action and tcm's record from two different moments.
 * Whatever it reports, the child must then do: die by SIGTERM when it reports
 * SIG_DFL; run the handler when it reports the handler, and on a second
 * SIGTERM die if it reported SA_RESETHAND, else run the handler again. */
static atomic_int toggling_stop;

static void *toggle_handler(void *unused)
{
	(void)unused;
	struct sigaction default_action = { .sa_handler = SIG_DFL };
	sigemptyset(&default_action.sa_mask);
	while (!atomic_load(&toggling_stop)) {
		install(count_call, 0);
		install(count_call, SA_RESETHAND);
		CHECK(sigaction(SIGTERM, &default_action, NULL) == 0, "sigaction SIG_DFL");
	}
	return NULL;
}

static void fork_while_another_thread_sets(void)
{
	pthread_t thread;
	CHECK(pthread_create(&thread, NULL, toggle_handler, NULL) == 0, "pthread_create");
	int deaths = 0, handled = 0;
	for (int i = 0; i < 300; i++) {
		pid_t child = fork();
		CHECK(child >= 0, "fork");
		if (child == 0) {
			struct sigaction reported;
			if (sigaction(SIGTERM, NULL, &reported) != 0)
				_exit(3);
			kill(getpid(), SIGTERM);
			for (int wait = 0; wait < 1000 && calls == 0; wait++)
				sleep_ms(1);
			/* Still alive: right only if the handler was reported and ran. */
			if (reported.sa_handler != count_call)
				_exit(5);
			if (calls != 1)
				_exit(4);
			kill(getpid(), SIGTERM);
			for (int wait = 0; wait < 1000 && calls == 1; wait++)
				sleep_ms(1);
			_exit((reported.sa_flags & SA_RESETHAND) ? 6 : calls == 2 ? 0 : 7);
		}
		int status;
		CHECK(waitpid(child, &status, 0) == child, "waitpid");
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
			deaths++;
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			handled++;
		else
			FAIL("child %d: status %#x (exit 4: the handler was reported but SIGTERM did not run it; "
			     "5: SIG_DFL was reported but SIGTERM did not kill it; 6: SA_RESETHAND was reported "
			     "but a second SIGTERM did not kill it; 7: it was not reported but a second SIGTERM "
			     "did not run the handler)", i, status);
	}
	atomic_store(&toggling_stop, 1);
	pthread_join(thread, NULL);
	fprintf(stderr, "fork_while_another_thread_sets: %d children died by SIGTERM, %d ran the handler\n", deaths,
		handled);
}

/* ---- scenarios run in the child ------------------------------------------ */

static int run_scenario(const char *scenario)
{
	churn(10000);
	if (strcmp(scenario, "default_dies") == 0) {
		kill(getpid(), SIGTERM);
		sleep_ms(5000);
		FAIL("still alive after SIGTERM with the default action");
	} else if (strcmp(scenario, "ignored_survives") == 0) {
		CHECK(signal(SIGTERM, SIG_IGN) == SIG_DFL, "signal() did not return SIG_DFL");
		kill(getpid(), SIGTERM);
		sleep_ms(50);
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_NONE, "an ignored SIGTERM started a shutdown");
	} else if (strcmp(scenario, "handler_once_per_signal") == 0) {
		install(count_call, 0);
		for (int want = 1; want <= 3; want++) {
			term_self_and_wait(want);
			sleep_ms(20);
			CHECK(calls == want, "after %d signals the handler ran %d times", want, (int)calls);
		}
	} else if (strcmp(scenario, "siginfo") == 0) {
		struct sigaction action = { .sa_sigaction = record_info, .sa_flags = SA_SIGINFO };
		sigemptyset(&action.sa_mask);
		CHECK(sigaction(SIGTERM, &action, NULL) == 0, "sigaction");
		term_self_and_wait(1);
		CHECK(calls == 1 && seen_signo == SIGTERM, "siginfo handler: %d calls, signo %d", (int)calls, (int)seen_signo);
		CHECK(seen_code == SI_USER && seen_pid == getpid(), "siginfo: code %d pid %d", (int)seen_code, (int)seen_pid);
	} else if (strcmp(scenario, "resethand") == 0) {
		install(count_call, SA_RESETHAND);
		term_self_and_wait(1);
		CHECK(calls == 1, "SA_RESETHAND handler ran %d times", (int)calls);
		struct sigaction now;
		CHECK(sigaction(SIGTERM, NULL, &now) == 0 && now.sa_handler == SIG_DFL, "not reset to SIG_DFL");
		kill(getpid(), SIGTERM);   /* the default action now: the parent sees death by SIGTERM */
		sleep_ms(5000);
		FAIL("survived the second SIGTERM after SA_RESETHAND");
	} else if (strcmp(scenario, "restart") == 0) {
		run_restart(true);
	} else if (strcmp(scenario, "no_restart") == 0) {
		run_restart(false);
	} else if (strcmp(scenario, "replaced") == 0) {
		install(count_other, 0);
		install(count_call, 0);
		term_self_and_wait(1);
		sleep_ms(20);
		CHECK(calls == 1 && other_calls == 0, "replaced handler: new %d, old %d", (int)calls, (int)other_calls);
	} else if (strcmp(scenario, "signal_api") == 0) {
		CHECK(signal(SIGTERM, count_call) == SIG_DFL, "signal() did not return SIG_DFL");
		CHECK(signal(SIGTERM, count_call) == count_call, "signal() did not return the handler");
		term_self_and_wait(1);
		sleep_ms(20);
		CHECK(calls == 1, "signal() handler ran %d times", (int)calls);
	} else if (strcmp(scenario, "old_action") == 0) {
		struct sigaction action = { .sa_handler = count_call, .sa_flags = SA_RESTART | SA_NODEFER };
		sigemptyset(&action.sa_mask);
		sigaddset(&action.sa_mask, SIGUSR1);
		struct sigaction old;
		CHECK(sigaction(SIGTERM, &action, &old) == 0 && old.sa_handler == SIG_DFL, "first old action not SIG_DFL");
		CHECK(sigaction(SIGTERM, NULL, &old) == 0, "sigaction query");
		CHECK(old.sa_handler == count_call, "query does not report the application's handler");
		CHECK((old.sa_flags & (SA_RESTART | SA_NODEFER)) == (SA_RESTART | SA_NODEFER), "flags lost: %#x", old.sa_flags);
		CHECK(!(old.sa_flags & SA_SIGINFO), "tcm's SA_SIGINFO leaked into the reported flags");
		CHECK(sigismember(&old.sa_mask, SIGUSR1) == 1, "mask lost");
	} else if (strcmp(scenario, "sigwait") == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		kill(getpid(), SIGTERM);
		int signo = 0;
		errno = EDOM;   /* libc leaves it on success; tcm's start of its worker must too */
		CHECK(sigwait(&set, &signo) == 0 && signo == SIGTERM, "sigwait returned %d", signo);
		CHECK(errno == EDOM, "errno changed to %d by a successful sigwait", errno);
		struct tcm_shutdown_stats stats = shutdown_stats();
		CHECK(stats.trigger == TCM_SHUTDOWN_SIGTERM && stats.t0_ns != 0,
		      "a SIGTERM taken by sigwait started no shutdown (trigger %u)", stats.trigger);
	} else if (strcmp(scenario, "sigwaitinfo_and_sigtimedwait") == 0) {
		/* libc's results and errno come through; only a SIGTERM taken starts the shutdown */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		siginfo_t info;
		struct timespec none = { 0, 0 }, long_enough = { 10, 0 };
		errno = 0;
		CHECK(sigtimedwait(&set, &info, &none) == -1 && errno == EAGAIN, "sigtimedwait on nothing: errno %d",
		      errno);
		kill(getpid(), SIGUSR1);
		CHECK(sigwaitinfo(&set, &info) == SIGUSR1 && info.si_signo == SIGUSR1, "sigwaitinfo: SIGUSR1");
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_NONE, "a SIGUSR1 taken started a shutdown");
		kill(getpid(), SIGTERM);
		CHECK(sigtimedwait(&set, &info, &long_enough) == SIGTERM && info.si_pid == getpid(),
		      "sigtimedwait: SIGTERM from this process");
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "a SIGTERM taken by sigtimedwait started no shutdown");
	} else if (strcmp(scenario, "signalfd") == 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		int fd = signalfd(-1, &set, SFD_CLOEXEC);
		CHECK(fd >= 0, "signalfd");
		kill(getpid(), SIGTERM);
		struct signalfd_siginfo info;
		CHECK(read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info) && info.ssi_signo == SIGTERM, "signalfd read");
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_NONE, "tcm saw a SIGTERM read from a signalfd");
	} else if (strcmp(scenario, "sysv_signal") == 0 || strcmp(scenario, "strict_c_signal") == 0) {
		/* System V semantics: one call, then SIG_DFL; and tcm's hook ran in front of it. */
		bool is_strict = strcmp(scenario, "strict_c_signal") == 0;
		__sighandler_t previous = is_strict ? strict_c_signal(SIGTERM, count_call) : sysv_signal(SIGTERM, count_call);
		CHECK(previous == SIG_DFL, "%s did not return SIG_DFL", scenario);
		term_self_and_wait(1);
		CHECK(calls == 1, "the %s handler ran %d times", scenario, (int)calls);
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "a handler set with %s hid SIGTERM from tcm",
		      scenario);
		struct sigaction now;
		CHECK(sigaction(SIGTERM, NULL, &now) == 0 && now.sa_handler == SIG_DFL, "%s: not reset to SIG_DFL",
		      scenario);
	} else if (strcmp(scenario, "bsd_signal_and_ssignal") == 0) {
		CHECK(bsd_signal(SIGTERM, count_other) == SIG_DFL, "bsd_signal did not return SIG_DFL");
		CHECK(ssignal(SIGTERM, count_call) == count_other, "ssignal did not return bsd_signal's handler");
		term_self_and_wait(1);
		sleep_ms(20);
		CHECK(calls == 1 && other_calls == 0, "handlers: ssignal's %d, bsd_signal's %d", (int)calls,
		      (int)other_calls);
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "a handler set with ssignal hid SIGTERM from tcm");
	} else if (strcmp(scenario, "sigset_hold_and_release") == 0) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
		CHECK(sigset(SIGTERM, count_call) == SIG_DFL, "sigset did not return SIG_DFL");
		CHECK(sigset(SIGTERM, SIG_HOLD) == count_call, "sigset(SIG_HOLD) did not return the handler");
		kill(getpid(), SIGTERM);   /* held: pending, not delivered */
		sleep_ms(20);
		CHECK(calls == 0, "a held SIGTERM was delivered");
		CHECK(sigset(SIGTERM, count_call) == SIG_HOLD, "sigset did not report the signal held");
#pragma GCC diagnostic pop
		for (int waited = 0; calls < 1 && waited < 2000; waited += 10)   /* the pending one, unblocked */
			sleep_ms(10);
		CHECK(calls == 1, "the released SIGTERM ran the handler %d times", (int)calls);
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "a handler set with sigset hid SIGTERM from tcm");
	} else if (strcmp(scenario, "sigignore_and_siginterrupt") == 0) {
		CHECK(signal(SIGTERM, count_call) == SIG_DFL, "signal() did not return SIG_DFL");
		struct sigaction now;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
		CHECK(siginterrupt(SIGTERM, 1) == 0, "siginterrupt");
		CHECK(sigaction(SIGTERM, NULL, &now) == 0 && !(now.sa_flags & SA_RESTART) && now.sa_handler == count_call,
		      "after siginterrupt(1): flags %#x, handler %p", now.sa_flags, (void *)now.sa_handler);
		CHECK(signal(SIGTERM, count_call) == count_call, "signal() did not return the handler");
		CHECK(sigaction(SIGTERM, NULL, &now) == 0 && !(now.sa_flags & SA_RESTART),
		      "signal() after siginterrupt(1) restarts calls");
		CHECK(siginterrupt(SIGTERM, 0) == 0, "siginterrupt");
		CHECK(sigaction(SIGTERM, NULL, &now) == 0 && (now.sa_flags & SA_RESTART), "siginterrupt(0) did not restart");
		CHECK(sigignore(SIGTERM) == 0, "sigignore");
#pragma GCC diagnostic pop
		CHECK(sigaction(SIGTERM, NULL, &now) == 0 && now.sa_handler == SIG_IGN, "sigignore: reported %p",
		      (void *)now.sa_handler);
		kill(getpid(), SIGTERM);
		sleep_ms(50);
		CHECK(calls == 0, "an ignored SIGTERM ran the handler");
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_NONE, "an ignored SIGTERM started a shutdown");
	} else if (strcmp(scenario, "drain_trigger") == 0) {
		install(count_call, 0);
		term_self_and_wait(1);
		struct tcm_shutdown_stats stats = shutdown_stats();
		CHECK(stats.trigger == TCM_SHUTDOWN_SIGTERM && stats.t0_ns != 0, "trigger %u, t0 %llu",
		      stats.trigger, (unsigned long long)stats.t0_ns);
	} else if (strcmp(scenario, "fork_while_draining") == 0) {
		install(count_call, 0);
		term_self_and_wait(1);
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "not draining");
		for (int i = 0; i < 10; i++) {
			pid_t child = fork();
			CHECK(child >= 0, "fork");
			if (child == 0) {
				churn(20000);
				exit(0);
			}
			churn(2000);
			int status;
			CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "child %d of a draining parent ended with status %#x", i, status);
		}
	} else if (strcmp(scenario, "racing_first_settings") == 0) {
		race_first_settings();
	} else if (strcmp(scenario, "set_raced_by_first_wrap") == 0) {
		set_raced_by_first_wrap();
		kill(getpid(), SIGTERM);   /* SIG_DFL: the parent expects death by SIGTERM */
		sleep_ms(5000);
	} else if (strcmp(scenario, "fork_while_another_thread_sets") == 0) {
		fork_while_another_thread_sets();
	} else if (strcmp(scenario, "straight_set_during_arm") == 0) {
		/* The arm_race library's thread set SIG_DFL after tcm's arm read the
		 * library's handler and before it wrapped it (arm_race_lib.c). */
		CHECK(dlsym(RTLD_DEFAULT, "arm_race_handler") != NULL, "the arm_race library is not preloaded");
		struct sigaction reported;
		CHECK(sigaction(SIGTERM, NULL, &reported) == 0, "sigaction query");
		CHECK(reported.sa_handler == SIG_DFL, "sigaction reports %p, not the SIG_DFL set last",
		      (void *)reported.sa_handler);
		kill(getpid(), SIGTERM);   /* SIG_DFL: the parent expects death by SIGTERM */
		sleep_ms(5000);
	} else if (strcmp(scenario, "adopted_in_fork_child") == 0) {
		adopted_in_fork_child();
	} else if (strcmp(scenario, "installed_before_init") == 0) {
		void (*handler)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "early_sigterm_handler");
		volatile sig_atomic_t *early_calls = dlsym(RTLD_DEFAULT, "early_sigterm_calls");
		CHECK(handler != NULL && early_calls != NULL, "the early_sigterm library is not preloaded");
		struct sigaction old;
		CHECK(sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == handler, "early handler not reported");
		kill(getpid(), SIGTERM);
		for (int i = 0; i < 5000 && *early_calls == 0; i++)
			sleep_ms(1);
		sleep_ms(20);
		CHECK(*early_calls == 1, "early handler ran %d times", (int)*early_calls);
		CHECK(shutdown_stats().trigger == TCM_SHUTDOWN_SIGTERM, "tcm did not wrap a handler installed before it");
	} else {
		fprintf(stderr, "sigterm_matrix: unknown scenario '%s'\n", scenario);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s SCENARIO\n", argv[0]);
		return 2;
	}
	fflush(NULL);
	pid_t child = fork();
	if (child < 0)
		return 2;
	if (child == 0)
		_exit(run_scenario(argv[1]));
	int status;
	if (waitpid(child, &status, 0) != child)
		return 2;
	bool wants_death = strcmp(argv[1], "default_dies") == 0 || strcmp(argv[1], "resethand") == 0 ||
			   strcmp(argv[1], "set_raced_by_first_wrap") == 0 ||
			   strcmp(argv[1], "straight_set_during_arm") == 0;
	if (wants_death) {
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) {
			printf("%s: died by SIGTERM, as without tcm\n", argv[1]);
			return 0;
		}
		fprintf(stderr, "%s: expected death by SIGTERM, got status %#x\n", argv[1], status);
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("%s: ok\n", argv[1]);
		return 0;
	}
	fprintf(stderr, "%s: child ended with status %#x\n", argv[1], status);
	return 1;
}
