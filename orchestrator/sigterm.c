/* orchestrator/sigterm.c - the SIGTERM hook and the interposed sigaction/signal
 * (see sigterm.h).
 *
 * Invariants:
 *   - app_handler_word holds the application's SIGTERM handler as the handler
 *     reads it: one 64-bit word (the 48-bit function address and two flag
 *     bits), so the handler never sees a torn update;
 *   - the kernel's SIGTERM action is tcm's handler exactly while the word holds
 *     a real function; both change together under setting_lock, which only
 *     normal-context callers (the interposed calls) take;
 *   - the handler allocates nothing, takes no lock, and keeps errno.
 * This file is the orchestrator's only user of sigaction. */
#define _GNU_SOURCE
#include "sigterm.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define WORD_SIGINFO   ((uint64_t)1 << 63)
#define WORD_RESETHAND ((uint64_t)1 << 62)
#define WORD_ADDRESS   (((uint64_t)1 << 62) - 1)

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static _Atomic(sigaction_fn) real_sigaction_fn;
static _Atomic uint64_t app_handler_word;        /* 0 = no handler of the application (SIG_DFL) */
static struct sigaction app_action;              /* the application's whole action; setting_lock */
static bool app_action_known;                    /* app_action holds the last setting; setting_lock */
static pthread_mutex_t setting_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(tcm_signal_hook_fn) hook_fn;
static tcm_signal_wrapped_fn first_wrap_fn;      /* setting_lock */
static bool has_wrapped;                         /* setting_lock */

static int real_sigaction(int signo, const struct sigaction *action, struct sigaction *old_action)
{
	sigaction_fn fn = atomic_load(&real_sigaction_fn);
	if (fn == NULL) {
		fn = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
		atomic_store(&real_sigaction_fn, fn);
	}
	return fn(signo, action, old_action);
}

static bool is_function(__sighandler_t handler)
{
	return handler != SIG_DFL && handler != SIG_IGN && handler != SIG_ERR;
}

static void on_sigterm(int signo, siginfo_t *info, void *ucontext)
{
	int saved_errno = errno;
	tcm_signal_hook_fn hook = atomic_load(&hook_fn);
	if (hook != NULL)
		hook();
	uint64_t word = atomic_load(&app_handler_word);
	if (word & WORD_RESETHAND) {
		/* The application asked for one delivery only: from now on SIGTERM
		 * does the default. The kernel action changes with the word. */
		uint64_t expected = word;
		if (atomic_compare_exchange_strong(&app_handler_word, &expected, 0)) {
			struct sigaction default_action = { .sa_handler = SIG_DFL };
			real_sigaction(SIGTERM, &default_action, NULL);
		}
	}
	errno = saved_errno;
	void *function = (void *)(uintptr_t)(word & WORD_ADDRESS);
	if (function == NULL)
		return;   /* the application removed its handler while this one ran */
	if (word & WORD_SIGINFO)
		((void (*)(int, siginfo_t *, void *))function)(signo, info, ucontext);
	else
		((void (*)(int))function)(signo);
}

/* REQUIRES: setting_lock. Applies the application's new action: wraps a
 * handler function, passes SIG_DFL and SIG_IGN straight to the kernel. */
static int apply_locked(const struct sigaction *action, bool *wrapped_first)
{
	__sighandler_t handler = action->sa_handler;   /* aliases sa_sigaction */
	if (!is_function(handler)) {
		int result = real_sigaction(SIGTERM, action, NULL);
		if (result == 0)
			atomic_store(&app_handler_word, 0);
		return result;
	}
	struct sigaction wrapper = *action;
	wrapper.sa_sigaction = on_sigterm;
	wrapper.sa_flags = (action->sa_flags & ~SA_RESETHAND) | SA_SIGINFO;
	uint64_t word = ((uint64_t)(uintptr_t)handler & WORD_ADDRESS) |
			((action->sa_flags & SA_SIGINFO) ? WORD_SIGINFO : 0) |
			((action->sa_flags & SA_RESETHAND) ? WORD_RESETHAND : 0);
	/* Publish the handler before the kernel can call the wrapper. */
	uint64_t previous = atomic_exchange(&app_handler_word, word);
	int result = real_sigaction(SIGTERM, &wrapper, NULL);
	if (result != 0) {
		atomic_store(&app_handler_word, previous);
		return result;
	}
	if (!has_wrapped) {
		has_wrapped = true;
		*wrapped_first = true;
	}
	return 0;
}

void tcm_signal_arm(tcm_signal_hook_fn hook, tcm_signal_wrapped_fn on_first_wrap)
{
	pthread_mutex_lock(&setting_lock);
	first_wrap_fn = on_first_wrap;
	atomic_store(&hook_fn, hook);
	/* A handler installed before tcm started (another library's constructor)
	 * is wrapped now, as if it had been installed through tcm. */
	struct sigaction current;
	bool wrapped_first = false;
	if (real_sigaction(SIGTERM, NULL, &current) == 0 && is_function(current.sa_handler) &&
	    apply_locked(&current, &wrapped_first) == 0) {
		app_action = current;
		app_action_known = true;
	}
	pthread_mutex_unlock(&setting_lock);
	if (wrapped_first && on_first_wrap != NULL)
		on_first_wrap();
}

int tcm_signal_sigaction(int signo, const struct sigaction *action, struct sigaction *old_action)
{
	if (signo != SIGTERM || atomic_load(&hook_fn) == NULL)
		return real_sigaction(signo, action, old_action);
	pthread_mutex_lock(&setting_lock);
	struct sigaction previous;
	int result = 0;
	if (app_action_known) {
		previous = app_action;
		if (is_function(previous.sa_handler) && atomic_load(&app_handler_word) == 0) {
			/* SA_RESETHAND already fired: the disposition is the default. */
			previous.sa_handler = SIG_DFL;
			previous.sa_flags = 0;
		}
	} else {
		result = real_sigaction(SIGTERM, NULL, &previous);
	}
	bool wrapped_first = false;
	if (result == 0 && action != NULL) {
		result = apply_locked(action, &wrapped_first);
		if (result == 0) {
			app_action = *action;
			app_action_known = true;
		}
	}
	tcm_signal_wrapped_fn on_first_wrap = first_wrap_fn;
	pthread_mutex_unlock(&setting_lock);
	if (result == 0 && old_action != NULL)
		*old_action = previous;
	if (wrapped_first && on_first_wrap != NULL)
		on_first_wrap();
	return result;
}

__sighandler_t tcm_signal_signal(int signo, __sighandler_t handler)
{
	/* glibc's signal(): BSD semantics, the signal blocked in its handler. */
	struct sigaction action = { .sa_handler = handler, .sa_flags = SA_RESTART };
	sigemptyset(&action.sa_mask);
	if (signo > 0 && signo < NSIG)
		sigaddset(&action.sa_mask, signo);
	struct sigaction old_action;
	if (tcm_signal_sigaction(signo, &action, &old_action) != 0)
		return SIG_ERR;
	return old_action.sa_handler;
}
