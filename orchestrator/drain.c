/* orchestrator/drain.c - see drain.h. Invariant: the deadline is checked before
 * every step, so a pass overruns the stop point by at most one step (one
 * madvise of chunk_bytes, or one stack entry). */
#include "drain.h"

static void maybe_report(const struct tcm_clock *clock, uint64_t interval_ns, uint64_t *next_report_ns,
			 tcm_drain_report_fn report, void *report_context, const struct tcm_drain_progress *progress)
{
	if (report == NULL)
		return;
	uint64_t now = tcm_clock_now_ns(clock);
	if (now < *next_report_ns)
		return;
	*next_report_ns = now + interval_ns;
	report(report_context, progress);
}

void tcm_drain_run(const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
		   const struct tcm_deadline *deadline, size_t chunk_bytes, uint64_t report_interval_ns,
		   tcm_drain_report_fn report, void *report_context, struct tcm_drain_progress *progress)
{
	*progress = (struct tcm_drain_progress){ .pending_at_start_bytes = steps->pending_bytes(steps->context) };
	uint64_t next_report_ns = 0;
	for (;;) {
		if (!tcm_deadline_may_continue(deadline, tcm_clock_now_ns(clock))) {
			progress->hit_stop_point = true;
			break;
		}
		size_t moved = steps->drain_step(steps->context);
		if (moved != 0) {
			progress->drained_objects += moved;
			continue;
		}
		size_t released = steps->release_step(steps->context, chunk_bytes);
		if (released == 0) {
			progress->is_finished = true;
			break;
		}
		progress->released_bytes += released;
		progress->release_steps++;
		maybe_report(clock, report_interval_ns, &next_report_ns, report, report_context, progress);
		clock->pause_ns(clock->context, 0);   /* yield between chunks */
	}
	if (report != NULL)
		report(report_context, progress);
}
