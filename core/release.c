/* core/release.c - the drain and release steps (release.h), and
 * tcm_core_release_free_memory built from them.
 *
 * Invariants: a drain step pops at most one stack entry and returns it in
 * bounded lock holds (core/central.c); a release step is one madvise of at most
 * its chunk with no lock held (core/page_heap.c), or, from DRAINING on, the
 * free pages inside one partly used span (core/central.c). The cursors are
 * relaxed atomics: concurrent callers may pick the same class or span; the
 * class lock decides (a span being released inside is skipped). */
#include "release.h"

#include "central.h"
#include "core.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_class.h"
#include "state.h"
#include "thread_cache.h"

#include <stdatomic.h>

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

/* Where the next look for spans with free pages inside starts: a page number. */
static _Atomic uintptr_t inside_span_cursor;

size_t tcm_release_inside_spans_step(size_t max_bytes)
{
	const uintptr_t root_entries = (uintptr_t)1 << TCM_PAGE_MAP_ROOT_BITS;
	uintptr_t page = atomic_load_explicit(&inside_span_cursor, memory_order_relaxed);
	while ((page >> TCM_PAGE_MAP_LEAF_BITS) < root_entries) {
		struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
		if (leaf == NULL) {
			page = ((page >> TCM_PAGE_MAP_LEAF_BITS) + 1) << TCM_PAGE_MAP_LEAF_BITS;
			continue;
		}
		for (size_t index = page & (TCM_PAGE_MAP_LEAF_PAGES - 1); index < TCM_PAGE_MAP_LEAF_PAGES;
		     index++, page++) {
			unsigned size_class = atomic_load_explicit(&leaf->size_class[index], memory_order_relaxed);
			if (size_class == 0 || !tcm_central_may_release_inside_spans(size_class))
				continue;
			struct tcm_span *span = atomic_load_explicit(&leaf->span[index], memory_order_relaxed);
			uintptr_t span_start = page << TCM_PAGE_SHIFT;
			if (span == NULL || span->start != span_start)
				continue;   /* not the span's first page (or a stale entry) */
			size_t released = tcm_central_release_inside_span(span, size_class, span_start, max_bytes);
			if (released != 0) {
				atomic_store_explicit(&inside_span_cursor, page + 1, memory_order_relaxed);
				return released;
			}
		}
	}
	atomic_store_explicit(&inside_span_cursor, 0, memory_order_relaxed);   /* next pass from the start */
	return 0;
}

size_t tcm_release_step(size_t chunk_bytes)
{
	size_t released = tcm_page_heap_release_step(chunk_bytes);
	if (released == 0 && tcm_state_get() != TCM_STATE_NORMAL)
		released = tcm_release_inside_spans_step(chunk_bytes);
	return released;
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
	tcm_thread_cache_enter_draining();
	return true;
}

bool tcm_core_enter_exiting(void)
{
	return tcm_state_advance(TCM_STATE_EXITING);
}
