/* orchestrator/clock.c - the real clock: CLOCK_MONOTONIC, sched_yield and
 * nanosleep. Async-signal-safe reads (clock_gettime is). */
#define _GNU_SOURCE
#include "clock.h"

#include <sched.h>
#include <time.h>

static uint64_t monotonic_now_ns(void *context)
{
	(void)context;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * TCM_NS_PER_S + (uint64_t)now.tv_nsec;
}

static void monotonic_pause_ns(void *context, uint64_t ns)
{
	(void)context;
	if (ns == 0) {
		sched_yield();
		return;
	}
	struct timespec pause = { .tv_sec = (time_t)(ns / TCM_NS_PER_S), .tv_nsec = (long)(ns % TCM_NS_PER_S) };
	while (nanosleep(&pause, &pause) != 0)
		;
}

const struct tcm_clock tcm_clock_monotonic = {
	.now_ns = monotonic_now_ns,
	.pause_ns = monotonic_pause_ns,
	.context = NULL,
};
