/* orchestrator/timeline.h - the shutdown timeline (T0, T1, what the drain
 * released, lock maxima during it), kept for tcm_stats and the exit report.
 *
 * Invariants: T0 is set once, by whichever trigger comes first, with a
 * compare-and-swap (so the signal handler may set it); the other fields are
 * written by the worker or the exit hook and read racily by stats. */
#ifndef TCM_ORCHESTRATOR_TIMELINE_H
#define TCM_ORCHESTRATOR_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/tcm.h"

/* Records T0 and its trigger if no T0 exists yet. Async-signal-safe. Returns
 * true when this call set it. */
bool tcm_timeline_begin(enum tcm_shutdown_trigger trigger, uint64_t now_ns);

uint64_t tcm_timeline_t0_ns(void);
void tcm_timeline_set_t1(uint64_t now_ns);
/* What the drain has released since T0, so far (the worker updates it with
 * every progress report, so that an exit in the middle of a pass still
 * reports it). */
void tcm_timeline_set_release(uint64_t bytes, uint64_t steps);
/* Once the worker's drain has begun, tcm_timeline_record_lock_maxima copies
 * core's since-T0 lock maxima (the longest hold and wait of any allocator
 * lock since the move to DRAINING) into the timeline. Neither allocates. */
void tcm_timeline_mark_drain_started(void);
bool tcm_timeline_has_drain_started(void);
void tcm_timeline_record_lock_maxima(void);

void tcm_timeline_read(struct tcm_shutdown_stats *out);

/* True for the first caller only: that one sends STOPPING=1 (the worker at
 * the start of the drain, or the exit hook when the worker never got there). */
bool tcm_timeline_claim_stopping_message(void);

/* The shutdown's course, for the exit report's plot (tcmctl stats --plot): what is resident and
 * what has been released, sampled by the worker with the progress reports of its drain, at
 * least min_gap_ns apart (the worker spreads TCM_TIMELINE_SAMPLES_MAX - 8 over the deadline,
 * so the drain's samples fit), and once at T1 (min_gap_ns 0). The first
 * TCM_TIMELINE_SAMPLES_MAX are kept. */
#define TCM_TIMELINE_SAMPLES_MAX 256
struct tcm_timeline_sample {
	uint64_t since_t0_ns;
	uint64_t resident_bytes;
	uint64_t released_bytes;   /* since T0 */
};
void tcm_timeline_add_sample(uint64_t now_ns, uint64_t released_bytes, uint64_t min_gap_ns);
/* Copies the samples taken so far into out (TCM_TIMELINE_SAMPLES_MAX entries); returns how many. */
size_t tcm_timeline_samples(struct tcm_timeline_sample *out);

#endif
