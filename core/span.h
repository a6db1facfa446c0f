/* core/span.h - a span: a run of 8 KiB pages owned by exactly one layer at a time.
 *
 * Invariants:
 *   - the first and the last page of every span map to it in the page map;
 *     every page of an IN_USE small-object span does (size_class != 0);
 *   - a span is on at most one list: a free set of the page heap (FREE_COMMITTED,
 *     RELEASED), a central class's list of spans with free objects, or none
 *     (IN_USE large spans, full small spans, RELEASING spans);
 *   - a RELEASING span is on no list and is never merged (the race that made
 *     gperftools 2.8.1 revert its lock drop around madvise);
 *   - only core/page_heap.c changes state, start and npages; only
 *     core/central.c touches the small-object fields, under central[class]. */
#ifndef TCM_CORE_SPAN_H
#define TCM_CORE_SPAN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum tcm_span_state {
	TCM_SPAN_IN_USE = 0,        /* handed to central (small) or to the program (large) */
	TCM_SPAN_FREE_COMMITTED,    /* free; its pages may be resident */
	TCM_SPAN_RELEASED,          /* free; madvised away or never touched: reads as zeros */
	TCM_SPAN_RELEASING,         /* being madvised with no lock held; on no list */
	TCM_SPAN_FREEING,           /* freed while the page-heap lock was busy: on its deferred
	                               list, never merged, no longer anyone's */
};

struct tcm_span {
	uintptr_t        start;            /* first byte; 8 KiB aligned; page_heap lock */
	size_t           npages;           /* length in 8 KiB pages, > 0; page_heap lock */
	struct tcm_span *next, *prev;      /* links on the list of whichever lock owns the span */
	uint8_t          state;            /* enum tcm_span_state; page_heap lock */
	uint8_t          size_class;       /* 0 = large span; fixed while IN_USE */
	_Atomic uint8_t  on_list_class;    /* small spans: the class whose list of spans with free
	                                      objects holds it, 0 none; written under that class's
	                                      lock, so a thread holding central[c] that reads c knows
	                                      the span is c's until it drops the lock, whatever
	                                      else it read of the span without the page-heap lock */
	uint8_t          is_releasing_inside; /* small spans: its free list is out for a release of
	                                         the free pages inside; the releaser frees it if it empties */
	_Atomic uint8_t  may_release_inside; /* small spans of eligible classes: objects came back
	                                        since its last release inside (allocated_objects below
	                                        allocated_after_page_release), or that release was cut
	                                        short; written under central[size_class], read without
	                                        it by the walk, which checks again under the lock */
	/* Small-object spans only, guarded by central[size_class]: */
	uint32_t         allocated_objects; /* objects out of the span (caches, stacks, program) */
	void            *free_objects;      /* objects given back, linked through their first word */
	uintptr_t        carve_next;        /* first never-used object */
	uintptr_t        carve_end;         /* end of the last whole object */
	uint32_t         allocated_after_page_release; /* allocated_objects when free pages inside
	                                                  were last released; UINT32_MAX: never */
	uint64_t         stranded_objects; /* bit i: object i lies on a released page: free, on no
	                                      list, reads zero; handed out once nothing else is left */
	uint64_t         listed_objects;   /* classes eligible for release inside spans: bit i set
	                                      exactly while object i is on free_objects */
	uint64_t         taken_out_objects; /* while is_releasing_inside: the free objects the
	                                       releaser took out (a fork child gets them back) */
};

#endif
