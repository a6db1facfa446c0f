/* orchestrator/clock.h - the time source of the orchestrator, injectable so that
 * deadline and drain logic run in tests on a fake clock (no sleeping tests).
 * Times are CLOCK_MONOTONIC nanoseconds. */
#ifndef TCM_ORCHESTRATOR_CLOCK_H
#define TCM_ORCHESTRATOR_CLOCK_H

#include <stdint.h>

#define TCM_NS_PER_US 1000ull
#define TCM_NS_PER_MS 1000000ull
#define TCM_NS_PER_S  1000000000ull

struct tcm_clock {
	uint64_t (*now_ns)(void *context);
	/* Gives the CPU away for about ns (the real clock: sched_yield for 0,
	 * else nanosleep). A fake clock advances its time instead. */
	void (*pause_ns)(void *context, uint64_t ns);
	/* CPU time the calling thread has used (the real clock: its CPU clock, so
	 * that time spent preempted is no work); a fake clock may return now_ns. */
	uint64_t (*work_ns)(void *context);
	void *context;
};

/* CLOCK_MONOTONIC and real sleeping. */
extern const struct tcm_clock tcm_clock_monotonic;

static inline uint64_t tcm_clock_now_ns(const struct tcm_clock *clock)
{
	return clock->now_ns(clock->context);
}

static inline uint64_t tcm_clock_work_ns(const struct tcm_clock *clock)
{
	return clock->work_ns(clock->context);
}

#endif
