/* orchestrator/figures.c - the tables of figures (see figures.h). One row per uint64_t of
 * struct tcm_stats, or of struct tcm_size_class_stats, that a report shows; the shutdown's
 * trigger is not a number and goes out as a label, a class's object size as the label of its
 * figures (render.c). */
#include "figures.h"

#define FIGURE_OF(record_, name_, kind_, unit_, window_, field_, help_)                            \
	{ .name = name_, .kind = TCM_FIGURE_##kind_, .unit = TCM_FIGURE_##unit_,                    \
	  .window = TCM_FIGURE_##window_, .offset = offsetof(record_, field_), .help = help_ }
#define FIGURE(...) FIGURE_OF(struct tcm_stats, __VA_ARGS__)
#define CLASS_FIGURE(...) FIGURE_OF(struct tcm_size_class_stats, __VA_ARGS__)

#define LOCK_FIGURES(lock_, field_, what_)                                                          \
	FIGURE("lock_" lock_ "_acquisitions_total", COUNTER, COUNT, PROCESS_LIFE, field_.acquisitions, \
	       "Acquisitions of " what_ " over the process's life."),                              \
	FIGURE("lock_" lock_ "_contended_total", COUNTER, COUNT, PROCESS_LIFE, field_.contended,    \
	       "Acquisitions of " what_ " that had to spin or sleep, over the process's life."),    \
	FIGURE("lock_" lock_ "_sleeps_total", COUNTER, COUNT, PROCESS_LIFE, field_.sleeps,          \
	       "Futex sleeps waiting for " what_ ", over the process's life."),                     \
	FIGURE("lock_" lock_ "_hold_max_seconds", GAUGE, NANOSECONDS, PROCESS_LIFE,                 \
	       field_.hold_ns_max, "Longest hold of " what_ " over the process's life."),          \
	FIGURE("lock_" lock_ "_wait_max_seconds", GAUGE, NANOSECONDS, PROCESS_LIFE,                 \
	       field_.wait_ns_max, "Longest wait for " what_ " over the process's life."),         \
	FIGURE("lock_" lock_ "_hold_max_since_t0_seconds", GAUGE, NANOSECONDS, SINCE_T0,            \
	       field_.hold_ns_max_since_t0,                                                         \
	       "Longest hold of " what_ " since the shutdown began (T0); 0 before."),               \
	FIGURE("lock_" lock_ "_wait_max_since_t0_seconds", GAUGE, NANOSECONDS, SINCE_T0,            \
	       field_.wait_ns_max_since_t0,                                                         \
	       "Longest wait for " what_ " since the shutdown began (T0); 0 before.")

const struct tcm_figure tcm_figures[] = {
	FIGURE("heap_allocated_bytes", GAUGE, BYTES, NOW, allocated_bytes,
	       "Bytes handed to the program now, by object size."),
	FIGURE("heap_large_allocated_bytes", GAUGE, BYTES, NOW, large_allocated_bytes,
	       "Of those, bytes in blocks over 256 KiB, in spans of their own, now."),
	FIGURE("thread_cache_cached_bytes", GAUGE, BYTES, NOW, thread_cached_bytes,
	       "Free bytes in the thread caches now."),
	FIGURE("thread_cache_threads", GAUGE, COUNT, NOW, threads_live,
	       "Threads with an active cache now."),
	FIGURE("central_cached_bytes", GAUGE, BYTES, NOW, central_cached_bytes,
	       "Free bytes in the central lists and their spans now."),
	FIGURE("page_heap_free_bytes", GAUGE, BYTES, NOW, page_heap_free_bytes,
	       "Bytes of free spans whose pages may be resident, now."),
	FIGURE("page_heap_released_bytes", GAUGE, BYTES, NOW, page_heap_released_bytes,
	       "Bytes of free spans given back to the kernel (not resident), now."),
	FIGURE("metadata_bytes", GAUGE, BYTES, NOW, metadata_bytes,
	       "Bytes of tcm's own structures now."),
	FIGURE("os_mapped_bytes", GAUGE, BYTES, NOW, mapped_bytes,
	       "Address space tcm has taken from the kernel, now."),
	FIGURE("release_bytes_total", COUNTER, BYTES, PROCESS_LIFE, released_total_bytes,
	       "Bytes given back to the kernel over the process's life."),
	FIGURE("release_calls_total", COUNTER, COUNT, PROCESS_LIFE, release_calls,
	       "System calls that gave them back (madvise, process_madvise), over the process's life."),
	LOCK_FIGURES("page_heap", page_heap_lock, "the page-heap lock"),
	LOCK_FIGURES("central", central_lock, "the central locks (all size classes summed, maxima the largest)"),
	FIGURE("shutdown_released_since_t0_bytes", GAUGE, BYTES, SINCE_T0, shutdown.released_bytes,
	       "Bytes given back since the shutdown began (T0), by the worker and the threads helping it."),
	FIGURE("shutdown_release_calls_since_t0", GAUGE, COUNT, SINCE_T0, shutdown.release_steps,
	       "System calls that gave them back, since T0."),
	FIGURE("shutdown_lock_hold_max_since_t0_seconds", GAUGE, NANOSECONDS, SINCE_T0, shutdown.lock_hold_ns_max,
	       "Longest hold of any allocator lock since T0."),
	FIGURE("shutdown_lock_wait_max_since_t0_seconds", GAUGE, NANOSECONDS, SINCE_T0, shutdown.lock_wait_ns_max,
	       "Longest wait for any allocator lock since T0."),
};

const size_t tcm_figure_count = sizeof(tcm_figures) / sizeof(tcm_figures[0]);

const struct tcm_figure tcm_size_class_figures[] = {
	CLASS_FIGURE("size_class_spans", GAUGE, COUNT, NOW, spans,
		     "Spans the size class holds now."),
	CLASS_FIGURE("size_class_in_use_objects", GAUGE, COUNT, NOW, in_use_objects,
		     "Objects of the size class handed to the program now."),
	CLASS_FIGURE("size_class_thread_cache_objects", GAUGE, COUNT, NOW, thread_cache_objects,
		     "Free objects of the size class in the thread caches now (as each thread last reported)."),
	CLASS_FIGURE("size_class_central_objects", GAUGE, COUNT, NOW, central_objects,
		     "Free objects of the size class on its central stack now."),
	CLASS_FIGURE("size_class_span_free_objects", GAUGE, COUNT, NOW, span_free_objects,
		     "Free objects of the size class in its spans now."),
};

const size_t tcm_size_class_figure_count = sizeof(tcm_size_class_figures) / sizeof(tcm_size_class_figures[0]);

const char *tcm_figure_window_name(enum tcm_figure_window window)
{
	switch (window) {
	case TCM_FIGURE_PROCESS_LIFE: return "process_life";
	case TCM_FIGURE_SINCE_T0:     return "since_t0";
	default:                      return "now";
	}
}
