/* orchestrator/worker.c - the release worker thread (see worker.h).
 *
 * Invariants: at most one worker per process (is_running); every notify
 * message is built into a stack buffer with core/format.h (no printf-family
 * function); the worker blocks every signal, so the application's SIGTERM
 * handler never runs on it; between two release steps it checks the deadline
 * and yields (DESIGN invariant 3). It runs at the priority of the thread
 * that started it, the service's (DESIGN invariant 12): a worker below it
 * would keep the class and page-heap locks it takes for as long as the
 * scheduler leaves it off the CPU, which on a busy host is forever, and would
 * release nothing there (bench/BUSY_HOST.md). What keeps it from taking the
 * service's CPU instead is its duty cycle (release.worker_duty_percent,
 * drain.h): about 1 ms of work, then a sleep. It also rewrites the live statistics file
 * (stats.path) every stats.interval_ms, so the service's threads never do.
 * Its system calls (the eventfd, sleeps, the file) are core/os.c's. */
#define _GNU_SOURCE
#include "worker.h"

#include "../core/core.h"
#include "clock.h"
#include "deadline.h"
#include "drain.h"
#include "notify.h"
#include "stats_file.h"
#include "timeline.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define TICK_MS                 100   /* NORMAL with a release rate */
#define DRAIN_REPASS_MS         10    /* DRAINING: look again for freed memory */
#define REPORT_INTERVAL_NS      (100 * TCM_NS_PER_MS)
#define EXTEND_INTERVAL_NS      (500 * TCM_NS_PER_MS)
/* Frees arriving at 1 GiB/s or more are a storm (drain.h): an exit storm of a
 * 2 GiB heap frees 4 MiB per ms; a service that keeps serving frees in one
 * burst at SIGTERM, then slowly. */
#define STORM_BYTES_PER_MS      ((uint64_t)1 << 20)

static const struct tcm_config *config;   /* set before the thread starts */
static _Atomic int wake_fd = -1;
static _Atomic bool is_running;

void tcm_worker_wake(void)
{
	int fd = atomic_load(&wake_fd);
	if (fd >= 0)
		tcm_os_wake_fd_signal(fd);
}

/* Sleeps until woken or timeout_ms (-1: no timeout), then clears the wake-ups. */
static void wait_for_wake(int timeout_ms)
{
	tcm_os_wake_fd_wait(atomic_load(&wake_fd), timeout_ms);
}

/* ---- the live statistics file (stats.path, every stats.interval_ms) ------- */

static uint64_t live_stats_due_ns;          /* the worker's own */
static atomic_bool has_reported_live_stats_error;

/* The earlier of two waits in ms, -1 being none. */
static int earlier_ms(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* Writes the live file when it is due. Returns the ms until the next one, -1 when there is no
 * live file. A file that cannot be written is said once on stderr; the next period tries again. */
static int write_live_stats_when_due(void)
{
	if (!tcm_config_has_live_stats(config))
		return -1;
	uint64_t now = tcm_clock_now_ns(&tcm_clock_monotonic);
	uint64_t interval_ns = (uint64_t)config->stats.interval_ms * TCM_NS_PER_MS;
	if (live_stats_due_ns == 0)
		live_stats_due_ns = now + interval_ns;   /* the first after one period: a short-lived process writes none */
	if (now >= live_stats_due_ns) {
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		tcm_timeline_read(&stats.shutdown);
		const char *path = tcm_config_path(config, TCM_CONFIG_PATH_STATS_LIVE);
		int err = tcm_stats_file_write(path, &stats, 0);
		if (err != 0 && !atomic_exchange(&has_reported_live_stats_error, true))
			tcm_stats_file_report_error("stats.path", path, err);
		live_stats_due_ns = now + interval_ns;
	}
	return (int)((live_stats_due_ns - now + TCM_NS_PER_MS - 1) / TCM_NS_PER_MS);
}

/* ---- the steps the drain loop runs: core's, stopped by EXITING ----------- */

static size_t drain_step(void *context)
{
	(void)context;
	return tcm_state_get() == TCM_STATE_EXITING ? 0 : tcm_release_drain_step(false);
}

static size_t release_step(void *context, size_t chunk_bytes)
{
	(void)context;
	return tcm_state_get() == TCM_STATE_EXITING ? 0 : tcm_release_step(chunk_bytes);
}

static uint64_t pending_bytes(void *context)
{
	(void)context;
	return tcm_release_pending_bytes();
}

static uint64_t released_bytes(void *context)
{
	(void)context;
	uint64_t bytes, calls;
	tcm_release_totals(&bytes, &calls);
	return bytes;
}

static void ask_for_help(void *context, size_t chunk_bytes)
{
	(void)context;
	tcm_release_ask_for_help(chunk_bytes);
}

static const struct tcm_drain_steps core_steps = {
	.drain_step = drain_step,
	.release_step = release_step,
	.pending_bytes = pending_bytes,
	.released_bytes = released_bytes,
	.ask_for_help = ask_for_help,
};

/* ---- DRAINING ------------------------------------------------------------- */

struct drain_report {
	struct tcm_deadline deadline;
	uint64_t released_at_start_bytes; /* tcm_release_totals when the drain began */
	uint64_t release_calls_at_start;
	uint64_t next_extend_ns;
	uint64_t last_status_released_mib; /* what the last STATUS said: repeat nothing */
	uint64_t last_status_total_mib;
};

static void send_extend(struct drain_report *report, uint64_t now_ns)
{
	if (!config->notify.stopping)
		return;
	char message[64];
	struct tcm_text text;
	tcm_text_init(&text, message, sizeof message);
	tcm_text_str(&text, "EXTEND_TIMEOUT_USEC=");
	tcm_text_u64(&text, tcm_deadline_left_us(&report->deadline, now_ns));
	tcm_notify_send(message);
	report->next_extend_ns = now_ns + EXTEND_INTERVAL_NS;
}

/* Progress is what everybody released since the drain began: the worker's
 * passes and the threads that helped them (core/release.h). */
static void on_drain_progress(void *context, const struct tcm_drain_progress *progress)
{
	(void)progress;
	struct drain_report *report = context;
	uint64_t now = tcm_clock_now_ns(&tcm_clock_monotonic);
	uint64_t total_bytes, total_calls;
	tcm_release_totals(&total_bytes, &total_calls);
	/* "of M MiB": what is released plus what is free now (the service keeps
	 * freeing while the drain runs). */
	uint64_t released_bytes = total_bytes - report->released_at_start_bytes;
	tcm_timeline_set_release(released_bytes, total_calls - report->release_calls_at_start);
	tcm_timeline_add_sample(now, released_bytes,
				(uint64_t)config->exit.deadline_ms * TCM_NS_PER_MS / (TCM_TIMELINE_SAMPLES_MAX - 8));
	uint64_t released_mib = released_bytes >> 20;
	uint64_t total_mib = (released_bytes + tcm_release_pending_bytes()) >> 20;
	if (config->notify.status &&
	    (released_mib != report->last_status_released_mib || total_mib != report->last_status_total_mib)) {
		char message[96];
		struct tcm_text text;
		tcm_text_init(&text, message, sizeof message);
		tcm_text_str(&text, "STATUS=draining: released ");
		tcm_text_u64(&text, released_mib);
		tcm_text_str(&text, " MiB of ");
		tcm_text_u64(&text, total_mib);
		tcm_text_str(&text, " MiB");
		tcm_notify_send(message);
		report->last_status_released_mib = released_mib;
		report->last_status_total_mib = total_mib;
	}
	if (now >= report->next_extend_ns)
		send_extend(report, now);
	write_live_stats_when_due();
}

static void drain_until_stop_point(void)
{
	struct drain_report report = { 0 };
	tcm_release_totals(&report.released_at_start_bytes, &report.release_calls_at_start);
	uint64_t t0 = tcm_timeline_t0_ns();
	tcm_deadline_start(&report.deadline, t0, (uint64_t)config->exit.deadline_ms, (uint64_t)config->exit.margin_ms);
	uint64_t now = tcm_clock_now_ns(&tcm_clock_monotonic);
	if (config->notify.stopping && tcm_timeline_claim_stopping_message())
		tcm_notify_send("STOPPING=1");
	send_extend(&report, now);
	const struct tcm_drain_pace pace = {
		.chunk_bytes = (size_t)config->release.chunk_kib << 10,
		.duty_percent = (unsigned)config->release.worker_duty_percent,
		.storm_bytes_per_ms = STORM_BYTES_PER_MS,
		.report_interval_ns = REPORT_INTERVAL_NS,
	};
	struct tcm_drain_progress nothing_yet = { 0 };
	on_drain_progress(&report, &nothing_yet);
	tcm_timeline_mark_drain_started();
	while (config->exit.release_on_shutdown && tcm_state_get() == TCM_STATE_DRAINING &&
	       tcm_deadline_may_continue(&report.deadline, tcm_clock_now_ns(&tcm_clock_monotonic))) {
		struct tcm_drain_progress progress;
		tcm_drain_run(&core_steps, &tcm_clock_monotonic, &report.deadline, &pace, on_drain_progress, &report,
			      &progress);
		if (progress.hit_stop_point)
			break;
		/* Everything free is released; the service may still be freeing. */
		wait_for_wake(DRAIN_REPASS_MS);
	}
	tcm_timeline_record_lock_maxima();
}

/* ---- NORMAL ---------------------------------------------------------------- */

static void release_at_rate(void)
{
	uint64_t budget = ((uint64_t)config->release.rate_mib_s << 20) * TICK_MS / 1000;
	size_t chunk = (size_t)config->release.chunk_kib << 10;
	while (budget > 0 && tcm_state_get() == TCM_STATE_NORMAL) {
		size_t released = tcm_release_step(budget < chunk ? (size_t)budget : chunk);
		if (released == 0)
			break;
		budget = released >= budget ? 0 : budget - released;
		tcm_clock_monotonic.pause_ns(NULL, 0);
	}
}

static void *worker_main(void *unused)
{
	(void)unused;
	static atomic_bool has_sent_ready;
	if (config->notify.ready == TCM_CONFIG_NOTIFY_READY_INIT && !atomic_exchange(&has_sent_ready, true))
		tcm_notify_send("READY=1");
	bool has_drained = false;
	for (;;) {
		enum tcm_state state = tcm_state_get();
		if (state == TCM_STATE_EXITING)
			break;
		if (state == TCM_STATE_DRAINING) {
			if (!has_drained) {
				drain_until_stop_point();
				has_drained = true;
			}
			wait_for_wake(write_live_stats_when_due());
			continue;
		}
		while (tcm_release_drain_step(true) != 0)
			;   /* what dying threads pushed past the stacks' capacity */
		if (config->release.rate_mib_s > 0)
			release_at_rate();
		int live_stats_ms = write_live_stats_when_due();
		wait_for_wake(earlier_ms(config->release.rate_mib_s > 0 ? TICK_MS : -1, live_stats_ms));
	}
	atomic_store(&is_running, false);
	return NULL;
}

int tcm_worker_start(const struct tcm_config *worker_config)
{
	bool expected = false;
	if (!atomic_compare_exchange_strong(&is_running, &expected, true))
		return 0;
	config = worker_config;
	if (atomic_load(&wake_fd) < 0) {
		int fd;
		int err = tcm_os_wake_fd_create(&fd);
		if (err != 0) {
			atomic_store(&is_running, false);
			return err;
		}
		atomic_store(&wake_fd, fd);
	}
	/* The thread starts with every signal blocked and keeps it so. */
	struct tcm_os_signal_mask previous;
	tcm_os_block_signals(&previous);
	pthread_attr_t attributes;
	pthread_attr_init(&attributes);
	pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
	pthread_t thread;
	int err = pthread_create(&thread, &attributes, worker_main, NULL);
	pthread_attr_destroy(&attributes);
	tcm_os_restore_signals(&previous);
	if (err != 0)
		atomic_store(&is_running, false);
	return err;
}

void tcm_worker_after_fork_in_child(void)
{
	/* The parent's thread does not exist here, and the child stays single-
	 * threaded (a thread created here would make unshare(CLONE_NEWUSER) and
	 * the like fail, and pthread_create is not async-signal-safe): the next
	 * tcm_worker_start starts the child's own. The eventfd is shared with
	 * the parent: the child gets its own then. */
	int fd = atomic_exchange(&wake_fd, -1);
	if (fd >= 0)
		tcm_os_close(fd);
	atomic_store(&is_running, false);
}
