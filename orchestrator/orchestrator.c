/* orchestrator/orchestrator.c - the shutdown timeline's triggers and the wiring
 * of the pieces: the SIGTERM hook, a SIGTERM taken with sigwait (sigwaitinfo,
 * sigtimedwait) and tcm_shutdown_begin start it (T0, core to DRAINING, the
 * worker wakes); exit() ends it (T1, core to EXITING, final STATUS, the exit
 * report).
 *
 * Invariants: the SIGTERM hook is async-signal-safe (a clock read, atomics, an
 * eventfd write); the exit hook allocates nothing and never waits for the
 * worker. The worker starts only when needed: a release rate, notifications to
 * send, an application SIGTERM handler to drain behind, a SIGTERM taken with
 * sigwait, or tcm_shutdown_begin. */
#define _GNU_SOURCE
#include "orchestrator.h"

#include "../core/core.h"
#include "clock.h"
#include "notify.h"
#include "report.h"
#include "sigterm.h"
#include "timeline.h"
#include "worker.h"

#include <pthread.h>
#include <stdlib.h>

static const struct tcm_config *config;   /* set once by tcm_orchestrator_start */

static bool wants_drain(void)
{
	return config->exit.release_on_shutdown || (tcm_notify_is_enabled() && config->notify.stopping);
}

/* Starts the worker once a SIGTERM is coming or came, if it has work: a drain or a release rate. */
static void start_worker_if_wanted(void)
{
	if (wants_drain() || config->release.rate_mib_s > 0)
		tcm_worker_start(config);
}

static void begin_shutdown(enum tcm_shutdown_trigger trigger)
{
	tcm_timeline_begin(trigger, tcm_clock_now_ns(&tcm_clock_monotonic));
	tcm_core_enter_draining();
	tcm_worker_wake();
}

/* In the signal handler, before the application's. */
static void on_sigterm(void)
{
	begin_shutdown(TCM_SHUTDOWN_SIGTERM);
}

/* The application installed a SIGTERM handler: a graceful exit will follow.
 * In a fork child (which starts without a worker) this is also where the
 * background release of release.rate_mib_s starts again. */
static void on_application_handler(void)
{
	start_worker_if_wanted();
}

/* The application took a SIGTERM with sigwait, sigwaitinfo or sigtimedwait: a graceful exit
 * follows, as after a handler's; normal context, so the worker starts here if it is wanted. */
static void on_sigterm_taken(void)
{
	start_worker_if_wanted();
	begin_shutdown(TCM_SHUTDOWN_SIGTERM);
}

void tcm_orchestrator_shutdown_begin(void)
{
	if (config == NULL)
		return;   /* before the constructor: nothing is configured to run */
	tcm_worker_start(config);
	begin_shutdown(TCM_SHUTDOWN_API);
}

/* Whether a report reads the shutdown timeline's samples: the exit report or the live file. */
static bool has_statistics_file(void)
{
	return config->stats.on_exit != TCM_CONFIG_STATS_TO_OFF || tcm_config_has_live_stats(config);
}

static void at_exit(void)
{
	uint64_t now = tcm_clock_now_ns(&tcm_clock_monotonic);
	tcm_timeline_begin(TCM_SHUTDOWN_EXIT, now);
	tcm_core_enter_exiting();
	tcm_timeline_set_t1(now);
	tcm_worker_wake();
	if (tcm_timeline_has_drain_started())
		tcm_timeline_record_lock_maxima();   /* covers the drain up to T1 */
	struct tcm_shutdown_stats shutdown;
	tcm_timeline_read(&shutdown);
	/* T1's sample (a read of /proc/self/statm, three system calls) only for a
	 * report that shows it: a process with no statistics file exits without. */
	if (has_statistics_file())
		tcm_timeline_add_sample(now, shutdown.released_bytes, 0);
	/* The worker may not have run since T0 (a busy machine, a quick exit). */
	if (config->notify.stopping && tcm_timeline_claim_stopping_message())
		tcm_notify_send("STOPPING=1");
	if (config->notify.status) {
		char message[128];
		struct tcm_text text;
		tcm_text_init(&text, message, sizeof message);
		tcm_text_str(&text, "STATUS=exiting: released ");
		tcm_text_u64(&text, shutdown.released_bytes >> 20);
		tcm_text_str(&text, " MiB in ");
		tcm_text_u64(&text, (shutdown.t1_ns - shutdown.t0_ns) / TCM_NS_PER_MS);
		tcm_text_str(&text, " ms of shutdown");
		tcm_notify_send(message);
	}
	tcm_report_at_exit(config, &shutdown);
}

/* The child runs no worker until it installs its own SIGTERM handler or calls
 * tcm_shutdown_begin: it stays single-threaded, as a fork child of a
 * single-threaded program would be (DESIGN invariant 6). */
static void after_fork_in_child(void)
{
	tcm_signal_after_fork_in_child();
	tcm_worker_after_fork_in_child();
}

void tcm_orchestrator_start(const struct tcm_config *loaded_config)
{
	config = loaded_config;
	tcm_notify_init();
	atexit(at_exit);
	pthread_atfork(NULL, NULL, after_fork_in_child);
	tcm_signal_arm(on_sigterm, on_application_handler);
	tcm_signal_arm_sigwait(on_sigterm_taken);
	if (config->release.rate_mib_s > 0 || tcm_notify_is_enabled() || tcm_config_has_live_stats(config))
		tcm_worker_start(config);
}

void tcm_orchestrator_shutdown_stats(struct tcm_shutdown_stats *out)
{
	tcm_timeline_read(out);
}
