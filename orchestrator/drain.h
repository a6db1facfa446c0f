/* orchestrator/drain.h - one pass of the shutdown drain: empty the central
 * stacks back to their spans, then release free page-heap memory chunk by
 * chunk, checking the deadline and yielding between chunks (DESIGN invariant
 * 3), until nothing is left or the stop point (deadline - margin) is reached.
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
	void      *context;
};

struct tcm_drain_progress {
	uint64_t pending_at_start_bytes;  /* pending_bytes() when the pass began */
	uint64_t released_bytes;          /* returned to the kernel by this pass */
	uint64_t release_steps;           /* madvise calls made */
	uint64_t drained_objects;         /* objects moved from stacks to spans */
	bool     is_finished;             /* nothing was left to drain or release */
	bool     hit_stop_point;          /* stopped at deadline - margin */
};

typedef void (*tcm_drain_report_fn)(void *context, const struct tcm_drain_progress *progress);

/* Runs one pass; fills *progress. report (may be NULL) is called about every
 * report_interval_ns and once at the end. */
void tcm_drain_run(const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
		   const struct tcm_deadline *deadline, size_t chunk_bytes, uint64_t report_interval_ns,
		   tcm_drain_report_fn report, void *report_context, struct tcm_drain_progress *progress);

#endif
