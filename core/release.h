/* core/release.h - bounded steps that give memory back to the kernel, for the
 * orchestrator's release worker and for tcm_release_free_memory.
 *
 * Each step does a bounded amount of work and holds no lock across a system
 * call (DESIGN invariants 1-3); the caller decides between steps whether to go
 * on (deadline, rate) and yields. Never allocates (invariant 7). */
#ifndef TCM_CORE_RELEASE_H
#define TCM_CORE_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pops one entry from the next central stack (round robin over the classes)
 * that holds more than its limit, and returns its objects to their spans;
 * spans that empty go to the page heap. The limit is the stack's capacity when
 * keep_capacity (trimming back what dying threads pushed past it), else 0 (a
 * full drain). Returns the objects moved; 0 when no stack is above its limit. */
size_t tcm_release_drain_step(bool keep_capacity);

/* madvises at most chunk_bytes of free committed page-heap memory (one call);
 * when the page heap has none, the free pages inside one partly used span
 * instead (core/inside_release.h). madvise works in whole kernel
 * pages: a chunk_bytes of at least one tcm page but below one kernel page is
 * raised to one kernel page (so a caller can release up to a kernel page more
 * than it asked for), and one below a tcm page releases nothing. Returns the
 * bytes released; 0 when nothing more can be released. */
size_t tcm_release_step(size_t chunk_bytes);

/* Help from the service's threads. A release worker at the service's priority
 * gets a CPU share of one thread among the service's and the host's: on a busy
 * host that is too little to give back in time what a draining service frees.
 * So while a drain pass runs outside a storm of frees (orchestrator/drain.c
 * says when), the threads that free help: each batch a thread cache gives
 * back goes straight to its spans, and a free that finds its thread has given
 * back TCM_RELEASE_HELP_CREDIT_BYTES or more since it last helped ends with
 * one release step of at most the chunk asked for: free page-heap memory, or
 * failing that, free pages inside spans found within HELP_WALK_PAGES of the
 * page map (release.c). No lock is held across its system call and a free
 * makes at most one (DESIGN invariants 1-3). The work so scales with the
 * service's own share of the CPUs. In a storm nobody helps: a process about
 * to exit ends sooner when the kernel frees its pages at exit than when
 * madvise does (bench/EXIT_STORM.md).
 *
 * tcm_release_ask_for_help sets the chunk (0: no help wanted); help is given
 * only while core is DRAINING. */
#define TCM_RELEASE_HELP_CREDIT_BYTES ((size_t)256 << 10)
void tcm_release_ask_for_help(size_t chunk_bytes);

/* A fork child: no drain pass runs in it to have asked for help (core/fork.c). */
void tcm_release_after_fork_in_child(void);

/* The chunk a helping thread releases; 0 when no help is wanted. */
size_t tcm_release_help_chunk_bytes(void);

/* Pays TCM_RELEASE_HELP_CREDIT_BYTES of a thread's credit (*credit_bytes: what
 * it gave back while helping) with one release step of the chunk asked for.
 * Drops the credit when help is no longer wanted or nothing was found to
 * release. REQUIRES: no tcm lock held. */
void tcm_release_help(size_t *credit_bytes);

/* What has been given back to the kernel since the process began, by anyone
 * (the worker, helping threads, tcm_release_free_memory), and the system
 * calls made for it. */
void tcm_release_totals(uint64_t *released_bytes, uint64_t *release_calls);

/* A span of bytes handed out from released memory (the page heap said
 * is_zeroed) is about to be faulted in: gives back first what the
 * resident-set policy (resident.h) says, from the page heap's free committed
 * spans (at most TCM_RESIDENT_PAGE_HEAP_MAX_STEPS release steps) and, for a
 * small-object span, from inside spans in use. REQUIRES: no tcm lock held. */
void tcm_release_before_fault_in(size_t bytes, bool is_small_object_span);

/* Free bytes a full drain and release could still return: the page heap's free
 * committed bytes plus the objects held in central lists (an upper bound: an
 * object returns to the kernel only with the rest of its span). */
uint64_t tcm_release_pending_bytes(void);

#endif
