/* core/release.c - the drain and release steps (release.h),
 * tcm_core_release_free_memory built from them, the help of freeing threads,
 * and what the resident-set policy (resident.h) says to give back before a
 * span is faulted in.
 *
 * Invariants: a drain step pops at most one stack entry and returns it in
 * bounded lock holds (core/central.c); a release step is one madvise of at most
 * its chunk (raised to one kernel page) with no lock held (core/page_heap.c),
 * or, when the page heap has no free committed span with a whole kernel page
 * left, the free pages inside partly used spans (core/inside_release.c). The
 * cursors are relaxed atomics: concurrent callers may pick the same class or
 * span; the class lock decides (a span being released inside is skipped). */
#include "release.h"

#include "central.h"
#include "inside_release.h"
#include "core.h"
#include "os.h"
#include "page_heap.h"
#include "resident.h"
#include "size_class.h"
#include "state.h"
#include "thread_cache.h"

#include <stdatomic.h>
#include <stdint.h>

static _Atomic unsigned drain_cursor = 1;

size_t tcm_release_drain_step(bool keep_capacity)
{
	unsigned start = atomic_load_explicit(&drain_cursor, memory_order_relaxed);
	for (unsigned tried = 0; tried < TCM_SIZE_CLASS_COUNT - 1; tried++) {
		unsigned size_class = 1 + (start - 1 + tried) % (TCM_SIZE_CLASS_COUNT - 1);
		uint32_t keep = keep_capacity ? tcm_central_capacity(size_class) : 0;
		size_t moved = tcm_central_drain_one(size_class, keep);
		if (moved != 0) {
			atomic_store_explicit(&drain_cursor, 1 + size_class % (TCM_SIZE_CLASS_COUNT - 1),
					      memory_order_relaxed);
			return moved;
		}
	}
	return 0;
}

size_t tcm_release_step(size_t chunk_bytes)
{
	/* madvise works in whole kernel pages: a chunk of tcm pages below one
	 * (release.chunk_kib may be 8 KiB, an aarch64 kernel page 64 KiB) is
	 * raised to one, or such a kernel would never get anything back (DESIGN
	 * invariant 11). Below one tcm page, nothing, as on every kernel. */
	size_t kernel_page = tcm_os_kernel_page_bytes();
	if (chunk_bytes >= TCM_PAGE_BYTES && chunk_bytes < kernel_page)
		chunk_bytes = kernel_page;
	size_t released = tcm_page_heap_release_step(chunk_bytes);
	if (released == 0)
		released = tcm_inside_release_walk(chunk_bytes, SIZE_MAX);
	return released;
}

/* How far a helping thread walks the page map for spans with free pages
 * inside, at most: 32 MiB of small-object spans. */
#define HELP_WALK_PAGES 4096

static _Atomic size_t help_chunk_bytes;

void tcm_release_ask_for_help(size_t chunk_bytes)
{
	atomic_store_explicit(&help_chunk_bytes, chunk_bytes, memory_order_relaxed);
}

void tcm_release_after_fork_in_child(void)
{
	tcm_release_ask_for_help(0);
}

size_t tcm_release_help_chunk_bytes(void)
{
	size_t chunk_bytes = atomic_load_explicit(&help_chunk_bytes, memory_order_relaxed);
	return chunk_bytes != 0 && tcm_state_get() == TCM_STATE_DRAINING ? chunk_bytes : 0;
}

void tcm_release_help(size_t *credit_bytes)
{
	size_t chunk_bytes = tcm_release_help_chunk_bytes();
	if (chunk_bytes == 0) {
		*credit_bytes = 0;   /* no help wanted: no debt */
		return;
	}
	if (*credit_bytes < TCM_RELEASE_HELP_CREDIT_BYTES)
		return;
	*credit_bytes -= TCM_RELEASE_HELP_CREDIT_BYTES;
	if (tcm_page_heap_release_step(chunk_bytes) == 0 &&
	    tcm_inside_release_walk(chunk_bytes, HELP_WALK_PAGES) == 0)
		*credit_bytes = 0;   /* nothing found: no debt to carry */
}

void tcm_release_totals(uint64_t *released_bytes, uint64_t *release_calls)
{
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	uint64_t inside_span_bytes, inside_span_calls;
	tcm_inside_release_totals(&inside_span_bytes, &inside_span_calls);
	*released_bytes = heap.released_total_bytes + inside_span_bytes;
	*release_calls = heap.release_calls + inside_span_calls;
}

/* After a walk inside spans that found nothing, no walk until the memory in
 * use reaches this (resident.h). */
static _Atomic uint64_t inside_quiet_until_bytes;

void tcm_release_before_fault_in(size_t bytes, bool is_small_object_span)
{
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	bool is_normal = tcm_state_get() == TCM_STATE_NORMAL;
	const struct tcm_resident_state state = {
		.fault_in_bytes = bytes,
		.is_small_object_span = is_small_object_span,
		.is_normal = is_normal,
		.in_use_bytes = heap.in_use_bytes,
		.page_heap_free_bytes = heap.free_committed_bytes,
		.largest_large_bytes = heap.largest_large_bytes,
		/* a sum over the classes: only where the inside rule can apply */
		.central_free_bytes = is_small_object_span && is_normal ? tcm_central_cached_bytes() : 0,
		.inside_quiet_until_bytes = atomic_load_explicit(&inside_quiet_until_bytes, memory_order_relaxed),
	};
	struct tcm_resident_plan plan = tcm_resident_plan(&state);
	uint64_t left = plan.page_heap_bytes;
	for (int step = 0; step < TCM_RESIDENT_PAGE_HEAP_MAX_STEPS && left >= TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES;
	     step++) {
		size_t released = tcm_page_heap_release_pieces(left, TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES);
		if (released == 0)
			break;
		left = released >= left ? 0 : left - released;
	}
	for (left = plan.inside_span_bytes; left > 0;) {
		size_t released = tcm_inside_release_walk(left, TCM_RESIDENT_INSIDE_WALK_PAGES);
		if (released == 0) {
			atomic_store_explicit(&inside_quiet_until_bytes, tcm_resident_quiet_until(state.in_use_bytes),
					      memory_order_relaxed);
			break;
		}
		left = released >= left ? 0 : left - released;
	}
}

uint64_t tcm_release_pending_bytes(void)
{
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	return heap.free_committed_bytes + tcm_central_cached_bytes();
}

size_t tcm_core_release_free_memory(size_t max_bytes)
{
	tcm_core_bootstrap();
	tcm_thread_cache_flush_self();
	while (tcm_release_drain_step(false) != 0)
		;
	size_t released = 0;
	while (released < max_bytes) {
		size_t chunk = max_bytes - released < TCM_CORE_RELEASE_CHUNK_BYTES
			? max_bytes - released : TCM_CORE_RELEASE_CHUNK_BYTES;
		size_t bytes = tcm_release_step(chunk);
		if (bytes == 0)
			break;
		released += bytes;
	}
	return released;
}

bool tcm_core_enter_draining(void)
{
	if (!tcm_state_advance(TCM_STATE_DRAINING))
		return false;
	tcm_core_lock_stats_start_t0_window();
	tcm_thread_cache_enter_draining();
	return true;
}

bool tcm_core_enter_exiting(void)
{
	return tcm_state_advance(TCM_STATE_EXITING);
}
