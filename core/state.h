/* core/state.h - the allocator's life stage, NORMAL -> DRAINING -> EXITING, as
 * one atomic that only moves forward.
 *
 *   NORMAL    serve; background release at the configured rate (if any).
 *   DRAINING  the service is shutting down (SIGTERM, tcm_shutdown_begin):
 *             thread caches stop growing and hand their surplus back on their
 *             next free; the release worker drains and releases at full speed.
 *   EXITING   exit() has begun: release stops (the kernel frees the rest faster
 *             than madvise would) and a dying thread's cache is dropped in O(1).
 * Who moves it: orchestrator/ only, through tcm_state_advance. Readers: the
 * slow paths of core/, and the release worker. */
#ifndef TCM_CORE_STATE_H
#define TCM_CORE_STATE_H

#include <stdatomic.h>
#include <stdbool.h>

enum tcm_state {
	TCM_STATE_NORMAL = 0,
	TCM_STATE_DRAINING,
	TCM_STATE_EXITING,
};

extern _Atomic int tcm_state_value;

static inline enum tcm_state tcm_state_get(void)
{
	return (enum tcm_state)atomic_load_explicit(&tcm_state_value, memory_order_acquire);
}

/* Moves to to_state if it is ahead of the current state. Returns true when
 * this call made the move (exactly one caller wins each step). Async-signal-
 * safe: a compare-and-swap loop, nothing else. */
bool tcm_state_advance(enum tcm_state to_state);

#endif
