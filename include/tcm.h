/* include/tcm.h - the public API of tcm for programs that link libtcm.so directly.
 *
 * A program preloading tcm (LD_PRELOAD=libtcm.so) needs none of this: malloc and
 * friends are tcm's. A program that links tcm can also call the tcm_* functions
 * below. Everything here is thread-safe and may be called before main().
 * Errors: allocation functions return NULL and set errno to ENOMEM (or EINVAL for
 * a bad alignment); nothing here aborts the process. */
#ifndef TCM_H
#define TCM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version this header belongs to (CMakeLists.txt's project() must agree: configure checks).
 * The major version is the ABI's: the library's SONAME is libtcm.so.<major>. */
#define TCM_VERSION_MAJOR 0
#define TCM_VERSION_MINOR 1
#define TCM_VERSION_PATCH 0
#define TCM_VERSION_JOIN_(major, minor, patch) #major "." #minor "." #patch
#define TCM_VERSION_EXPAND_(major, minor, patch) TCM_VERSION_JOIN_(major, minor, patch)
/* "MAJOR.MINOR.PATCH" of this header */
#define TCM_VERSION_TEXT TCM_VERSION_EXPAND_(TCM_VERSION_MAJOR, TCM_VERSION_MINOR, TCM_VERSION_PATCH)

/* The version of the libtcm.so the program runs with, "MAJOR.MINOR.PATCH": it may be newer
 * than the TCM_VERSION_* the program was compiled with (same major, same ABI). */
const char *tcm_version(void);

void  *tcm_malloc(size_t size_bytes);
void   tcm_free(void *ptr);
void  *tcm_calloc(size_t count, size_t size_bytes);
void  *tcm_realloc(void *ptr, size_t size_bytes);
/* alignment_bytes: a power of two; otherwise NULL with errno = EINVAL. */
void  *tcm_aligned_alloc(size_t alignment_bytes, size_t size_bytes);
size_t tcm_malloc_usable_size(void *ptr);

/* Returns free memory to the kernel: first the objects parked in the central
 * lists, then free page-heap spans, one madvise of at most 2 MiB at a time and
 * never while an allocator lock is held. Stops once max_bytes are released
 * (SIZE_MAX: all); as madvise works in whole kernel pages, it may release up
 * to one kernel page more (64 KiB on some aarch64 kernels), and nothing for a
 * max_bytes below 8 KiB. Returns the bytes released. Other threads keep
 * allocating meanwhile. */
size_t tcm_release_free_memory(size_t max_bytes);

/* One lock's counters. Times are nanoseconds of CLOCK_MONOTONIC. */
struct tcm_lock_stats {
	uint64_t acquisitions;         /* successful acquisitions */
	uint64_t contended;            /* acquisitions that had to spin or sleep */
	uint64_t sleeps;               /* futex waits */
	uint64_t hold_ns_max;          /* longest time the lock was held, in the process's life */
	uint64_t wait_ns_max;          /* longest wait to acquire it, in the process's life */
	uint64_t hold_ns_max_since_t0; /* the same two since the shutdown began (T0); 0 before */
	uint64_t wait_ns_max_since_t0;
};

/* The last shutdown, as the orchestrator saw it. Times are CLOCK_MONOTONIC
 * nanoseconds; 0 means "has not happened". */
enum tcm_shutdown_trigger {
	TCM_SHUTDOWN_NONE = 0,
	TCM_SHUTDOWN_SIGTERM,          /* a SIGTERM: tcm's hook in front of the application's handler,
	                                * or one it took with sigwait, sigwaitinfo or sigtimedwait */
	TCM_SHUTDOWN_API,              /* tcm_shutdown_begin() */
	TCM_SHUTDOWN_EXIT,             /* exit() began with neither of the above */
};

struct tcm_shutdown_stats {
	uint32_t trigger;              /* enum tcm_shutdown_trigger */
	uint64_t t0_ns;                /* shutdown began: core went DRAINING */
	uint64_t t1_ns;                /* exit() reached tcm: core went EXITING */
	uint64_t released_bytes;       /* given back since T0, by the worker and threads helping it */
	uint64_t release_steps;        /* system calls that took (madvise, process_madvise) */
	uint64_t lock_hold_ns_max;     /* longest hold of any allocator lock since T0 */
	uint64_t lock_wait_ns_max;     /* longest wait for one */
};

/* A snapshot of the allocator, read without stopping other threads: each field
 * is exact on its own, the sum of fields is only approximately consistent. */
struct tcm_stats {
	uint64_t mapped_bytes;               /* address space tcm took from the kernel */
	uint64_t page_heap_free_bytes;       /* free spans whose pages may be resident */
	uint64_t page_heap_released_bytes;   /* free spans given back to the kernel: not resident */
	uint64_t central_cached_bytes;       /* free objects in central lists and their spans */
	uint64_t thread_cached_bytes;        /* free objects in thread caches */
	uint64_t allocated_bytes;            /* handed to the program (by object size) */
	uint64_t large_allocated_bytes;      /* of which in spans of their own (> 256 KiB) */
	uint64_t metadata_bytes;             /* tcm's own structures */
	uint64_t released_total_bytes;       /* all bytes ever madvised back */
	uint64_t release_calls;              /* madvise calls made */
	uint64_t threads_live;               /* threads with an active cache */
	struct tcm_lock_stats page_heap_lock;
	struct tcm_lock_stats central_lock;  /* all size classes' central locks summed (max: max) */
	struct tcm_shutdown_stats shutdown;
};

/* Fills *out. Never allocates, never blocks on an allocator lock. */
void tcm_stats(struct tcm_stats *out);

/* One size class (small objects, 256 KiB and under), now: where its objects are. Read without
 * stopping other threads: a count may be off by objects moving between two places. */
struct tcm_size_class_stats {
	uint64_t object_bytes;         /* the class's object size */
	uint64_t span_bytes;           /* the size of each of its spans */
	uint64_t spans;                /* spans the class holds */
	uint64_t in_use_objects;       /* handed to the program */
	uint64_t thread_cache_objects; /* free in thread caches: the calling thread's exactly, other
	                                  threads' as of their last refill or give-back of the class */
	uint64_t central_objects;      /* free on the class's central stack */
	uint64_t span_free_objects;    /* free in its spans (never handed out, or given back) */
};

/* Fills out[0 .. min(capacity, classes) - 1] with the size classes, smallest objects first, and
 * returns how many classes there are (capacity 0 asks only that). Never allocates, never blocks
 * on an allocator lock. */
size_t tcm_size_class_stats(struct tcm_size_class_stats *out, size_t capacity);

/* Writes a human-readable report (the one malloc_stats prints) to fd. */
void tcm_stats_print(int fd);

/* For services that link tcm: the graceful shutdown starts now, as if SIGTERM
 * had arrived (T0): thread caches hand back their surplus, the release worker
 * drains and releases free memory until exit.deadline_ms - exit.margin_ms, and
 * systemd hears STOPPING=1 when notifications are on. Idempotent; returns at
 * once (the work happens on tcm's worker thread). */
void tcm_shutdown_begin(void);

#ifdef __cplusplus
}
#endif
#endif
