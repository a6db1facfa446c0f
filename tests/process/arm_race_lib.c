/* tests/process/arm_race_lib.c - a library preloaded after libtcm.so that
 * makes a straight set of SIGTERM (SIG_DFL from another thread, which tcm
 * passes lock-free to the kernel) land between tcm_signal_arm's read of the
 * kernel's action and its wrap of the handler it read. It stands between tcm
 * and the C library's sigaction (tcm finds the next sigaction with
 * dlsym(RTLD_NEXT)), and its constructor, which runs before libtcm.so's,
 * installs a handler and starts the thread:
 *   1. tcm's first read of SIGTERM (arm's look without the lock) starts the
 *      thread's sigaction(SIGTERM, SIG_DFL) and waits until it is held: tcm
 *      sent it straight on, and this library holds it just before the kernel;
 *   2. arm's second read (under its lock) is answered with the handler, then
 *      the held set goes on to the kernel and this library waits until it
 *      has returned before handing the answer back;
 *   3. arm wraps the handler it read. The thread's SIG_DFL came last: it must
 *      stay (sigterm_matrix straight_set_during_arm checks).
 * Every wait gives up after 2 s, so a tcm that locks where it should not
 * fails the check instead of hanging the test. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static atomic_int queries_seen;       /* reads of SIGTERM's action since the constructor */
static atomic_int set_is_held;        /* the thread's SIG_DFL waits here */
static atomic_int set_may_go;
static atomic_int set_is_done;
static atomic_int is_armed;           /* the constructor has started the thread */

__attribute__((visibility("default"))) volatile sig_atomic_t arm_race_handler_calls;

__attribute__((visibility("default"))) void arm_race_handler(int signo)
{
	(void)signo;
	arm_race_handler_calls++;
}

static void wait_for(atomic_int *flag)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while (!atomic_load(flag) && now.tv_sec - start.tv_sec < 2);
}

static sigaction_fn next_sigaction(void)
{
	return (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
}

__attribute__((visibility("default"))) int sigaction(int signo, const struct sigaction *action,
						     struct sigaction *old_action)
{
	sigaction_fn next = next_sigaction();
	if (signo != SIGTERM || !atomic_load(&is_armed))
		return next(signo, action, old_action);
	if (action != NULL && action->sa_handler == SIG_DFL && !atomic_load(&set_is_done)) {
		atomic_store(&set_is_held, 1);   /* step 1 */
		wait_for(&set_may_go);
		int result = next(signo, action, old_action);
		atomic_store(&set_is_done, 1);
		return result;
	}
	if (action == NULL) {
		int query = atomic_fetch_add(&queries_seen, 1) + 1;
		int result = next(signo, action, old_action);
		if (query == 1) {
			wait_for(&set_is_held);
		} else if (query == 2) {   /* step 2: arm's read under its lock */
			atomic_store(&set_may_go, 1);
			wait_for(&set_is_done);
		}
		return result;
	}
	return next(signo, action, old_action);
}

static void *set_default_after_first_query(void *unused)
{
	(void)unused;
	while (atomic_load(&queries_seen) < 1)
		;   /* tcm's arm asks first */
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_handler = SIG_DFL;
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, NULL);   /* through libtcm.so, first in the search order */
	return NULL;
}

__attribute__((constructor)) static void start_race(void)
{
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_handler = arm_race_handler;
	sigemptyset(&action.sa_mask);
	next_sigaction()(SIGTERM, &action, NULL);
	atomic_store(&is_armed, 1);
	pthread_t thread;
	pthread_create(&thread, NULL, set_default_after_first_query, NULL);
	pthread_detach(thread);
}
