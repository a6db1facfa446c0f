/* orchestrator/sigterm.c - the SIGTERM hook and the interposed sigaction/signal
 * (see sigterm.h).
 *
 * Invariants:
 *   - app_handler_word holds the application's SIGTERM handler as the handler
 *     reads it: one 64-bit word (the 48-bit function address and two flag
 *     bits), so the handler never sees a torn update;
 *   - the kernel's SIGTERM action is tcm's handler exactly while the word holds
 *     a real function; both change together under the setting lock, which only
 *     normal-context callers (the interposed calls) take;
 *   - only the process that owns this memory (owner_pid) changes the record
 *     or runs the hook. A vfork or clone(CLONE_VM) child shares the parent's
 *     memory but has its own table of signal actions: its sigaction and signal
 *     calls go straight to the kernel and leave the record alone, so what it
 *     does between vfork and exec never changes what the parent sees;
 *   - the setting lock is held with every signal blocked, so a handler that
 *     calls sigaction cannot interrupt its own thread's hold; its word is the
 *     holder's process id, and a fork child clears a hold copied from the
 *     parent (the holder was another thread of it);
 *   - a fork child rebuilds the record from its own kernel action: fork
 *     copies the actions before the memory while the parent's other threads
 *     run, so the two copies can be from different moments;
 *   - SA_RESETHAND is the kernel's: the wrapper carries the flag, so the reset
 *     to SIG_DFL happens at delivery, and a second SIGTERM sent back to back
 *     (to any thread) meets the default action, as without tcm;
 *   - until a setting first needs the record (a handler function to wrap, or
 *     one to adopt), the record says "no handler" and a set of SIG_DFL or
 *     SIG_IGN goes straight to the kernel, one system call as without tcm
 *     (a shell sets SIGTERM as it starts); settings_go_through_lock, set by
 *     every holder of the setting lock before it changes the kernel's action
 *     and never cleared, ends that; a straight set that raced it puts the
 *     record right under the lock, and tcm_signal_arm puts back one that
 *     landed between its read of a handler and its wrap;
 *   - the handler allocates nothing, takes no lock, and keeps errno.
 * This file is the orchestrator's only user of sigaction. */
#define _GNU_SOURCE
#include "sigterm.h"

#include "../core/core.h"

#include <dlfcn.h>
#include <errno.h>
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
static struct sigaction app_action;              /* the application's whole action; setting lock */
static bool app_action_known;                    /* app_action holds the last setting; setting lock */
static _Atomic pid_t setting_holder;             /* the setting lock: 0 free, else the holder's pid */
static _Atomic pid_t owner_pid;                  /* the process this memory belongs to */
static _Atomic(tcm_signal_hook_fn) hook_fn;
static tcm_signal_wrapped_fn first_wrap_fn;      /* setting lock */
static bool has_wrapped;                         /* setting lock */
static atomic_bool settings_go_through_lock;     /* see the invariants above */

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

/* Takes the setting lock with every signal blocked (the old mask into
 * *previous_mask); self is this process's id. Another thread of this process
 * holding it is waited for; a holder in another process is the parent's hold
 * copied by fork. */
static void setting_lock(struct tcm_os_signal_mask *previous_mask, pid_t self)
{
	tcm_os_block_signals(previous_mask);
	for (;;) {
		pid_t holder = 0;
		if (atomic_compare_exchange_strong(&setting_holder, &holder, self))
			break;
		if (holder != self && atomic_compare_exchange_strong(&setting_holder, &holder, self))
			break;   /* stale: held in the parent when it forked */
		tcm_os_yield();   /* holds are a few system calls long */
	}
	/* Before this holder changes the kernel's action: a straight set whose
	 * system call comes after that change sees the flag (the kernel orders
	 * the two calls under its signal lock). */
	atomic_store(&settings_go_through_lock, true);
}

static void setting_unlock(const struct tcm_os_signal_mask *previous_mask)
{
	atomic_store(&setting_holder, 0);
	tcm_os_restore_signals(previous_mask);
}

static void on_sigterm(int signo, siginfo_t *info, void *ucontext)
{
	int saved_errno = errno;
	/* In a vfork or clone(CLONE_VM) child the memory is the parent's: the
	 * hook would start the parent's shutdown. */
	bool is_owner = tcm_signal_is_memory_owner();
	tcm_signal_hook_fn hook = atomic_load(&hook_fn);
	if (hook != NULL && is_owner)
		hook();
	uint64_t word = atomic_load(&app_handler_word);
	if ((word & WORD_RESETHAND) && is_owner) {
		/* The kernel has reset the action to SIG_DFL on delivery (the
		 * wrapper carries SA_RESETHAND); the record follows it. */
		uint64_t expected = word;
		atomic_compare_exchange_strong(&app_handler_word, &expected, 0);
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

/* The word for an action with a handler function. */
static uint64_t handler_word(const struct sigaction *action)
{
	return ((uint64_t)(uintptr_t)action->sa_handler & WORD_ADDRESS) |
	       ((action->sa_flags & SA_SIGINFO) ? WORD_SIGINFO : 0) |
	       ((action->sa_flags & SA_RESETHAND) ? WORD_RESETHAND : 0);
}

/* REQUIRES: setting_lock. Applies the application's new action: wraps a
 * handler function, passes SIG_DFL and SIG_IGN straight to the kernel. The
 * kernel reports the action the set replaced, in the same call, into
 * *kernel_previous when that is not NULL (never tcm's wrapper there: it is set
 * only with the record known, and a caller that passes kernel_previous does
 * not know it). */
static int apply_locked(const struct sigaction *action, bool *wrapped_first, struct sigaction *kernel_previous)
{
	__sighandler_t handler = action->sa_handler;   /* aliases sa_sigaction */
	if (!is_function(handler)) {
		int result = real_sigaction(SIGTERM, action, kernel_previous);
		if (result == 0)
			atomic_store(&app_handler_word, 0);
		return result;
	}
	struct sigaction wrapper = *action;
	wrapper.sa_sigaction = on_sigterm;
	wrapper.sa_flags = action->sa_flags | SA_SIGINFO;
	uint64_t word = handler_word(action);
	/* Publish the handler before the kernel can call the wrapper. */
	uint64_t previous = atomic_exchange(&app_handler_word, word);
	int result = real_sigaction(SIGTERM, &wrapper, kernel_previous);
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

/* Signal by signal: glibc copies the whole sigset_t back, of which the kernel
 * fills only its own 8 bytes, so the rest of two reads of one action differ. */
static bool is_same_action(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_sigaction != b->sa_sigaction || a->sa_flags != b->sa_flags)
		return false;
	for (int signo = 1; signo < NSIG; signo++)
		if (sigismember(&a->sa_mask, signo) != sigismember(&b->sa_mask, signo))
			return false;
	return true;
}

/* REQUIRES: setting lock, and tcm's wrapper just installed over *newest, a
 * straight set (SIG_DFL or SIG_IGN, lock-free) of another thread that came
 * after the action the wrapper was made for. Puts *newest back, and again any
 * straight set that lands meanwhile (one exchange each, until the kernel hands
 * back what this function set last; only sets already under way when the
 * flag was stored can land, so this ends), then records the action left.
 * Actions are told apart by value: a set that lands between two exchanges
 * and equals what the first of them set passes for this function's own, and
 * the one before it is kept (three straight sets racing tcm's start). */
static void put_back_straight_sets(const struct sigaction *newest)
{
	struct sigaction want = *newest, set_last;
	bool set_wrapper_last = true;
	for (;;) {
		struct sigaction got;
		if (real_sigaction(SIGTERM, &want, &got) != 0) {
			if (set_wrapper_last)
				return;   /* the wrapper stays, and the record with it */
			break;        /* the kernel keeps set_last */
		}
		bool is_ours = set_wrapper_last ? got.sa_sigaction == on_sigterm : is_same_action(&got, &set_last);
		set_last = want;
		set_wrapper_last = false;
		if (is_ours)
			break;
		want = got;
	}
	atomic_store(&app_handler_word, 0);
	app_action = set_last;
	app_action_known = true;
	has_wrapped = false;
}

bool tcm_signal_is_memory_owner(void)
{
	return tcm_os_process_id_unchecked() == atomic_load(&owner_pid);
}

void tcm_signal_arm(tcm_signal_hook_fn hook, tcm_signal_wrapped_fn on_first_wrap)
{
	pid_t self = tcm_os_process_id();
	atomic_store(&owner_pid, self);
	/* Read under the setting lock only, and only once hook_fn is seen set. */
	first_wrap_fn = on_first_wrap;
	atomic_store(&hook_fn, hook);
	/* A handler installed before tcm started (another library's constructor)
	 * is wrapped now, as if it had been installed through tcm. Most processes
	 * have none: the kernel's action is read first with no lock (a start-up of
	 * two system calls, not four). A handler installed after hook_fn was set
	 * comes through the interposed sigaction, which wraps it under the lock;
	 * so under the lock the action is read again, and a wrapper found there is
	 * left alone. */
	struct sigaction current;
	if (real_sigaction(SIGTERM, NULL, &current) != 0 || !is_function(current.sa_handler))
		return;
	struct tcm_os_signal_mask mask;
	setting_lock(&mask, self);
	bool wrapped_first = false;
	struct sigaction replaced;
	if (real_sigaction(SIGTERM, NULL, &current) == 0 && is_function(current.sa_handler) &&
	    current.sa_sigaction != on_sigterm && apply_locked(&current, &wrapped_first, &replaced) == 0) {
		app_action = current;
		app_action_known = true;
		if (!is_same_action(&replaced, &current)) {
			/* A straight set of another thread landed between the read and the
			 * wrap: it came last, so it stays. */
			put_back_straight_sets(&replaced);
			wrapped_first = false;
		}
	}
	setting_unlock(&mask);
	if (wrapped_first && on_first_wrap != NULL)
		on_first_wrap();
}

/* The application's action as the record holds it, for an old_action that
 * the kernel reports as tcm's wrapper. Lock-free (a vfork child must not wait
 * for a lock another thread of its parent may hold): the handler and its two
 * flags come from the word, the mask and other flags from the wrapper, which
 * copied them from the application's action. */
static void describe_application_action(struct sigaction *action)
{
	uint64_t word = atomic_load(&app_handler_word);
	if (word == 0) {
		action->sa_handler = SIG_DFL;   /* SA_RESETHAND fired, or being changed */
		action->sa_flags = 0;
		return;
	}
	action->sa_handler = (__sighandler_t)(uintptr_t)(word & WORD_ADDRESS);
	action->sa_flags &= ~(SA_SIGINFO | SA_RESETHAND);
	action->sa_flags |= ((word & WORD_SIGINFO) ? SA_SIGINFO : 0) | ((word & WORD_RESETHAND) ? SA_RESETHAND : 0);
}

/* A process that shares this memory without owning it (vfork or
 * clone(CLONE_VM) child): straight to its own kernel action table. */
static int sigaction_in_borrowed_memory(const struct sigaction *action, struct sigaction *old_action)
{
	int result = real_sigaction(SIGTERM, action, old_action);
	if (result == 0 && old_action != NULL && old_action->sa_sigaction == on_sigterm)
		describe_application_action(old_action);
	return result;
}

void tcm_signal_after_fork_in_child(void)
{
	pid_t self = tcm_os_process_id();
	atomic_store(&owner_pid, self);
	/* A hold copied from the parent (another of its threads held the lock)
	 * is stale: the child's one thread holds nothing. Cleared here, and not
	 * only when the child next locks: a descendant that gets the parent's
	 * pid again would take the copy for its own hold and wait forever. */
	atomic_store(&setting_holder, 0);
	if (atomic_load(&hook_fn) == NULL)
		return;
	struct sigaction current;
	if (real_sigaction(SIGTERM, NULL, &current) != 0)
		return;
	/* Most children (every one of a shell) inherit a record with no
	 * application handler that the kernel's action matches: one read of the
	 * action shows it and nothing is written, so the lock, whose signal
	 * blocking costs two system calls per fork, is not taken. The record is
	 * read with no lock: the child has one thread, and a signal handler that
	 * sets SIGTERM meanwhile leaves a record of its own that is whole. */
	bool is_record_current = !app_action_known || app_action.sa_handler == current.sa_handler;
	if (!is_function(current.sa_handler) && atomic_load(&app_handler_word) == 0 && !has_wrapped &&
	    is_record_current)
		return;
	struct tcm_os_signal_mask mask;
	setting_lock(&mask, self);
	/* The record is rebuilt from the child's kernel action, the truth for
	 * it. fork copies the signal actions before the memory while the parent's
	 * other threads run, so the copy of the record can be from a moment later
	 * (a setting half done, an SA_RESETHAND delivery); and fork handlers that
	 * ran before this one may have set SIGTERM straight through. SIG_DFL and
	 * SIG_IGN are recorded, another handler function is wrapped. tcm's
	 * wrapper calls the handler the word names or, with none named (a
	 * setting of SIG_DFL or SIG_IGN caught half way), the one app_action
	 * holds, with SA_RESETHAND as the kernel's copy has it: the word and
	 * app_action may be from settings made after that copy. With neither,
	 * or after a reset, the setting app_action holds, or SIG_DFL, is put in
	 * place. Either way what the record reports is what SIGTERM does. */
	bool wrapped_first_unused = false;   /* no first wrap here: see has_wrapped below */
	if (real_sigaction(SIGTERM, NULL, &current) != 0) {
		/* nothing to rebuild from */
	} else if (!is_function(current.sa_handler)) {
		atomic_store(&app_handler_word, 0);
		app_action = current;
		app_action_known = true;
	} else if (current.sa_sigaction != on_sigterm) {
		if (apply_locked(&current, &wrapped_first_unused, NULL) == 0) {
			app_action = current;
			app_action_known = true;
		}
	} else {
		uint64_t word = atomic_load(&app_handler_word);
		if (word == 0 && !(current.sa_flags & SA_RESETHAND) && app_action_known &&
		    is_function(app_action.sa_handler))
			word = handler_word(&app_action);
		if (word != 0) {
			word = (word & ~WORD_RESETHAND) | ((current.sa_flags & SA_RESETHAND) ? WORD_RESETHAND : 0);
			atomic_store(&app_handler_word, word);
			app_action = current;
			describe_application_action(&app_action);
			app_action_known = true;
		} else {
			struct sigaction setting = { .sa_handler = SIG_DFL };
			sigemptyset(&setting.sa_mask);
			if (app_action_known && !is_function(app_action.sa_handler))
				setting = app_action;
			if (apply_locked(&setting, &wrapped_first_unused, NULL) == 0) {
				app_action = setting;
				app_action_known = true;
			}
		}
	}
	/* Whatever the record now holds, inherited or adopted from a fork handler
	 * that ran before this one, was not installed by the child's own code, and
	 * this fork handler starts no thread: the child's own first handler (also
	 * one a later fork handler installs) starts its worker
	 * (tcm_signal_sigaction's first wrap). */
	has_wrapped = false;
	setting_unlock(&mask);
}

/* After a set of SIG_DFL or SIG_IGN straight to the kernel that raced the
 * first locked setting: the record may name a handler the kernel no longer
 * has (the set replaced the wrapper), so it is made the kernel's again under
 * the lock. *previous is the action the set replaced, as the application
 * sees it. */
static void put_record_right(struct sigaction *previous)
{
	if (previous->sa_sigaction == on_sigterm)
		describe_application_action(previous);
	pid_t self = tcm_os_process_id();
	if (self != atomic_load(&owner_pid))
		return;   /* a vfork child's own table: the record is its parent's */
	struct tcm_os_signal_mask mask;
	setting_lock(&mask, self);
	struct sigaction current;
	if (real_sigaction(SIGTERM, NULL, &current) == 0 && current.sa_sigaction != on_sigterm) {
		atomic_store(&app_handler_word, 0);
		app_action = current;
		app_action_known = true;
	}
	setting_unlock(&mask);
}

int tcm_signal_sigaction(int signo, const struct sigaction *action, struct sigaction *old_action)
{
	if (signo != SIGTERM || atomic_load(&hook_fn) == NULL)
		return real_sigaction(signo, action, old_action);
	if (action == NULL) {
		/* A query: while tcm's wrapper is not installed, the kernel's action
		 * is the application's, one system call as without tcm. A wrapper
		 * installed meanwhile is seen, and the path below answers. */
		struct sigaction current;
		if (real_sigaction(SIGTERM, NULL, &current) != 0)
			return -1;
		if (current.sa_sigaction != on_sigterm) {
			if (old_action != NULL)
				*old_action = current;
			return 0;
		}
	}
	if (action != NULL && !is_function(action->sa_handler) && !atomic_load(&settings_go_through_lock)) {
		struct sigaction previous;
		if (real_sigaction(SIGTERM, action, &previous) != 0)
			return -1;
		if (atomic_load(&settings_go_through_lock))
			put_record_right(&previous);
		if (old_action != NULL)
			*old_action = previous;
		return 0;
	}
	pid_t self = tcm_os_process_id();
	if (self != atomic_load(&owner_pid))
		return sigaction_in_borrowed_memory(action, old_action);
	struct tcm_os_signal_mask mask;
	setting_lock(&mask, self);
	struct sigaction previous;
	int result = 0;
	if (app_action_known) {
		previous = app_action;
		if (is_function(previous.sa_handler) && atomic_load(&app_handler_word) == 0) {
			/* SA_RESETHAND already fired: the disposition is the default. */
			previous.sa_handler = SIG_DFL;
			previous.sa_flags = 0;
		}
	} else if (action == NULL) {
		result = real_sigaction(SIGTERM, NULL, &previous);
	}
	bool wrapped_first = false;
	if (result == 0 && action != NULL) {
		/* Unknown till now, the previous action is the kernel's: read with the change. */
		result = apply_locked(action, &wrapped_first, app_action_known ? NULL : &previous);
		if (result == 0) {
			app_action = *action;
			app_action_known = true;
		}
	}
	tcm_signal_wrapped_fn on_first_wrap = first_wrap_fn;
	setting_unlock(&mask);
	if (result == 0 && old_action != NULL)
		*old_action = previous;
	if (wrapped_first && on_first_wrap != NULL)
		on_first_wrap();
	return result;
}
