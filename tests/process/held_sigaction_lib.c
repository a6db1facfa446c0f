/* tests/process/held_sigaction_lib.c - a library preloaded after libtcm.so that
 * stands between tcm and the C library's sigaction (tcm finds the next
 * sigaction with dlsym(RTLD_NEXT)), so a test can hold one call just before it
 * reaches the kernel: sigterm_matrix set_raced_by_first_wrap holds the main
 * thread's straight set of SIG_DFL there while another thread installs a
 * handler through tcm's lock, the window tcm's put_record_right covers. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

/* The test sets hold_next_default_set; the next sigaction(SIGTERM, SIG_DFL)
 * then sets is_holding and waits until release_held_set is set, or 2 s have
 * passed (a tcm that held its setting lock across the call would otherwise
 * deadlock the test instead of failing it). */
__attribute__((visibility("default"))) atomic_int hold_next_default_set;
__attribute__((visibility("default"))) atomic_int is_holding;
__attribute__((visibility("default"))) atomic_int release_held_set;

__attribute__((visibility("default"))) int sigaction(int signo, const struct sigaction *action,
						     struct sigaction *old_action)
{
	int (*next)(int, const struct sigaction *, struct sigaction *) =
		(int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
	if (signo == SIGTERM && action != NULL && action->sa_handler == SIG_DFL &&
	    atomic_exchange(&hold_next_default_set, 0) != 0) {
		atomic_store(&is_holding, 1);
		struct timespec start, now;
		clock_gettime(CLOCK_MONOTONIC, &start);
		do
			clock_gettime(CLOCK_MONOTONIC, &now);
		while (atomic_load(&release_held_set) == 0 && now.tv_sec - start.tv_sec < 2);
	}
	return next(signo, action, old_action);
}
