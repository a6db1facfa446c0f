/* tests/hostile/children.c - a busy host process creates children every way
 * programs do, under LD_PRELOAD=libtcm.so (DESIGN invariant 6).
 *
 *   children fork|vfork|clone_vm|posix_spawn      (children helper: what posix_spawn runs)
 *
 * The parent installs a SIGTERM handler with sigaction, starts 4 threads that
 * malloc/free/realloc mixed sizes (some > 256 KiB), and each round creates one
 * child that does what that kind of child may do:
 *   fork        allocate and check (up to 1 MiB, realloc, strdup), raise SIGTERM to
 *               the inherited handler, install and raise a SIGUSR1 handler, reset
 *               SIGTERM with signal and sigaction; then exit(0), or on odd rounds
 *               kill itself with SIGTERM, which must now be fatal;
 *   vfork,      only async-signal-safe calls plus sigaction/signal: install and raise
 *   clone_vm    a SIGUSR1 handler, reset SIGTERM to SIG_DFL with sigaction and with
 *               signal, then execve /bin/true (even rounds) or kill itself with
 *               SIGTERM (odd). clone_vm is clone(CLONE_VM | SIGCHLD) on its own stack;
 *   posix_spawn this program as `helper` (allocates, installs, raises and resets
 *               handlers, exits 0); odd rounds with POSIX_SPAWN_SETSIGDEF {SIGTERM}.
 * After every child the parent checks how it ended, and that the parent's OWN
 * dispositions are unchanged: sigaction(SIGTERM, NULL, &old) reports its handler,
 * SIGUSR1 is still SIG_DFL, and raise(SIGTERM) and kill(getpid(), SIGTERM) each
 * run its handler once.
 * The bug this was written for (vfork, clone_vm): the child's sigaction(SIGTERM,
 * SIG_DFL) runs tcm's interposed sigaction, which records "no application
 * handler" in memory the child shares with the parent, so the parent's next
 * SIGTERM runs tcm's hook and then nothing: the signal is swallowed. */
#define _GNU_SOURCE
#include "hostile.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHILD_WAIT_MS 20000     /* a hang detector, not a timing assert */
#define CLONE_STACK_BYTES (256 * 1024)

static atomic_uint parent_term_runs;          /* the parent's SIGTERM handler */
static volatile sig_atomic_t usr1_runs;       /* shared with vfork/clone children */
static char self_exe[PATH_MAX];

static void parent_on_sigterm(int signo, siginfo_t *info, void *context)
{
	(void)signo;
	(void)info;
	(void)context;
	atomic_fetch_add(&parent_term_runs, 1);
}

static void on_usr1(int signo)
{
	(void)signo;
	usr1_runs++;
}

static void install_parent_handler(void)
{
	struct sigaction action = { .sa_sigaction = parent_on_sigterm, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigemptyset(&action.sa_mask);
	HOSTILE_CHECK(sigaction(SIGTERM, &action, NULL) == 0, "sigaction(SIGTERM): %s", strerror(errno));
}

static const char *handler_name(const struct sigaction *action)
{
	if (action->sa_handler == SIG_DFL)
		return "SIG_DFL";
	if (action->sa_handler == SIG_IGN)
		return "SIG_IGN";
	if ((action->sa_flags & SA_SIGINFO) && action->sa_sigaction == parent_on_sigterm)
		return "the parent's handler";
	return "some other handler";
}

/* The parent's own dispositions after a child: reported right, and delivered. */
static void check_parent(const char *kind, int round)
{
	struct sigaction old;
	HOSTILE_CHECK(sigaction(SIGTERM, NULL, &old) == 0, "sigaction(SIGTERM, NULL): %s", strerror(errno));
	bool reported_ok = (old.sa_flags & SA_SIGINFO) && old.sa_sigaction == parent_on_sigterm;
	if (!reported_ok)   /* go on: the delivery check says whether the handler is really gone */
		hostile_print("FAIL: %s round %d: after the child, sigaction(SIGTERM, NULL, &old) in the parent "
			      "reports %s, not the parent's handler", kind, round, handler_name(&old));
	HOSTILE_CHECK(sigaction(SIGUSR1, NULL, &old) == 0 && old.sa_handler == SIG_DFL,
		      "%s round %d: the parent's SIGUSR1 is %s, the child's setting leaked into it",
		      kind, round, handler_name(&old));
	unsigned before = atomic_load(&parent_term_runs);
	raise(SIGTERM);
	HOSTILE_CHECK(atomic_load(&parent_term_runs) == before + 1,
		      "%s round %d: raise(SIGTERM) in the parent did not run its handler (runs %u -> %u): "
		      "the signal was swallowed", kind, round, before, atomic_load(&parent_term_runs));
	kill(getpid(), SIGTERM);
	long long deadline = hostile_now_ms() + 5000;
	while (atomic_load(&parent_term_runs) < before + 2 && hostile_now_ms() < deadline)
		hostile_sleep_ms(1);
	HOSTILE_CHECK(atomic_load(&parent_term_runs) == before + 2,
		      "%s round %d: kill(getpid(), SIGTERM) did not run the parent's handler within 5 s "
		      "(runs %u -> %u): the signal was swallowed", kind, round, before,
		      atomic_load(&parent_term_runs));
	HOSTILE_CHECK(reported_ok, "%s round %d: the parent's SIGTERM disposition was changed by the child",
		      kind, round);
}

/* ---- fork ------------------------------------------------------------------ */

static void fork_child(int round)
{
	hostile_child_alarm(30);   /* a hang in the child ends it with SIGALRM, which the parent reports */
	if (hostile_churn((unsigned)round * 7919u + 3u, 2000) != 0)
		_exit(10);
	char *copy = strdup("a child of a busy allocating parent");
	if (copy == NULL || strcmp(copy, "a child of a busy allocating parent") != 0)
		_exit(10);
	free(copy);
	unsigned before = atomic_load(&parent_term_runs);
	raise(SIGTERM);
	if (atomic_load(&parent_term_runs) != before + 1)
		_exit(11);   /* the inherited handler did not run */
	struct sigaction usr1 = { .sa_handler = on_usr1 };
	sigemptyset(&usr1.sa_mask);
	usr1_runs = 0;
	if (sigaction(SIGUSR1, &usr1, NULL) != 0 || raise(SIGUSR1) != 0 || usr1_runs != 1)
		_exit(12);
	struct sigaction default_action = { .sa_handler = SIG_DFL }, old;
	sigemptyset(&default_action.sa_mask);
	if (signal(SIGTERM, SIG_DFL) == SIG_ERR || sigaction(SIGTERM, &default_action, NULL) != 0)
		_exit(13);
	if (sigaction(SIGTERM, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
		_exit(13);
	if (round % 2 == 1) {
		kill(getpid(), SIGTERM);
		hostile_sleep_ms(2000);
		_exit(14);   /* SIG_DFL did not kill it */
	}
	exit(0);   /* exit(), not _exit(): tcm's exit hook runs in the child as well */
}

/* ---- vfork and clone(CLONE_VM): async-signal-safe calls only ---------------- */

static int shared_vm_child(void *arg)
{
	int round = (int)(intptr_t)arg;
	struct sigaction usr1 = { .sa_handler = on_usr1 };
	sigemptyset(&usr1.sa_mask);
	if (sigaction(SIGUSR1, &usr1, NULL) != 0)
		_exit(12);
	kill(getpid(), SIGUSR1);   /* not raise(): after clone the thread pointer is the parent's */
	struct sigaction default_action = { .sa_handler = SIG_DFL };
	sigemptyset(&default_action.sa_mask);
	if (sigaction(SIGTERM, &default_action, NULL) != 0)
		_exit(13);
	if (signal(SIGTERM, SIG_DFL) == SIG_ERR)
		_exit(13);
	if (round % 2 == 0) {
		char *argv[] = { "/bin/true", NULL };
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	kill(getpid(), SIGTERM);
	_exit(14);   /* SIG_DFL did not kill it; reached only after the signal was lost */
}

static pid_t start_vfork_child(int round)
{
	pid_t pid = vfork();
	if (pid == 0)
		shared_vm_child((void *)(intptr_t)round);
	return pid;
}

static pid_t start_clone_child(int round)
{
	static void *stack;
	if (stack == NULL) {
		stack = mmap(NULL, CLONE_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
			     -1, 0);
		HOSTILE_CHECK(stack != MAP_FAILED, "mmap: %s", strerror(errno));
	}
	/* The parent waits for the child before the next round, so one stack serves. */
	return clone(shared_vm_child, (char *)stack + CLONE_STACK_BYTES, CLONE_VM | SIGCHLD,
		     (void *)(intptr_t)round);
}

/* ---- posix_spawn ------------------------------------------------------------- */

static pid_t start_spawned_child(int round)
{
	posix_spawnattr_t attributes;
	posix_spawnattr_init(&attributes);
	if (round % 2 == 1) {
		sigset_t defaults;
		sigemptyset(&defaults);
		sigaddset(&defaults, SIGTERM);
		posix_spawnattr_setsigdefault(&attributes, &defaults);
		posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
	}
	char *argv[] = { self_exe, "helper", NULL };
	pid_t pid;
	int err = posix_spawn(&pid, self_exe, NULL, &attributes, argv, environ);
	posix_spawnattr_destroy(&attributes);
	HOSTILE_CHECK(err == 0, "posix_spawn(%s): %s", self_exe, strerror(err));
	return pid;
}

/* The spawned program: a fresh process under the same preload. */
static int helper_main(void)
{
	hostile_child_alarm(30);
	hostile_require_tcm("children helper");
	HOSTILE_CHECK(hostile_churn(17, 2000) == 0, "helper: allocation failed or a block changed");
	char *copy = strdup("spawned");
	HOSTILE_CHECK(copy != NULL && strcmp(copy, "spawned") == 0, "helper: strdup");
	free(copy);
	struct sigaction old;
	HOSTILE_CHECK(sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == SIG_DFL,
		      "helper: SIGTERM is %s after exec, not SIG_DFL", handler_name(&old));
	install_parent_handler();
	raise(SIGTERM);
	HOSTILE_CHECK(atomic_load(&parent_term_runs) == 1, "helper: raise(SIGTERM) did not run its handler");
	HOSTILE_CHECK(signal(SIGTERM, SIG_DFL) != SIG_ERR, "helper: signal(SIGTERM, SIG_DFL)");
	HOSTILE_CHECK(sigaction(SIGTERM, NULL, &old) == 0 && old.sa_handler == SIG_DFL,
		      "helper: SIGTERM is %s after signal(SIGTERM, SIG_DFL)", handler_name(&old));
	return 0;
}

/* ---- the rounds -------------------------------------------------------------- */

struct kind {
	const char *name;
	int rounds;
	pid_t (*start)(int round);      /* NULL: fork */
	bool odd_rounds_die;            /* odd rounds end by the child's own SIGTERM */
	bool counts_usr1;               /* the child's SIGUSR1 handler writes shared memory */
};

static const struct kind kinds[] = {
	{ "fork", 10, NULL, true, false },
	{ "vfork", 20, start_vfork_child, true, true },
	{ "clone_vm", 20, start_clone_child, true, true },
	{ "posix_spawn", 10, start_spawned_child, false, false },
};

static void run_round(const struct kind *kind, int round)
{
	usr1_runs = 0;
	fflush(NULL);
	pid_t pid;
	if (kind->start == NULL) {
		pid = fork();
		if (pid == 0)
			fork_child(round);
	} else {
		pid = kind->start(round);
	}
	HOSTILE_CHECK(pid > 0, "%s round %d: could not create the child: %s", kind->name, round, strerror(errno));
	int status = 0;
	char text[96];
	HOSTILE_CHECK(hostile_wait(pid, &status, CHILD_WAIT_MS), "%s round %d: child %d still running after %d s "
		      "(deadlock?)", kind->name, round, (int)pid, CHILD_WAIT_MS / 1000);
	bool dies = kind->odd_rounds_die && round % 2 == 1;
	if (dies)
		HOSTILE_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
			      "%s round %d: the child's SIGTERM after resetting it to SIG_DFL should kill it; "
			      "child ended with %s", kind->name, round, hostile_describe_status(status, text, sizeof(text)));
	else
		HOSTILE_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s round %d: child ended with %s",
			      kind->name, round, hostile_describe_status(status, text, sizeof(text)));
	if (kind->counts_usr1)
		HOSTILE_CHECK(usr1_runs == 1, "%s round %d: the child's SIGUSR1 handler ran %d times, expected 1",
			      kind->name, round, (int)usr1_runs);
	check_parent(kind->name, round);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "helper") == 0)
		return helper_main();
	const struct kind *kind = NULL;
	for (size_t i = 0; argc == 2 && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(argv[1], kinds[i].name) == 0)
			kind = &kinds[i];
	if (kind == NULL) {
		fprintf(stderr, "usage: children fork|vfork|clone_vm|posix_spawn\n");
		return 2;
	}
	hostile_require_tcm("children");
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	HOSTILE_CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	self_exe[n] = '\0';
	hostile_watchdog(55, "children: the rounds did not finish in 55 s");
	install_parent_handler();
	check_parent(kind->name, -1);   /* the checks themselves work before any child */
	hostile_churn_start(4);
	for (int round = 0; round < kind->rounds; round++)
		run_round(kind, round);
	unsigned long ops = hostile_churn_stop();
	HOSTILE_CHECK(ops > 0, "the parent's threads made no allocations");
	hostile_print("children %s: %d rounds passed, parent threads made %lu allocations meanwhile",
		      kind->name, kind->rounds, ops);
	return 0;
}
