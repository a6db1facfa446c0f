/* orchestrator/worker.h - the release worker: one thread, started only when a
 * shutdown can need it, that does all of tcm's background work.
 *
 *   NORMAL    trims central stacks back to capacity; with release.rate_mib_s,
 *             releases free memory at that wall-clock rate;
 *   DRAINING  sends STOPPING=1 and EXTEND_TIMEOUT_USEC, drains the central
 *             stacks and releases free spans at full speed in chunks of
 *             release.chunk_kib, checking the deadline between chunks, with
 *             STATUS= progress, until deadline - margin; then keeps releasing
 *             what the service frees until then;
 *   EXITING   stops at once.
 * It never holds an allocator lock across a system call (core's steps drop
 * theirs) and it is woken through an eventfd, which the SIGTERM hook writes. */
#ifndef TCM_ORCHESTRATOR_WORKER_H
#define TCM_ORCHESTRATOR_WORKER_H

#include "../conf/config.h"

/* Starts the worker if it is not running. Returns 0 or an errno. */
int tcm_worker_start(const struct tcm_config *config);

/* Wakes the worker to look at the state again. Async-signal-safe. */
void tcm_worker_wake(void);

/* In a fork child: the parent's worker thread does not exist here. The child
 * stays single-threaded until something starts its own (tcm_worker_start). */
void tcm_worker_after_fork_in_child(void);

#endif
