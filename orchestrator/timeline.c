/* orchestrator/timeline.c - see timeline.h. */
#include "timeline.h"

#include "../core/core.h"

#include <stdatomic.h>

static _Atomic uint64_t t0_ns;
static _Atomic uint32_t trigger;
static _Atomic uint64_t t1_ns;
static _Atomic uint64_t released_bytes;
static _Atomic uint64_t release_steps;
static _Atomic uint64_t lock_hold_ns_max;
static _Atomic uint64_t lock_wait_ns_max;
static atomic_bool has_claimed_stopping;

bool tcm_timeline_begin(enum tcm_shutdown_trigger why, uint64_t now_ns)
{
	uint64_t expected = 0;
	if (!atomic_compare_exchange_strong(&t0_ns, &expected, now_ns == 0 ? 1 : now_ns))
		return false;
	atomic_store(&trigger, (uint32_t)why);
	return true;
}

uint64_t tcm_timeline_t0_ns(void)
{
	return atomic_load(&t0_ns);
}

void tcm_timeline_set_t1(uint64_t now_ns)
{
	atomic_store(&t1_ns, now_ns);
}

void tcm_timeline_set_release(uint64_t bytes, uint64_t steps)
{
	atomic_store(&released_bytes, bytes);
	atomic_store(&release_steps, steps);
}

static atomic_bool has_drain_started;

void tcm_timeline_mark_drain_started(void)
{
	atomic_store(&has_drain_started, true);
}

bool tcm_timeline_has_drain_started(void)
{
	return atomic_load(&has_drain_started);
}

static uint64_t larger(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void tcm_timeline_record_lock_maxima(void)
{
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	atomic_store(&lock_hold_ns_max, larger(stats.page_heap_lock.hold_ns_max_since_t0,
					       stats.central_lock.hold_ns_max_since_t0));
	atomic_store(&lock_wait_ns_max, larger(stats.page_heap_lock.wait_ns_max_since_t0,
					       stats.central_lock.wait_ns_max_since_t0));
}

void tcm_timeline_read(struct tcm_shutdown_stats *out)
{
	out->trigger = atomic_load(&trigger);
	out->t0_ns = atomic_load(&t0_ns);
	out->t1_ns = atomic_load(&t1_ns);
	out->released_bytes = atomic_load(&released_bytes);
	out->release_steps = atomic_load(&release_steps);
	out->lock_hold_ns_max = atomic_load(&lock_hold_ns_max);
	out->lock_wait_ns_max = atomic_load(&lock_wait_ns_max);
}

bool tcm_timeline_claim_stopping_message(void)
{
	return !atomic_exchange(&has_claimed_stopping, true);
}

static struct tcm_timeline_sample samples[TCM_TIMELINE_SAMPLES_MAX];
static _Atomic size_t samples_reserved;   /* slots handed out; a slot is filled after */
static _Atomic size_t samples_filled;
static _Atomic uint64_t last_sample_ns;

void tcm_timeline_add_sample(uint64_t now_ns, uint64_t released, uint64_t min_gap_ns)
{
	uint64_t t0 = atomic_load(&t0_ns);
	uint64_t last = atomic_load(&last_sample_ns);
	if (t0 == 0 || (last != 0 && now_ns < last + min_gap_ns))
		return;
	atomic_store(&last_sample_ns, now_ns);
	size_t slot = atomic_fetch_add(&samples_reserved, 1);
	if (slot >= TCM_TIMELINE_SAMPLES_MAX)
		return;
	samples[slot] = (struct tcm_timeline_sample){
		.since_t0_ns = now_ns > t0 ? now_ns - t0 : 0,
		.resident_bytes = tcm_os_resident_bytes(),
		.released_bytes = released,
	};
	atomic_fetch_add(&samples_filled, 1);
}

size_t tcm_timeline_samples(struct tcm_timeline_sample *out)
{
	size_t count = atomic_load(&samples_filled);
	if (count > TCM_TIMELINE_SAMPLES_MAX)
		count = TCM_TIMELINE_SAMPLES_MAX;
	for (size_t i = 0; i < count; i++)
		out[i] = samples[i];
	return count;
}
