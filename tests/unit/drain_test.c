/* tests/unit/drain_test.c - the shutdown budget and the drain loop on a fake
 * clock (no sleeping, no timing asserts): the stop point is deadline - margin;
 * a drain whose work is larger than the budget stops there, overrunning by at
 * most one step; work that runs out first finishes early; stack draining comes
 * before releasing; progress is reported at its interval and at the end; the
 * pass keeps to its duty cycle and waits out a storm of frees. */
#include "unit.h"

#include "../../orchestrator/clock.h"
#include "../../orchestrator/deadline.h"
#include "../../orchestrator/drain.h"

/* ---- fake clock and steps --------------------------------------------------- */

struct fake {
	uint64_t now_ns;
	uint64_t step_cost_ns;        /* time one release step takes */
	size_t   drain_entries_left;  /* stack entries still to drain */
	uint64_t release_left_bytes;  /* UINT64_MAX: endless work */
	uint64_t largest_chunk_seen;
	uint64_t releases_after_stop; /* steps started at or after the stop point */
	uint64_t stop_ns;
	uint64_t inflow_bytes_per_ms; /* the service's frees, until inflow_end_ns */
	uint64_t inflow_end_ns;
	uint64_t inflow_start_ns;
	uint64_t inflow_added_bytes;  /* inflow already in release_left_bytes */
	uint64_t inflow_period_ns;    /* 0: steady; else frees only in each period's first half */
	uint64_t first_release_ns;    /* 0: none yet */
	unsigned reports;
	bool     released_before_drained;
	uint64_t released_total_bytes; /* by the pass and the helpers */
	size_t   help_chunk_bytes;    /* what the pass last asked of the freeing threads */
	unsigned help_asks;           /* asks with a chunk */
	size_t   help_chunk_asked;    /* the chunk of the last of them */
	uint64_t first_help_ns;       /* when help was first asked for; 0: never */
	uint64_t helper_bytes_per_ms; /* what helping threads release while the pass pauses */
	uint64_t help_in_storm_ns;    /* pause time with help asked for while the inflow was on */
};

static uint64_t fake_now(void *context) { return ((struct fake *)context)->now_ns; }

static size_t fake_drain_step(void *context)
{
	struct fake *fake = context;
	if (fake->drain_entries_left == 0)
		return 0;
	fake->drain_entries_left--;
	fake->now_ns += 1000;   /* 1 us per entry */
	return 32;
}

/* How long the service has been freeing by until (a bursty one half of each period). */
static uint64_t inflow_time_ns(const struct fake *fake, uint64_t until)
{
	uint64_t elapsed_ns = until - fake->inflow_start_ns;
	if (fake->inflow_period_ns == 0)
		return elapsed_ns;
	uint64_t half_ns = fake->inflow_period_ns / 2, into_period_ns = elapsed_ns % fake->inflow_period_ns;
	return elapsed_ns / fake->inflow_period_ns * half_ns + (into_period_ns < half_ns ? into_period_ns : half_ns);
}

/* Moves what the service freed up to now into the work left. */
static void accrue_inflow(struct fake *fake)
{
	uint64_t until = fake->now_ns < fake->inflow_end_ns ? fake->now_ns : fake->inflow_end_ns;
	if (until <= fake->inflow_start_ns)
		return;
	uint64_t total = inflow_time_ns(fake, until) * fake->inflow_bytes_per_ms / TCM_NS_PER_MS;
	fake->release_left_bytes += total - fake->inflow_added_bytes;
	fake->inflow_added_bytes = total;
}

/* Time passes; while help is asked for, the helping threads release what has
 * been freed at helper_bytes_per_ms. */
static void fake_pause(void *context, uint64_t ns)
{
	struct fake *fake = context;
	uint64_t start_ns = fake->now_ns;
	fake->now_ns += ns;
	accrue_inflow(fake);
	if (fake->help_chunk_bytes == 0)
		return;
	uint64_t storm_start = start_ns > fake->inflow_start_ns ? start_ns : fake->inflow_start_ns;
	uint64_t storm_end = fake->now_ns < fake->inflow_end_ns ? fake->now_ns : fake->inflow_end_ns;
	if (storm_end > storm_start)
		fake->help_in_storm_ns += storm_end - storm_start;
	if (fake->release_left_bytes == UINT64_MAX)
		return;
	uint64_t bytes = fake->helper_bytes_per_ms * ns / TCM_NS_PER_MS;
	bytes = bytes < fake->release_left_bytes ? bytes : fake->release_left_bytes;
	fake->release_left_bytes -= bytes;
	fake->released_total_bytes += bytes;
}

static size_t fake_release_step(void *context, size_t chunk_bytes)
{
	struct fake *fake = context;
	accrue_inflow(fake);
	if (fake->first_release_ns == 0 && fake->release_left_bytes != 0)
		fake->first_release_ns = fake->now_ns;
	if (fake->drain_entries_left != 0)
		fake->released_before_drained = true;
	if (fake->now_ns >= fake->stop_ns)
		fake->releases_after_stop++;
	if (chunk_bytes > fake->largest_chunk_seen)
		fake->largest_chunk_seen = chunk_bytes;
	uint64_t bytes = fake->release_left_bytes < chunk_bytes ? fake->release_left_bytes : chunk_bytes;
	if (fake->release_left_bytes != UINT64_MAX)
		fake->release_left_bytes -= bytes;
	fake->released_total_bytes += bytes;
	fake->now_ns += fake->step_cost_ns;
	return (size_t)bytes;
}

static uint64_t fake_pending(void *context)
{
	struct fake *fake = context;
	accrue_inflow(fake);
	return fake->release_left_bytes;
}

static uint64_t fake_released(void *context)
{
	return ((struct fake *)context)->released_total_bytes;
}

static void fake_ask_for_help(void *context, size_t chunk_bytes)
{
	struct fake *fake = context;
	fake->help_chunk_bytes = chunk_bytes;
	if (chunk_bytes != 0) {
		fake->help_asks++;
		fake->help_chunk_asked = chunk_bytes;
		if (fake->first_help_ns == 0)
			fake->first_help_ns = fake->now_ns;
	}
}

static void count_report(void *context, const struct tcm_drain_progress *progress)
{
	(void)progress;
	((struct fake *)context)->reports++;
}

static void run_paced(struct fake *fake, uint64_t budget_ms, uint64_t margin_ms, size_t chunk_bytes,
		      unsigned duty_percent, uint64_t storm_bytes_per_ms, struct tcm_drain_progress *progress)
{
	struct tcm_clock clock = { .now_ns = fake_now, .pause_ns = fake_pause, .work_ns = fake_now, .context = fake };
	struct tcm_drain_steps steps = { fake_drain_step, fake_release_step, fake_pending, fake_released,
					 fake_ask_for_help, fake };
	struct tcm_deadline deadline;
	tcm_deadline_start(&deadline, fake->now_ns, budget_ms, margin_ms);
	fake->stop_ns = deadline.stop_ns;
	struct tcm_drain_pace pace = { .chunk_bytes = chunk_bytes, .duty_percent = duty_percent,
				       .storm_bytes_per_ms = storm_bytes_per_ms, .report_interval_ns = 100 * TCM_NS_PER_MS };
	tcm_drain_run(&steps, &clock, &deadline, &pace, count_report, fake, progress);
}

/* A pass that may work all of its time. */
static void run(struct fake *fake, uint64_t budget_ms, uint64_t margin_ms, size_t chunk_bytes,
		struct tcm_drain_progress *progress)
{
	run_paced(fake, budget_ms, margin_ms, chunk_bytes, 100, 0, progress);
}

/* ---- tests ------------------------------------------------------------------ */

static void deadline_stops_at_margin(void **state)
{
	(void)state;
	struct tcm_deadline deadline;
	tcm_deadline_start(&deadline, 5 * TCM_NS_PER_S, 1000, 50);
	assert_true(tcm_deadline_may_continue(&deadline, 5 * TCM_NS_PER_S + 949 * TCM_NS_PER_MS));
	assert_false(tcm_deadline_may_continue(&deadline, 5 * TCM_NS_PER_S + 950 * TCM_NS_PER_MS));
	assert_int_equal(tcm_deadline_left_us(&deadline, 5 * TCM_NS_PER_S + 950 * TCM_NS_PER_MS), 50 * 1000);
	assert_int_equal(tcm_deadline_left_us(&deadline, 7 * TCM_NS_PER_S), 0);
	/* A margin as large as the budget leaves no time for release work. */
	tcm_deadline_start(&deadline, 0, 100, 100);
	assert_false(tcm_deadline_may_continue(&deadline, 0));
}

static void work_larger_than_budget_stops_at_stop_point(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .release_left_bytes = UINT64_MAX };
	struct tcm_drain_progress progress;
	run(&fake, 1000, 50, 2 << 20, &progress);
	assert_true(progress.hit_stop_point);
	assert_false(progress.is_finished);
	/* 950 ms of 1 ms steps: exactly 950 steps, none started past the stop point. */
	assert_int_equal(progress.release_steps, 950);
	assert_int_equal(fake.releases_after_stop, 0);
	assert_true(fake.now_ns >= fake.stop_ns && fake.now_ns < fake.stop_ns + TCM_NS_PER_MS);
	assert_int_equal(progress.released_bytes, 950ull * (2 << 20));
	assert_int_equal(fake.largest_chunk_seen, 2 << 20);
	/* Reports: about one per 100 ms of steps, plus the final one. */
	assert_true(fake.reports >= 9 && fake.reports <= 11);
}

static void work_smaller_than_budget_finishes_early(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .release_left_bytes = (uint64_t)5 << 20 };
	struct tcm_drain_progress progress;
	run(&fake, 1000, 50, 2 << 20, &progress);
	assert_true(progress.is_finished);
	assert_false(progress.hit_stop_point);
	assert_int_equal(progress.released_bytes, (uint64_t)5 << 20);
	assert_int_equal(progress.release_steps, 3);   /* 2 + 2 + 1 MiB */
	assert_int_equal(progress.pending_at_start_bytes, (uint64_t)5 << 20);
	assert_true(fake.reports >= 1);
}

static void stacks_drain_before_release(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .drain_entries_left = 40,
			     .release_left_bytes = (uint64_t)4 << 20 };
	struct tcm_drain_progress progress;
	run(&fake, 1000, 50, 2 << 20, &progress);
	assert_false(fake.released_before_drained);
	assert_int_equal(progress.drained_objects, 40 * 32);
	assert_int_equal(progress.released_bytes, (uint64_t)4 << 20);
	assert_true(progress.is_finished);
}

static void no_budget_does_no_work(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .drain_entries_left = 3,
			     .release_left_bytes = UINT64_MAX };
	struct tcm_drain_progress progress;
	run(&fake, 100, 100, 2 << 20, &progress);
	assert_true(progress.hit_stop_point);
	assert_int_equal(progress.release_steps, 0);
	assert_int_equal(progress.drained_objects, 0);
}

/* At 25%, 1 ms release steps are each followed by a 3 ms pause: a quarter of
 * the steps fit before the stop point, and the last pause ends at it. */
static void duty_cycle_pauses_between_slices(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .release_left_bytes = UINT64_MAX };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 2 << 20, 25, 0, &progress);
	assert_true(progress.hit_stop_point);
	uint64_t work_ns = progress.release_steps * fake.step_cost_ns;
	uint64_t elapsed_ns = fake.now_ns - 1;
	assert_true(work_ns * 100 <= elapsed_ns * 25 + TCM_DRAIN_SLICE_NS * 100);
	assert_true(progress.release_steps >= 237 && progress.release_steps <= 238);
	assert_int_equal(fake.releases_after_stop, 0);
	assert_true(fake.now_ns >= fake.stop_ns && fake.now_ns <= fake.stop_ns + TCM_NS_PER_MS);
}

/* Cheap steps add up: 5000 stack entries of 1 us each are 5 ms of work, paid
 * for at 50% by as much pause, a slice at a time. */
static void duty_cycle_counts_many_small_steps(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = 0, .drain_entries_left = 5000, .release_left_bytes = 0 };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 2 << 20, 50, 0, &progress);
	assert_true(progress.is_finished);
	assert_int_equal(progress.drained_objects, 5000 * 32);
	uint64_t elapsed_ns = fake.now_ns - 1;
	assert_true(elapsed_ns >= 10 * TCM_NS_PER_MS - TCM_DRAIN_SLICE_NS && elapsed_ns <= 10 * TCM_NS_PER_MS);
}

/* A storm of frees (4 MiB per ms for 200 ms, against a 1 MiB per ms storm
 * rate) is watched, not competed with: no release before it ends, all of it
 * released after. */
static void storm_of_frees_is_waited_out(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = 100 * TCM_NS_PER_US, .inflow_bytes_per_ms = 4 << 20,
			     .inflow_start_ns = 1, .inflow_end_ns = 200 * TCM_NS_PER_MS + 1 };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 2 << 20, 100, 1 << 20, &progress);
	assert_true(progress.is_finished);
	assert_true(fake.first_release_ns >= 200 * TCM_NS_PER_MS);
	assert_true(progress.storm_wait_ns >= 195 * TCM_NS_PER_MS);
	assert_int_equal(progress.released_bytes, (uint64_t)800 << 20);
	/* Nobody helped in the storm, and the pass stopped asking when it ended. */
	assert_int_equal(fake.help_in_storm_ns, 0);
	assert_int_equal(fake.help_chunk_bytes, 0);
}

/* With no storm the pass asks the freeing threads for help, with its own
 * chunk, once it has seen TCM_DRAIN_HELP_AFTER_QUIET_NS without one, and
 * stops asking when it ends. */
static void help_is_asked_for_after_a_quiet_spell(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .release_left_bytes = UINT64_MAX };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 1 << 20, 50, 1 << 20, &progress);
	assert_true(progress.hit_stop_point);
	assert_true(fake.first_help_ns >= TCM_DRAIN_HELP_AFTER_QUIET_NS + 1);
	assert_true(fake.first_help_ns <= TCM_DRAIN_HELP_AFTER_QUIET_NS + 5 * TCM_NS_PER_MS);
	assert_int_equal(fake.help_chunk_asked, 1 << 20);
	assert_int_equal(fake.help_chunk_bytes, 0);
}

/* A storm on a busy host: the freeing threads are off the CPU half of the
 * time, 10 ms at a stretch, so some looks at the inflow see none. Help is
 * asked for only after a quiet spell longer than such a gap: never while the
 * storm lasts. */
static void bursty_storm_gets_no_help(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = 100 * TCM_NS_PER_US, .inflow_bytes_per_ms = 8 << 20,
			     .inflow_period_ns = 20 * TCM_NS_PER_MS, .inflow_start_ns = 1,
			     .inflow_end_ns = 300 * TCM_NS_PER_MS + 1 };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 2 << 20, 50, 1 << 20, &progress);
	assert_int_equal(fake.help_in_storm_ns, 0);
	assert_true(progress.storm_wait_ns > 0);
	assert_int_equal(fake.help_chunk_bytes, 0);
}

/* A storm that begins while the pass runs and freeing threads help it: the
 * helpers release 8 MiB per ms of its pauses, as much as the storm frees over
 * its half-duty cycle, so what is pending stays level. The inflow is measured
 * net of everyone's releases, so the pass still sees the storm at its next
 * slice end and stops asking for help until it is over. */
static void storm_is_seen_through_helpers_releases(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = TCM_NS_PER_MS, .release_left_bytes = (uint64_t)400 << 20,
			     .helper_bytes_per_ms = 8 << 20, .inflow_bytes_per_ms = 4 << 20,
			     .inflow_start_ns = 100 * TCM_NS_PER_MS, .inflow_end_ns = 300 * TCM_NS_PER_MS };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 2 << 20, 50, 1 << 20, &progress);
	assert_true(fake.first_help_ns != 0 && fake.first_help_ns < 100 * TCM_NS_PER_MS);   /* helping when it began */
	assert_true(fake.help_in_storm_ns <= 2 * TCM_NS_PER_MS);
	assert_true(progress.storm_wait_ns >= 190 * TCM_NS_PER_MS);
	assert_true(progress.is_finished);
	assert_int_equal(fake.help_chunk_bytes, 0);
}

/* Frees at half the storm rate are no storm: the pass starts after one look. */
static void slow_inflow_is_no_storm(void **state)
{
	(void)state;
	struct fake fake = { .now_ns = 1, .step_cost_ns = 100 * TCM_NS_PER_US, .inflow_bytes_per_ms = 512 << 10,
			     .inflow_start_ns = 1, .inflow_end_ns = 200 * TCM_NS_PER_MS + 1 };
	struct tcm_drain_progress progress;
	run_paced(&fake, 1000, 50, 2 << 20, 100, 1 << 20, &progress);
	assert_true(fake.first_release_ns != 0 && fake.first_release_ns <= TCM_DRAIN_STORM_SAMPLE_NS + 1);
	assert_true(progress.storm_wait_ns <= TCM_DRAIN_STORM_SAMPLE_NS);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deadline_stops_at_margin),
		cmocka_unit_test(work_larger_than_budget_stops_at_stop_point),
		cmocka_unit_test(work_smaller_than_budget_finishes_early),
		cmocka_unit_test(stacks_drain_before_release),
		cmocka_unit_test(no_budget_does_no_work),
		cmocka_unit_test(duty_cycle_pauses_between_slices),
		cmocka_unit_test(duty_cycle_counts_many_small_steps),
		cmocka_unit_test(storm_of_frees_is_waited_out),
		cmocka_unit_test(slow_inflow_is_no_storm),
		cmocka_unit_test(storm_is_seen_through_helpers_releases),
		cmocka_unit_test(help_is_asked_for_after_a_quiet_spell),
		cmocka_unit_test(bursty_storm_gets_no_help),
	};
	return unit_main(argc, argv, "drain", tests, sizeof(tests) / sizeof(tests[0]));
}
