/* shim/sigaction.c - the interposed sigaction and signal: they keep tcm's SIGTERM
 * hook in front of the application's handler (orchestrator/sigterm.c has the
 * rules). Every other signal passes straight through to libc. */
#define _GNU_SOURCE
#include "shim.h"

#include "../orchestrator/sigterm.h"

TCM_EXPORT int sigaction(int signo, const struct sigaction *action, struct sigaction *old_action)
{
	return tcm_signal_sigaction(signo, action, old_action);
}

TCM_EXPORT __sighandler_t signal(int signo, __sighandler_t handler)
{
	return tcm_signal_signal(signo, handler);
}
