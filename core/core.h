/* core/core.h - the one header of core/ that the other layers (shim/,
 * orchestrator/, conf/, tools/) include: allocation entry points, release,
 * stats, fork handlers, and the core headers they may use besides (below).
 * tests/process/layers.sh checks that no other core header is included from
 * outside core/.
 *
 * Contract of every allocation function: returns memory aligned to at least
 * 16 bytes, or NULL with errno = ENOMEM; may be called before constructors run
 * and from any thread (DESIGN invariant 10: core bootstraps itself on first
 * use without calling malloc). Argument rules of the C API (EINVAL, overflow
 * of count * size, realloc(p, 0)) live in shim/, not here. */
#ifndef TCM_CORE_CORE_H
#define TCM_CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>

#include "../include/tcm.h"
#include "debug.h"     /* tcm_fatal and TCM_LIKELY, for the shim's checks */
#include "format.h"    /* allocation-free text: the other layers' messages and reports */
#include "os.h"        /* every system call of the allocator is core/os.c's (DESIGN), the other layers' too */
#include "release.h"   /* the bounded drain and release steps */
#include "state.h"     /* NORMAL -> DRAINING -> EXITING */

/* Sets core up (size classes, central lists, the thread-exit key) if that has
 * not happened yet. Idempotent; allocates nothing. Every entry point below
 * does it on its first slow path, so callers need it only to start core
 * without allocating. */
void   tcm_core_bootstrap(void);

void  *tcm_core_malloc(size_t size_bytes);
/* Zeroed memory of size_bytes (the caller has checked count * size). */
void  *tcm_core_zalloc(size_t size_bytes);
/* alignment_bytes: a power of two. */
void  *tcm_core_aligned_alloc(size_t alignment_bytes, size_t size_bytes);
/* ptr non-NULL, size_bytes > 0: grows or shrinks, in place when it fits. */
void  *tcm_core_realloc(void *ptr, size_t size_bytes);
void   tcm_core_free(void *ptr);
/* 0 for NULL, a pointer tcm did not hand out, or one inside a block. */
size_t tcm_core_usable_size(const void *ptr);

/* Flushes the calling thread's cache, drains the central stacks, then madvises free spans in steps of at most
 * TCM_CORE_RELEASE_CHUNK_BYTES until max_bytes are released or nothing is
 * left. Returns the bytes released. No lock is held across a system call. */
#define TCM_CORE_RELEASE_CHUNK_BYTES ((size_t)2 << 20)
size_t tcm_core_release_free_memory(size_t max_bytes);

/* Moves core to DRAINING (thread caches quiesce on their next free) or to
 * EXITING (thread exit drops caches in O(1)). Forward only; async-signal-safe
 * (atomics only). Return true when this call made the move. */
bool tcm_core_enter_draining(void);
bool tcm_core_enter_exiting(void);

/* Starts every lock's since-T0 maxima (struct tcm_lock_stats): the move to
 * DRAINING calls it. Async-signal-safe. */
void tcm_core_lock_stats_start_t0_window(void);

/* Budgets of the thread caches in bytes (tcm.conf cache.*). */
void tcm_core_set_thread_cache_budget(size_t thread_max_bytes, size_t total_max_bytes);

/* Bytes in large spans handed to the program (kept by alloc.c). */
uint64_t tcm_alloc_large_allocated_bytes(void);

void tcm_core_stats(struct tcm_stats *out);
/* tcm_size_class_stats of tcm.h. */
size_t tcm_core_size_class_stats(struct tcm_size_class_stats *out, size_t capacity);

/* Registers pthread_atfork handlers that make fork safe (call once, from a
 * constructor: pthread_atfork itself may allocate). */
void tcm_core_install_fork_handlers(void);

#endif
