/* core/stats.c - the allocator's counters gathered into struct tcm_stats and,
 * class by class, struct tcm_size_class_stats (the reports drawn from them are
 * orchestrator/render.c's). Reads only atomics and
 * racy counters: never takes an allocator lock, never allocates. */
#include "core.h"

#include "central.h"
#include "lock.h"
#include "metadata.h"
#include "os.h"
#include "page_heap.h"
#include "size_class.h"
#include "thread_cache.h"

static atomic_bool has_t0_window;   /* the shutdown has begun: since-T0 maxima mean something */

static void raise_to(uint64_t *max, const _Atomic uint64_t *ticks)
{
	uint64_t ns = tcm_os_ticks_to_ns(atomic_load_explicit(ticks, memory_order_relaxed));
	if (ns > *max)
		*max = ns;
}

static void read_lock(struct tcm_lock *lock, struct tcm_lock_stats *out)
{
	out->acquisitions += atomic_load_explicit(&lock->acquisitions, memory_order_relaxed);
	out->contended += atomic_load_explicit(&lock->contended, memory_order_relaxed);
	out->sleeps += atomic_load_explicit(&lock->sleeps, memory_order_relaxed);
	raise_to(&out->hold_ns_max, &lock->hold_ticks_max);
	raise_to(&out->wait_ns_max, &lock->wait_ticks_max);
	if (atomic_load_explicit(&has_t0_window, memory_order_acquire)) {
		raise_to(&out->hold_ns_max_since_t0, &lock->hold_ticks_max_since_t0);
		raise_to(&out->wait_ns_max_since_t0, &lock->wait_ticks_max_since_t0);
	}
}

void tcm_core_stats(struct tcm_stats *out)
{
	*out = (struct tcm_stats){0};
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	out->mapped_bytes = tcm_os_mapped_bytes();
	out->page_heap_free_bytes = heap.free_committed_bytes;
	out->page_heap_released_bytes = heap.free_released_bytes;
	out->central_cached_bytes = tcm_central_cached_bytes();
	out->thread_cached_bytes = tcm_thread_cache_total_bytes();
	out->large_allocated_bytes = tcm_alloc_large_allocated_bytes();
	uint64_t small_span_bytes = heap.in_use_bytes - out->large_allocated_bytes;
	uint64_t cached = out->central_cached_bytes + out->thread_cached_bytes;
	out->allocated_bytes = out->large_allocated_bytes + (small_span_bytes > cached ? small_span_bytes - cached : 0);
	out->metadata_bytes = tcm_metadata_bytes();
	tcm_release_totals(&out->released_total_bytes, &out->release_calls);
	out->threads_live = tcm_thread_cache_live_threads();
	read_lock(tcm_page_heap_lock_object(), &out->page_heap_lock);
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		read_lock(tcm_central_lock_object(size_class), &out->central_lock);
}

size_t tcm_core_size_class_stats(struct tcm_size_class_stats *out, size_t capacity)
{
	tcm_core_bootstrap();   /* the class table */
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT && size_class <= capacity; size_class++) {
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		struct tcm_central_class_stats central;
		tcm_central_class_stats(size_class, &central);
		uint64_t thread_cached = tcm_thread_cache_class_objects(size_class);
		uint64_t free_outside_spans = central.stack_objects + thread_cached;
		out[size_class - 1] = (struct tcm_size_class_stats){
			.object_bytes = info->object_bytes,
			.span_bytes = (uint64_t)info->span_pages * TCM_PAGE_BYTES,
			.spans = central.spans,
			.in_use_objects = central.objects_out_of_spans > free_outside_spans
				? central.objects_out_of_spans - free_outside_spans : 0,
			.thread_cache_objects = thread_cached,
			.central_objects = central.stack_objects,
			.span_free_objects = central.span_free_objects,
		};
	}
	return TCM_SIZE_CLASS_COUNT - 1;
}

void tcm_core_lock_stats_start_t0_window(void)
{
	tcm_lock_start_t0_window(tcm_page_heap_lock_object());
	tcm_lock_start_t0_window(tcm_metadata_lock_object());
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		tcm_lock_start_t0_window(tcm_central_lock_object(size_class));
	atomic_store_explicit(&has_t0_window, true, memory_order_release);
}

