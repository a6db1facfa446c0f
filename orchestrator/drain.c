/* orchestrator/drain.c - see drain.h. Invariants: the deadline is checked before
 * every step, so a pass overruns the stop point by at most one step (one
 * madvise of chunk_bytes, or one stack entry); the steps since the last pause
 * never take more than TCM_DRAIN_SLICE_NS plus one step, and no pause or storm watch
 * reaches past the stop point. */
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

/* Whether inflow_bytes arriving in elapsed_ns is a storm (see drain.h). */
static bool is_storm(const struct tcm_drain_pace *pace, uint64_t inflow_bytes, uint64_t elapsed_ns)
{
	return pace->storm_bytes_per_ms != 0 && elapsed_ns != 0 &&
	       inflow_bytes * TCM_NS_PER_MS >= pace->storm_bytes_per_ms * elapsed_ns;
}

/* What the service has freed so far, as far as the drain can see it: what is
 * pending plus what anyone has released. Its growth is the inflow. */
static uint64_t freed_so_far(const struct tcm_drain_steps *steps)
{
	return steps->pending_bytes(steps->context) + steps->released_bytes(steps->context);
}

/* Asks the freeing threads for help once no storm has been seen for
 * TCM_DRAIN_HELP_AFTER_QUIET_NS (quiet_since_ns: the last storm sample, or the
 * pass's start), and not before. */
static void ask_for_help_if_quiet(const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
				  const struct tcm_drain_pace *pace, uint64_t quiet_since_ns)
{
	bool is_quiet = tcm_clock_now_ns(clock) - quiet_since_ns >= TCM_DRAIN_HELP_AFTER_QUIET_NS;
	steps->ask_for_help(steps->context, is_quiet ? pace->chunk_bytes : 0);
}

/* Watches the inflow TCM_DRAIN_STORM_SAMPLE_NS at a time, with no help from
 * the freeing threads, until a sample is no storm or the stop point comes;
 * *quiet_since_ns moves to the end of each storm sample. */
static void wait_out_storm(const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
			   const struct tcm_deadline *deadline, const struct tcm_drain_pace *pace,
			   struct tcm_drain_progress *progress, uint64_t *quiet_since_ns)
{
	steps->ask_for_help(steps->context, 0);
	while (pace->storm_bytes_per_ms != 0) {
		uint64_t start_ns = tcm_clock_now_ns(clock);
		if (!tcm_deadline_may_continue(deadline, start_ns))
			return;
		uint64_t before = freed_so_far(steps);
		uint64_t left_ns = deadline->stop_ns - start_ns;
		clock->pause_ns(clock->context, left_ns < TCM_DRAIN_STORM_SAMPLE_NS ? left_ns : TCM_DRAIN_STORM_SAMPLE_NS);
		uint64_t after = freed_so_far(steps);
		uint64_t end_ns = tcm_clock_now_ns(clock);
		progress->storm_wait_ns += end_ns - start_ns;
		if (after <= before || !is_storm(pace, after - before, end_ns - start_ns))
			break;
		*quiet_since_ns = end_ns;
	}
	ask_for_help_if_quiet(steps, clock, pace, *quiet_since_ns);
}

/* The pass's current slice: about TCM_DRAIN_SLICE_NS of steps (wall time,
 * from the vDSO clock), then a pause for the CPU time they used (one read of
 * the thread's CPU clock per slice: on a busy host time spent preempted is no
 * work, and the CPU clock is a system call, too dear to read per step), then
 * a look at the inflow since the last slice. */
struct slice {
	uint64_t stepped_ns;        /* wall time in steps so far */
	uint64_t work_start_ns;     /* the thread's CPU clock when the slice began */
	uint64_t mark_ns;           /* when the inflow was last measured... */
	uint64_t mark_freed;        /* ...and what had been freed by then (freed_so_far) */
	uint64_t quiet_since_ns;    /* the end of the last storm seen, or the pass's start */
};

static void begin_slice(struct slice *slice, const struct tcm_drain_steps *steps, const struct tcm_clock *clock)
{
	slice->stepped_ns = 0;
	slice->work_start_ns = tcm_clock_work_ns(clock);
	slice->mark_ns = tcm_clock_now_ns(clock);
	slice->mark_freed = freed_so_far(steps);
}

/* Ends the slice if it is long enough: pauses so that its work is at most
 * duty_percent of its time, never past the stop point, then waits out a
 * storm if the inflow since the last slice was one. */
static void maybe_end_slice(struct slice *slice, const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
			    const struct tcm_deadline *deadline, const struct tcm_drain_pace *pace,
			    struct tcm_drain_progress *progress)
{
	if (slice->stepped_ns < TCM_DRAIN_SLICE_NS)
		return;
	unsigned duty_percent = pace->duty_percent == 0 ? 1 : pace->duty_percent;
	if (duty_percent < 100) {
		uint64_t work_ns = tcm_clock_work_ns(clock) - slice->work_start_ns;
		uint64_t pause_ns = work_ns * (100 - duty_percent) / duty_percent;
		uint64_t now = tcm_clock_now_ns(clock);
		uint64_t left_ns = deadline->stop_ns > now ? deadline->stop_ns - now : 0;
		clock->pause_ns(clock->context, pause_ns < left_ns ? pause_ns : left_ns);
	}
	uint64_t freed = freed_so_far(steps);
	uint64_t now = tcm_clock_now_ns(clock);
	if (freed > slice->mark_freed && is_storm(pace, freed - slice->mark_freed, now - slice->mark_ns)) {
		slice->quiet_since_ns = now;
		wait_out_storm(steps, clock, deadline, pace, progress, &slice->quiet_since_ns);
	} else {
		ask_for_help_if_quiet(steps, clock, pace, slice->quiet_since_ns);
	}
	begin_slice(slice, steps, clock);
}

void tcm_drain_run(const struct tcm_drain_steps *steps, const struct tcm_clock *clock,
		   const struct tcm_deadline *deadline, const struct tcm_drain_pace *pace,
		   tcm_drain_report_fn report, void *report_context, struct tcm_drain_progress *progress)
{
	*progress = (struct tcm_drain_progress){ .pending_at_start_bytes = steps->pending_bytes(steps->context) };
	uint64_t next_report_ns = 0;
	struct slice slice = { .quiet_since_ns = tcm_clock_now_ns(clock) };
	wait_out_storm(steps, clock, deadline, pace, progress, &slice.quiet_since_ns);
	begin_slice(&slice, steps, clock);
	for (;;) {
		uint64_t step_start_ns = tcm_clock_now_ns(clock);
		if (!tcm_deadline_may_continue(deadline, step_start_ns)) {
			progress->hit_stop_point = true;
			break;
		}
		size_t moved = steps->drain_step(steps->context);
		if (moved != 0) {
			progress->drained_objects += moved;
			slice.stepped_ns += tcm_clock_now_ns(clock) - step_start_ns;
			maybe_end_slice(&slice, steps, clock, deadline, pace, progress);
			continue;
		}
		size_t released = steps->release_step(steps->context, pace->chunk_bytes);
		if (released == 0) {
			progress->is_finished = true;
			break;
		}
		progress->released_bytes += released;
		progress->release_steps++;
		maybe_report(clock, pace->report_interval_ns, &next_report_ns, report, report_context, progress);
		slice.stepped_ns += tcm_clock_now_ns(clock) - step_start_ns;
		if (slice.stepped_ns < TCM_DRAIN_SLICE_NS)
			clock->pause_ns(clock->context, 0);   /* yield between chunks */
		else
			maybe_end_slice(&slice, steps, clock, deadline, pace, progress);
	}
	steps->ask_for_help(steps->context, 0);
	if (report != NULL)
		report(report_context, progress);
}
