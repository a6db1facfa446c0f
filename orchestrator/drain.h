/* orchestrator/drain.h - one pass of the shutdown drain: empty the central
 * stacks back to their spans, then release free page-heap memory chunk by
 * chunk, checking the deadline and yielding between chunks (DESIGN invariant
 * 3), until nothing is left or the stop point (deadline - margin) is reached.
 * The pass keeps to a duty cycle: after each TCM_DRAIN_SLICE_NS of work (its
 * thread's CPU time: on a busy host, time spent preempted is no work) it
 * pauses long enough that its work is at most duty_percent of its time, so
 * a worker at the service's own priority never takes a CPU for long. And it
 * waits out a storm of frees: while the service frees faster than
 * storm_bytes_per_ms (what is pending grows that fast, net of the pass's own
 * releases), the pass only watches. A process in an exit storm ends sooner
 * with the CPUs to itself, and what a service that drains frees in a burst is
 * still there to release once the burst is over. Once no storm has been seen
 * for TCM_DRAIN_HELP_AFTER_QUIET_NS the pass asks the service's freeing threads
 * to help (core/release.h: on a busy host one worker's CPU share is too
 * small); in a storm, and when it ends, it stops asking.
 *
 * The steps and the clock are injected, so the loop's deadline behaviour is
 * tested on a fake clock; production passes core/release and the monotonic
 * clock. Never: allocates; holds a lock (core's steps drop theirs before any
 * system call). */
#ifndef TCM_ORCHESTRATOR_DRAIN_H
#define TCM_ORCHESTRATOR_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "deadline.h"

struct tcm_drain_steps {
	size_t   (*drain_step)(void *context);                      /* objects moved; 0: stacks empty */
	size_t   (*release_step)(void *context, size_t chunk_bytes); /* bytes released; 0: nothing free */
	uint64_t (*pending_bytes)(void *context);                   /* what could still be released */
	uint64_t (*released_bytes)(void *context);                  /* given back so far, by anyone */
	void     (*ask_for_help)(void *context, size_t chunk_bytes); /* freeing threads release too; 0: stop */
	void      *context;
};

struct tcm_drain_progress {
	uint64_t pending_at_start_bytes;  /* pending_bytes() when the pass began */
	uint64_t released_bytes;          /* returned to the kernel by this pass */
	uint64_t release_steps;           /* madvise calls made */
	uint64_t drained_objects;         /* objects moved from stacks to spans */
	uint64_t storm_wait_ns;           /* time spent waiting out storms of frees */
	bool     is_finished;             /* nothing was left to drain or release */
	bool     hit_stop_point;          /* stopped at deadline - margin */
};

typedef void (*tcm_drain_report_fn)(void *context, const struct tcm_drain_progress *progress);

#define TCM_DRAIN_SLICE_NS        (1 * TCM_NS_PER_MS)
#define TCM_DRAIN_STORM_SAMPLE_NS (5 * TCM_NS_PER_MS)   /* how long one look at the inflow lasts */
/* Help is asked for only once no storm has been seen for this long: on a busy
 * host an exit storm's threads are off the CPU for milliseconds at a time, and
 * a look that falls in such a gap must not bring helpers into the storm. */
#define TCM_DRAIN_HELP_AFTER_QUIET_NS (50 * TCM_NS_PER_MS)

struct tcm_drain_pace {
	size_t   chunk_bytes;          /* at most this much per release step */
	unsigned duty_percent;         /* 1-100: the most of its time the pass works */
	uint64_t storm_bytes_per_ms;   /* an inflow of frees this fast is a storm; 0: never wait */
	                               /* (inflow: growth of pending + released, so that releases by
	                                * helping threads do not hide it) */
	uint64_t report_interval_ns;   /* between two calls of report */
};

/* Runs one pass; fills *progress. report (may be NULL) is called about every
 * pace->report_interval_ns and once at the end. */
void tcm_drain_run(const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
		   const struct tcm_deadline *deadline, const struct tcm_drain_pace *pace,
		   tcm_drain_report_fn report, void *report_context, struct tcm_drain_progress *progress);

#endif
