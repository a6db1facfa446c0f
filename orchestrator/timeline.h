/* orchestrator/timeline.h - the shutdown timeline (T0, T1, what the drain
 * released, lock maxima during it), kept for tcm_stats and the exit report.
 *
 * Invariants: T0 is set once, by whichever trigger comes first, with a
 * compare-and-swap (so the signal handler may set it); the other fields are
 * written by the worker or the exit hook and read racily by stats. */
#ifndef TCM_ORCHESTRATOR_TIMELINE_H
#define TCM_ORCHESTRATOR_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../shim/tcm.h"

/* Records T0 and its trigger if no T0 exists yet. Async-signal-safe. Returns
 * true when this call set it. */
bool tcm_timeline_begin(enum tcm_shutdown_trigger trigger, uint64_t now_ns);

uint64_t tcm_timeline_t0_ns(void);
void tcm_timeline_set_t1(uint64_t now_ns);
void tcm_timeline_add_release(uint64_t bytes, uint64_t steps);
void tcm_timeline_set_lock_maxima(uint64_t hold_ns_max, uint64_t wait_ns_max);

void tcm_timeline_read(struct tcm_shutdown_stats *out);

#endif
