/* orchestrator/deadline.c - see deadline.h. */
#include "deadline.h"

#include "clock.h"

void tcm_deadline_start(struct tcm_deadline *deadline, uint64_t t0_ns, uint64_t budget_ms, uint64_t margin_ms)
{
	deadline->t0_ns = t0_ns;
	deadline->deadline_ns = t0_ns + budget_ms * TCM_NS_PER_MS;
	deadline->stop_ns = margin_ms >= budget_ms ? t0_ns : deadline->deadline_ns - margin_ms * TCM_NS_PER_MS;
}

bool tcm_deadline_may_continue(const struct tcm_deadline *deadline, uint64_t now_ns)
{
	return now_ns < deadline->stop_ns;
}

uint64_t tcm_deadline_left_us(const struct tcm_deadline *deadline, uint64_t now_ns)
{
	return now_ns >= deadline->deadline_ns ? 0 : (deadline->deadline_ns - now_ns) / TCM_NS_PER_US;
}
