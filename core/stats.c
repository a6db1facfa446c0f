/* core/stats.c - the allocator's counters gathered into struct tcm_stats, and
 * the text report behind malloc_stats. Reads only atomics and racy counters:
 * never takes an allocator lock, never allocates. */
#include "core.h"

#include "central.h"
#include "format.h"
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
	read_lock(tcm_page_heap_lock(), &out->page_heap_lock);
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		read_lock(tcm_central_lock(size_class), &out->central_lock);
}

void tcm_core_lock_stats_start_t0_window(void)
{
	tcm_lock_start_t0_window(tcm_page_heap_lock());
	tcm_lock_start_t0_window(tcm_metadata_lock());
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		tcm_lock_start_t0_window(tcm_central_lock(size_class));
	atomic_store_explicit(&has_t0_window, true, memory_order_release);
}

static void line_mib(struct tcm_text *text, const char *label, uint64_t bytes)
{
	tcm_text_str(text, label);
	tcm_text_fixed1(text, bytes, 1 << 20);
	tcm_text_str(text, " MiB (");
	tcm_text_u64(text, bytes);
	tcm_text_str(text, " bytes)\n");
}

static void line_lock(struct tcm_text *text, const char *label, const struct tcm_lock_stats *lock)
{
	tcm_text_str(text, label);
	tcm_text_u64(text, lock->acquisitions);
	tcm_text_str(text, " acquisitions, ");
	tcm_text_u64(text, lock->contended);
	tcm_text_str(text, " contended, ");
	tcm_text_u64(text, lock->sleeps);
	tcm_text_str(text, " sleeps, max hold ");
	tcm_text_u64(text, lock->hold_ns_max / 1000);
	tcm_text_str(text, " us, max wait ");
	tcm_text_u64(text, lock->wait_ns_max / 1000);
	tcm_text_str(text, " us (process life)");
	if (atomic_load_explicit(&has_t0_window, memory_order_acquire)) {
		tcm_text_str(text, "; since T0: max hold ");
		tcm_text_u64(text, lock->hold_ns_max_since_t0 / 1000);
		tcm_text_str(text, " us, max wait ");
		tcm_text_u64(text, lock->wait_ns_max_since_t0 / 1000);
		tcm_text_str(text, " us");
	}
	tcm_text_str(text, "\n");
}

void tcm_core_stats_print(int fd)
{
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	char buffer[2048];
	struct tcm_text text;
	tcm_text_init(&text, buffer, sizeof(buffer));
	tcm_text_str(&text, "------------------------------------------------\n"
			    "tcm malloc statistics\n");
	line_mib(&text, "allocated (in use by the program): ", stats.allocated_bytes);
	line_mib(&text, "  of which large spans:            ", stats.large_allocated_bytes);
	line_mib(&text, "thread caches:                     ", stats.thread_cached_bytes);
	line_mib(&text, "central lists:                     ", stats.central_cached_bytes);
	line_mib(&text, "page heap free (resident):         ", stats.page_heap_free_bytes);
	line_mib(&text, "page heap released (not resident): ", stats.page_heap_released_bytes);
	line_mib(&text, "metadata:                          ", stats.metadata_bytes);
	line_mib(&text, "mapped address space:              ", stats.mapped_bytes);
	line_mib(&text, "released to the kernel so far:     ", stats.released_total_bytes);
	tcm_text_str(&text, "madvise calls:                     ");
	tcm_text_u64(&text, stats.release_calls);
	tcm_text_str(&text, "\nthreads with a cache:              ");
	tcm_text_u64(&text, stats.threads_live);
	tcm_text_str(&text, "\n");
	line_lock(&text, "lock page_heap: ", &stats.page_heap_lock);
	line_lock(&text, "lock central (all classes): ", &stats.central_lock);
	tcm_text_str(&text, "------------------------------------------------\n");
	tcm_os_write(fd, text.buffer, text.length);
}
