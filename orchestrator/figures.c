/* orchestrator/figures.c - the table of figures (see figures.h). One row per uint64_t of
 * struct tcm_stats that a report shows; the shutdown's trigger is not a number and goes out as
 * a label (render.c). */
#include "figures.h"

#define FIGURE(name_, kind_, unit_, field_, help_) \
	{ .name = name_, .kind = TCM_FIGURE_##kind_, .unit = TCM_FIGURE_##unit_, \
	  .offset = offsetof(struct tcm_stats, field_), .help = help_ }
#define LOCK_FIGURES(lock_, field_, what_)                                                          \
	FIGURE("lock_" lock_ "_acquisitions_total", COUNTER, COUNT, field_.acquisitions,            \
	       "Acquisitions of " what_ " over the process's life."),                              \
	FIGURE("lock_" lock_ "_contended_total", COUNTER, COUNT, field_.contended,                 \
	       "Acquisitions of " what_ " that had to spin or sleep, over the process's life."),    \
	FIGURE("lock_" lock_ "_sleeps_total", COUNTER, COUNT, field_.sleeps,                       \
	       "Futex sleeps waiting for " what_ ", over the process's life."),                     \
	FIGURE("lock_" lock_ "_hold_max_seconds", GAUGE, NANOSECONDS, field_.hold_ns_max,          \
	       "Longest hold of " what_ " over the process's life."),                               \
	FIGURE("lock_" lock_ "_wait_max_seconds", GAUGE, NANOSECONDS, field_.wait_ns_max,          \
	       "Longest wait for " what_ " over the process's life."),                              \
	FIGURE("lock_" lock_ "_hold_max_since_t0_seconds", GAUGE, NANOSECONDS,                     \
	       field_.hold_ns_max_since_t0,                                                         \
	       "Longest hold of " what_ " since the shutdown began (T0); 0 before."),               \
	FIGURE("lock_" lock_ "_wait_max_since_t0_seconds", GAUGE, NANOSECONDS,                     \
	       field_.wait_ns_max_since_t0,                                                         \
	       "Longest wait for " what_ " since the shutdown began (T0); 0 before.")

const struct tcm_figure tcm_figures[] = {
	FIGURE("heap_allocated_bytes", GAUGE, BYTES, allocated_bytes,
	       "Bytes handed to the program now, by object size."),
	FIGURE("heap_large_allocated_bytes", GAUGE, BYTES, large_allocated_bytes,
	       "Of those, bytes in blocks over 256 KiB, in spans of their own, now."),
	FIGURE("thread_cache_cached_bytes", GAUGE, BYTES, thread_cached_bytes,
	       "Free bytes in the thread caches now."),
	FIGURE("thread_cache_threads", GAUGE, COUNT, threads_live,
	       "Threads with an active cache now."),
	FIGURE("central_cached_bytes", GAUGE, BYTES, central_cached_bytes,
	       "Free bytes in the central lists and their spans now."),
	FIGURE("page_heap_free_bytes", GAUGE, BYTES, page_heap_free_bytes,
	       "Bytes of free spans whose pages may be resident, now."),
	FIGURE("page_heap_released_bytes", GAUGE, BYTES, page_heap_released_bytes,
	       "Bytes of free spans given back to the kernel (not resident), now."),
	FIGURE("metadata_bytes", GAUGE, BYTES, metadata_bytes,
	       "Bytes of tcm's own structures now."),
	FIGURE("os_mapped_bytes", GAUGE, BYTES, mapped_bytes,
	       "Address space tcm has taken from the kernel, now."),
	FIGURE("release_bytes_total", COUNTER, BYTES, released_total_bytes,
	       "Bytes given back to the kernel over the process's life."),
	FIGURE("release_calls_total", COUNTER, COUNT, release_calls,
	       "System calls that gave them back (madvise, process_madvise), over the process's life."),
	LOCK_FIGURES("page_heap", page_heap_lock, "the page-heap lock"),
	LOCK_FIGURES("central", central_lock, "the central locks (all size classes summed, maxima the largest)"),
	FIGURE("shutdown_released_since_t0_bytes", GAUGE, BYTES, shutdown.released_bytes,
	       "Bytes given back since the shutdown began (T0), by the worker and the threads helping it."),
	FIGURE("shutdown_release_calls_since_t0", GAUGE, COUNT, shutdown.release_steps,
	       "System calls that gave them back, since T0."),
	FIGURE("shutdown_lock_hold_max_since_t0_seconds", GAUGE, NANOSECONDS, shutdown.lock_hold_ns_max,
	       "Longest hold of any allocator lock since T0."),
	FIGURE("shutdown_lock_wait_max_since_t0_seconds", GAUGE, NANOSECONDS, shutdown.lock_wait_ns_max,
	       "Longest wait for any allocator lock since T0."),
};

const size_t tcm_figure_count = sizeof(tcm_figures) / sizeof(tcm_figures[0]);
