/* tests/process/fork_handler_sets_lib.c - a library preloaded after libtcm.so
 * whose constructor (which runs before libtcm.so's) registers a pthread_atfork
 * child handler that installs a SIGTERM handler. Registered before tcm's, it
 * runs first in every fork child, so tcm's own child handler finds a handler
 * it did not install and adopts it (orchestrator/sigterm.c,
 * tcm_signal_after_fork_in_child). sigterm_matrix adopted_in_fork_child
 * checks that the child then behaves as one that installed a handler: what
 * sigaction reports, the worker started by the child's own next handler, and
 * the shutdown a SIGTERM starts. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>

__attribute__((visibility("default"))) volatile sig_atomic_t fork_handler_sets_calls;

__attribute__((visibility("default"))) void fork_handler_sets_handler(int signo)
{
	(void)signo;
	fork_handler_sets_calls++;
}

static void install_in_child(void)
{
	struct sigaction action;
	memset(&action, 0, sizeof(action));
	action.sa_handler = fork_handler_sets_handler;
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, 0);
}

__attribute__((constructor)) static void register_before_tcm(void)
{
	pthread_atfork(NULL, NULL, install_in_child);
}
