/* core/resident.h - the resident-set policy: when a span is about to be
 * faulted in (it comes from released memory, which reads as zeros and is not
 * resident), how much free memory that is resident already to give back
 * first, so that a program that frees much of its heap and then allocates
 * other sizes does not add the new pages on top of the free ones. A pure
 * function of plain numbers (release.c gathers them and does the releasing),
 * tested as such (tests/unit/resident_test.c).
 *
 * Two sources, two rules:
 *   - free committed page-heap spans beyond an allowance: a quarter of the
 *     memory in use, or room for two of the largest large blocks asked for (at
 *     most TCM_RESIDENT_ROOM_MAX_BYTES), whichever is more. A program that
 *     churns 8 MiB blocks keeps 16 MiB to reuse (without them every block
 *     would be faulted in anew: bench/large_blocks); one whose blocks stay
 *     under 1 MiB keeps a few MiB (bench/realloc_growth). Released in pieces of at least
 *     TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES.
 *   - for a small-object span, the free pages inside spans in use (core/
 *     inside_release.h), while the free objects come to a quarter of the
 *     memory in use and at least TCM_RESIDENT_INSIDE_MIN_FREE_BYTES, only in
 *     NORMAL (from DRAINING on the release worker does it, off the malloc
 *     path). A walk that finds nothing makes the next wait until the memory in
 *     use has grown by a quarter (tcm_resident_quiet_until), which bounds the
 *     fruitless walks.
 * Each gives back at most the span's own bytes. */
#ifndef TCM_CORE_RESIDENT_H
#define TCM_CORE_RESIDENT_H

#include <stdbool.h>
#include <stdint.h>

#define TCM_RESIDENT_ROOM_MAX_BYTES            ((uint64_t)16 << 20)
#define TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES ((uint64_t)64 << 10)
#define TCM_RESIDENT_PAGE_HEAP_MAX_STEPS       4      /* release steps per fault-in */
#define TCM_RESIDENT_INSIDE_MIN_FREE_BYTES     ((uint64_t)8 << 20)
#define TCM_RESIDENT_INSIDE_WALK_PAGES         1024   /* pages one walk looks at */

struct tcm_resident_state {
	uint64_t fault_in_bytes;           /* the span about to be faulted in */
	bool     is_small_object_span;     /* for a central class (else a large block) */
	bool     is_normal;                /* core is in NORMAL */
	uint64_t in_use_bytes;             /* spans the page heap has handed out */
	uint64_t page_heap_free_bytes;     /* free committed page-heap spans: maybe resident */
	uint64_t largest_large_bytes;      /* the largest large block asked for so far */
	uint64_t central_free_bytes;       /* free objects on the central stacks and in spans */
	uint64_t inside_quiet_until_bytes; /* no walk inside spans while in use is below this */
};

struct tcm_resident_plan {
	uint64_t page_heap_bytes;    /* of free committed spans, in pieces of at least the minimum */
	uint64_t inside_span_bytes;  /* of free pages inside spans in use */
};

struct tcm_resident_plan tcm_resident_plan(const struct tcm_resident_state *state);

/* After a walk inside spans that found nothing: the memory in use the next
 * walk waits for. */
uint64_t tcm_resident_quiet_until(uint64_t in_use_bytes);

#endif
