/* shim/sigaction.c - the interposed sigaction and signal, and the older calls that set a
 * disposition (bsd_signal, ssignal, sysv_signal, __sysv_signal, sigset, sigignore,
 * siginterrupt): they keep tcm's SIGTERM hook in front of the application's handler
 * (orchestrator/sigterm.c has the rules, orchestrator/signal_calls.c the older calls); every
 * other signal passes straight through to libc. And the interposed sigwait, sigwaitinfo and
 * sigtimedwait: libc's calls, after which a SIGTERM taken starts tcm's shutdown
 * (orchestrator/sigwait.c). */
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

TCM_EXPORT __sighandler_t bsd_signal(int signo, __sighandler_t handler)
{
	return tcm_signal_signal(signo, handler);
}

TCM_EXPORT __sighandler_t ssignal(int signo, __sighandler_t handler)
{
	return tcm_signal_signal(signo, handler);
}

TCM_EXPORT __sighandler_t sysv_signal(int signo, __sighandler_t handler)
{
	return tcm_signal_sysv_signal(signo, handler);
}

/* What a strict ISO C program's signal() calls (glibc's <signal.h> without _DEFAULT_SOURCE). */
TCM_EXPORT __sighandler_t __sysv_signal(int signo, __sighandler_t handler)
{
	return tcm_signal_sysv_signal(signo, handler);
}

TCM_EXPORT __sighandler_t sigset(int signo, __sighandler_t disposition)
{
	return tcm_signal_sigset(signo, disposition);
}

TCM_EXPORT int sigignore(int signo)
{
	return tcm_signal_sigignore(signo);
}

TCM_EXPORT int siginterrupt(int signo, int interrupt)
{
	return tcm_signal_siginterrupt(signo, interrupt);
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
