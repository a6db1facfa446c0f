/* shim/sigaction.c - the interposed sigaction and signal: they keep tcm's SIGTERM
 * hook in front of the application's handler (orchestrator/sigterm.c has the
 * rules); every other signal passes straight through to libc. And the interposed
 * sigwait, sigwaitinfo and sigtimedwait: libc's calls, after which a SIGTERM taken
 * starts tcm's shutdown (orchestrator/sigwait.c). */
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

TCM_EXPORT int sigwait(const sigset_t *set, int *signo)
{
	return tcm_signal_sigwait(set, signo);
}

TCM_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	return tcm_signal_sigwaitinfo(set, info);
}

TCM_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	return tcm_signal_sigtimedwait(set, info, timeout);
}
