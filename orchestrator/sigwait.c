/* orchestrator/sigwait.c - a SIGTERM the application takes with sigwait, sigwaitinfo or
 * sigtimedwait (interposed: shim/sigaction.c) starts tcm's shutdown as one delivered to a
 * handler does (sigterm.h). A service that takes its signals on one thread this way runs no
 * handler: without this its T0 would be exit(), after its whole graceful shutdown, and the
 * drain, the release and STOPPING=1 would come too late to matter.
 *
 * Invariants: each call is libc's, its result and errno unchanged; tcm acts only after one
 * returned SIGTERM, in normal context (the callback may start the worker thread), only in the
 * process that owns this memory (not in a vfork or clone(CLONE_VM) child:
 * tcm_signal_is_memory_owner), and only once armed.
 * Not seen: a SIGTERM read from a signalfd, which is a read(2) like any other. */
#define _GNU_SOURCE
#include "sigterm.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

typedef int (*sigwait_fn)(const sigset_t *, int *);
typedef int (*sigwaitinfo_fn)(const sigset_t *, siginfo_t *);
typedef int (*sigtimedwait_fn)(const sigset_t *, siginfo_t *, const struct timespec *);

static _Atomic(tcm_signal_taken_fn) taken_fn;

void tcm_signal_arm_sigwait(tcm_signal_taken_fn on_taken)
{
	atomic_store(&taken_fn, on_taken);
}

/* libc's definition of name, found once. */
static void *real_function(void *_Atomic *cache, const char *name)
{
	void *function = atomic_load(cache);
	if (function == NULL) {
		function = dlsym(RTLD_NEXT, name);
		atomic_store(cache, function);
	}
	return function;
}

static void after_wait(int signo)
{
	tcm_signal_taken_fn on_taken = atomic_load(&taken_fn);
	if (signo != SIGTERM || on_taken == NULL || !tcm_signal_is_memory_owner())
		return;
	int saved_errno = errno;
	on_taken();
	errno = saved_errno;
}

int tcm_signal_sigwait(const sigset_t *set, int *signo)
{
	static void *_Atomic real;
	int error = ((sigwait_fn)real_function(&real, "sigwait"))(set, signo);
	if (error == 0)
		after_wait(*signo);
	return error;
}

int tcm_signal_sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	static void *_Atomic real;
	int signo = ((sigwaitinfo_fn)real_function(&real, "sigwaitinfo"))(set, info);
	after_wait(signo);
	return signo;
}

int tcm_signal_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	static void *_Atomic real;
	int signo = ((sigtimedwait_fn)real_function(&real, "sigtimedwait"))(set, info, timeout);
	after_wait(signo);
	return signo;
}
