/* tests/process/early_sigterm_lib.c - a library preloaded after libtcm.so whose
 * constructor installs a SIGTERM handler before libtcm.so's constructor runs
 * (the later preload initialises first). sigterm_matrix installed_before_init
 * checks that the handler still runs exactly once per SIGTERM and that tcm
 * wrapped it when it started. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

__attribute__((visibility("default"))) volatile sig_atomic_t early_sigterm_calls;

__attribute__((visibility("default"))) void early_sigterm_handler(int signo)
{
	(void)signo;
	early_sigterm_calls++;
}

__attribute__((constructor)) static void install_before_tcm(void)
{
	struct sigaction action;
	memset(&action, 0, sizeof(action));
	action.sa_handler = early_sigterm_handler;
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, 0);
}
