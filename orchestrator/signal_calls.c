/* orchestrator/signal_calls.c - the other calls that set a signal's disposition: signal and
 * its aliases bsd_signal and ssignal, sysv_signal and __sysv_signal, sigset, sigignore and
 * siginterrupt, each done as glibc does it but through tcm_signal_sigaction, so that the
 * SIGTERM hook stays in front of the program's handler whichever call set it
 * (shim/sigaction.c interposes them all). glibc's own versions call its internal sigaction,
 * which no interposition reaches: a handler set with any of them replaced tcm's hook unseen,
 * and a strict ISO C program's signal() is __sysv_signal.
 *
 * Invariants: each returns what glibc's would, from the dispositions the program set (as
 * tcm_signal_sigaction reports them), never tcm's own handler; bad arguments fail with
 * EINVAL as glibc's do. */
#define _GNU_SOURCE
#include "sigterm.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The signals siginterrupt(signo, 1) named last: signal() sets them without SA_RESTART, as
 * glibc's does from a set of its own. A bit per signal, read and written without a lock. */
static _Atomic uint64_t interrupting[(NSIG + 63) / 64];

static bool is_settable(int signo, __sighandler_t handler)
{
	if (handler == SIG_ERR || signo < 1 || signo >= NSIG) {
		errno = EINVAL;
		return false;
	}
	return true;
}

static uint64_t interrupting_bit(int signo)
{
	return (uint64_t)1 << (signo % 64);
}

static bool is_interrupting(int signo)
{
	return (atomic_load_explicit(&interrupting[signo / 64], memory_order_relaxed) & interrupting_bit(signo)) != 0;
}

/* Sets signo's handler with flags and a mask of only itself when blocks_itself; returns the
 * program's previous handler, or SIG_ERR. */
static __sighandler_t set_handler(int signo, __sighandler_t handler, int flags, bool blocks_itself)
{
	struct sigaction action = { .sa_handler = handler, .sa_flags = flags };
	sigemptyset(&action.sa_mask);
	if (blocks_itself)
		sigaddset(&action.sa_mask, signo);
	struct sigaction old_action;
	if (tcm_signal_sigaction(signo, &action, &old_action) != 0)
		return SIG_ERR;
	return old_action.sa_handler;
}

__sighandler_t tcm_signal_signal(int signo, __sighandler_t handler)
{
	/* BSD semantics: the signal blocked in its handler, calls restarted unless siginterrupt
	 * said otherwise. */
	if (!is_settable(signo, handler))
		return SIG_ERR;
	return set_handler(signo, handler, is_interrupting(signo) ? 0 : SA_RESTART, true);
}

__sighandler_t tcm_signal_sysv_signal(int signo, __sighandler_t handler)
{
	/* System V semantics: back to SIG_DFL as the handler starts, not blocked in it, calls
	 * interrupted. */
	if (!is_settable(signo, handler))
		return SIG_ERR;
	return set_handler(signo, handler, SA_RESETHAND | SA_NODEFER, false);
}

__sighandler_t tcm_signal_sigset(int signo, __sighandler_t disposition)
{
	if (!is_settable(signo, disposition))
		return SIG_ERR;
	sigset_t only, before;
	sigemptyset(&only);
	sigaddset(&only, signo);
	if (disposition == SIG_HOLD) {
		/* Blocks the signal and leaves its action alone. */
		if (sigprocmask(SIG_BLOCK, &only, &before) != 0)
			return SIG_ERR;
		if (sigismember(&before, signo))
			return SIG_HOLD;
		struct sigaction now;
		if (tcm_signal_sigaction(signo, NULL, &now) != 0)
			return SIG_ERR;
		return now.sa_handler;
	}
	__sighandler_t previous = set_handler(signo, disposition, 0, false);
	if (previous == SIG_ERR || sigprocmask(SIG_UNBLOCK, &only, &before) != 0)
		return SIG_ERR;
	return sigismember(&before, signo) ? SIG_HOLD : previous;
}

int tcm_signal_sigignore(int signo)
{
	struct sigaction action = { .sa_handler = SIG_IGN };
	sigemptyset(&action.sa_mask);
	return tcm_signal_sigaction(signo, &action, NULL);
}

int tcm_signal_siginterrupt(int signo, int interrupt)
{
	struct sigaction action;
	if (tcm_signal_sigaction(signo, NULL, &action) != 0)
		return -1;
	if (interrupt) {
		atomic_fetch_or_explicit(&interrupting[signo / 64], interrupting_bit(signo), memory_order_relaxed);
		action.sa_flags &= ~SA_RESTART;
	} else {
		atomic_fetch_and_explicit(&interrupting[signo / 64], ~interrupting_bit(signo), memory_order_relaxed);
		action.sa_flags |= SA_RESTART;
	}
	return tcm_signal_sigaction(signo, &action, NULL) != 0 ? -1 : 0;
}
