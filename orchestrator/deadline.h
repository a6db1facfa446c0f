/* orchestrator/deadline.h - the shutdown budget as pure arithmetic on times
 * (no clock reads here): T0, the deadline the operator set, and the point
 * deadline - margin where release work stops.
 *
 * Invariants: t0_ns <= stop_ns <= deadline_ns; all functions are pure and
 * async-signal-safe. */
#ifndef TCM_ORCHESTRATOR_DEADLINE_H
#define TCM_ORCHESTRATOR_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

struct tcm_deadline {
	uint64_t t0_ns;        /* shutdown began (SIGTERM, tcm_shutdown_begin, exit) */
	uint64_t deadline_ns;  /* t0 + exit.deadline_ms: the service manager's limit */
	uint64_t stop_ns;      /* deadline - exit.margin_ms: release work stops here */
};

/* margin_ms >= budget_ms stops at once (stop_ns = t0_ns). */
void tcm_deadline_start(struct tcm_deadline *deadline, uint64_t t0_ns, uint64_t budget_ms, uint64_t margin_ms);

/* True while now is before the stop point. */
bool tcm_deadline_may_continue(const struct tcm_deadline *deadline, uint64_t now_ns);

/* Microseconds from now to the deadline; 0 once it has passed. */
uint64_t tcm_deadline_left_us(const struct tcm_deadline *deadline, uint64_t now_ns);

#endif
