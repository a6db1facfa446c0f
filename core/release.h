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
 * instead (tcm_central_release_inside_spans). madvise works in whole kernel
 * pages: a chunk_bytes of at least one tcm page but below one kernel page is
 * raised to one kernel page (so a caller can release up to a kernel page more
 * than it asked for), and one below a tcm page releases nothing. Returns the
 * bytes released; 0 when nothing more can be released. */
size_t tcm_release_step(size_t chunk_bytes);

/* Free bytes a full drain and release could still return: the page heap's free
 * committed bytes plus the objects held in central lists (an upper bound: an
 * object returns to the kernel only with the rest of its span). */
uint64_t tcm_release_pending_bytes(void);

#endif
