/* orchestrator/sigterm.h - tcm's SIGTERM hook, kept in front of the
 * application's own handler without changing what SIGTERM does to it.
 *
 * tcm hooks SIGTERM only while the application has a handler for it: with
 * SIG_DFL the process dies at once and with SIG_IGN nothing happens, so there
 * is nothing to drain and tcm leaves the kernel's disposition alone. When the
 * application installs a handler (sigaction, signal and the older calls are
 * interposed, see shim/sigaction.c), tcm installs its own with the application's flags and mask
 * instead; on each SIGTERM it runs the hook (async-signal-safe) and then calls
 * the application's handler exactly once, as SA_SIGINFO or plain, honouring
 * SA_RESETHAND. sigaction(SIGTERM, NULL, &old) reports the application's own
 * handler. A SIGTERM taken with sigwait, sigwaitinfo or sigtimedwait (also interposed:
 * orchestrator/sigwait.c) is seen when the call returns it; one read from a signalfd is not.
 * The older calls that set a disposition (bsd_signal, ssignal, sysv_signal, __sysv_signal,
 * sigset, sigignore, siginterrupt) are interposed too and go through the same path. */
#ifndef TCM_ORCHESTRATOR_SIGTERM_H
#define TCM_ORCHESTRATOR_SIGTERM_H

#include <signal.h>
#include <stdbool.h>
#include <time.h>

/* Called from the signal handler before the application's handler; must be
 * async-signal-safe. */
typedef void (*tcm_signal_hook_fn)(void);

/* Called (in normal context) the first time the application installs a
 * SIGTERM handler that tcm wraps: the orchestrator starts its worker here. */
typedef void (*tcm_signal_wrapped_fn)(void);

/* Called (in normal context, in the process that owns this memory) when the application
 * took a SIGTERM with sigwait, sigwaitinfo or sigtimedwait. */
typedef void (*tcm_signal_taken_fn)(void);

/* Arms the interposition, and wraps a SIGTERM handler that is already
 * installed. Until this runs, sigaction and signal pass through. */
void tcm_signal_arm(tcm_signal_hook_fn hook, tcm_signal_wrapped_fn on_first_wrap);

/* In a fork child (an atfork handler): this process owns its memory now;
 * adopts a SIGTERM action set before the handler ran, and lets the child's
 * first wrapped handler call on_first_wrap again. */
void tcm_signal_after_fork_in_child(void);

/* The interposed calls (shim/sigaction.c forwards to these). Same contract as sigaction(2);
 * signal(2) (also bsd_signal and ssignal), sysv_signal(3) (also __sysv_signal, a strict ISO C
 * program's signal), sigset(3), sigignore(3) and siginterrupt(3), which are done as glibc
 * does them but through tcm_signal_sigaction (orchestrator/signal_calls.c). */
int tcm_signal_sigaction(int signo, const struct sigaction *action, struct sigaction *old_action);
__sighandler_t tcm_signal_signal(int signo, __sighandler_t handler);
__sighandler_t tcm_signal_sysv_signal(int signo, __sighandler_t handler);
__sighandler_t tcm_signal_sigset(int signo, __sighandler_t disposition);
int tcm_signal_sigignore(int signo);
int tcm_signal_siginterrupt(int signo, int interrupt);

/* Whether this process owns the memory tcm runs in: false in a vfork or clone(CLONE_VM)
 * child, which shares its parent's. Async-signal-safe. */
bool tcm_signal_is_memory_owner(void);

/* Arms the sigwait interposition: on_taken runs after a call returned SIGTERM. Until then
 * the calls only pass through. */
void tcm_signal_arm_sigwait(tcm_signal_taken_fn on_taken);

/* The interposed sigwait, sigwaitinfo and sigtimedwait (shim/sigaction.c forwards to these):
 * libc's, then on_taken when one returned SIGTERM. Same contract as sigwait(3),
 * sigwaitinfo(2) and sigtimedwait(2). */
int tcm_signal_sigwait(const sigset_t *set, int *signo);
int tcm_signal_sigwaitinfo(const sigset_t *set, siginfo_t *info);
int tcm_signal_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout);

#endif
