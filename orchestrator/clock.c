/* orchestrator/clock.c - the real clock: core/os.c's CLOCK_MONOTONIC, yield and
 * sleep, and the thread's CPU clock. Async-signal-safe reads (tcm_os_now_ns
 * and tcm_os_thread_cpu_ns are). */
#include "clock.h"

#include "../core/core.h"

static uint64_t monotonic_now_ns(void *context)
{
	(void)context;
	return tcm_os_now_ns();
}

static void monotonic_pause_ns(void *context, uint64_t ns)
{
	(void)context;
	if (ns == 0)
		tcm_os_yield();
	else
		tcm_os_sleep_ns(ns);
}

static uint64_t thread_work_ns(void *context)
{
	(void)context;
	return tcm_os_thread_cpu_ns();
}

const struct tcm_clock tcm_clock_monotonic = {
	.now_ns = monotonic_now_ns,
	.pause_ns = monotonic_pause_ns,
	.work_ns = thread_work_ns,
	.context = NULL,
};
