/* core/span.h - a span: a run of 8 KiB pages owned by exactly one layer at a
 * time, and the bookkeeping of a small-object span's objects (span.c).
 *
 * Invariants:
 *   - the first and the last page of every span map to it in the page map;
 *     every page of an IN_USE small-object span does (size_class != 0);
 *   - a span is on at most one list: a free set of the page heap (FREE_COMMITTED,
 *     RELEASED), a central class's list of spans with free objects, or none
 *     (IN_USE large spans, full small spans, RELEASING spans);
 *   - a RELEASING span is on no list and is never merged (the race that made
 *     gperftools 2.8.1 revert its lock drop around madvise);
 *   - only core/page_heap.c changes state, start and npages; the small-object
 *     fields change under central[size_class] only (central.c, and span.c's
 *     functions, which its callers hold that lock for);
 *   - every object of a small-object span is in exactly one place: handed out
 *     (counted in allocated_count: the program, a thread cache, a central
 *     stack), on free_list, not yet carved (at or past carve_next), stranded
 *     (stranded_map), or taken out for a release inside the span
 *     (taken_out_map, while is_releasing_inside). */
#ifndef TCM_CORE_SPAN_H
#define TCM_CORE_SPAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os.h"           /* TCM_PAGE_BYTES */
#include "size_class.h"

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
	_Atomic uint8_t  may_release_inside; /* small spans with an object map: objects came back
	                                        since its last release inside (allocated_count below
	                                        allocated_count_at_inside_release), or that release was
	                                        cut short; written under central[size_class], read
	                                        without it by the walk, which checks again under the lock */
	/* Small-object spans only, guarded by central[size_class]: */
	uint32_t         allocated_count;  /* objects handed out of the span (caches, stacks, program) */
	void            *free_list;        /* objects given back, linked through their first word */
	uintptr_t        carve_next;       /* first never-used object */
	uintptr_t        carve_end;        /* end of the last whole object */
	uint8_t          is_uncarved_unbacked; /* the pages past the claims' reach are fresh or
	                                          released memory, not resident (claims populate
	                                          them); else committed memory that may hold
	                                          pages released inside in an earlier life (claims
	                                          touch them) */
	uint32_t         allocated_count_at_inside_release; /* allocated_count when free pages
	                                                       inside were last released; UINT32_MAX: never */
	/* Classes with an object map (tcm_size_classes[c].has_object_map), bit i
	 * standing for object i: */
	uint64_t         stranded_map;     /* on a released page: free, on no list, reads zero;
	                                      handed out once nothing else is left */
	uint64_t         listed_map;       /* on free_list */
	uint64_t         taken_out_map;    /* while is_releasing_inside: the free objects the releaser
	                                      took out (a fork child gets them back) */
};

/* Object 0 of a small-object span: the bytes that fit no whole object come
 * first (size_class.h, first_object_offset). */
static inline uintptr_t tcm_span_first_object(const struct tcm_span *span)
{
	return span->start + tcm_size_classes[span->size_class].first_object_offset;
}

/* The bit of object in the object map of its span (a span of a class with an
 * object map: at most 64 objects). */
static inline uint64_t tcm_span_object_bit(const struct tcm_span *span, const void *object)
{
	const struct tcm_size_class_info *info = &tcm_size_classes[span->size_class];
	uintptr_t offset = (uintptr_t)object - tcm_span_first_object(span);
	return (uint64_t)1 << ((offset * info->object_index_multiplier) >> 32);
}

/* Whether span has an object to hand out: listed, not yet carved, or stranded. */
static inline bool tcm_span_has_free(const struct tcm_span *span)
{
	return span->free_list != NULL || span->carve_next < span->carve_end || span->stranded_map != 0;
}

/* The span's objects and maps as a fresh span of its class has them: none
 * handed out, all to be carved; is_fresh_memory: its pages come from fresh or
 * released memory (not resident, read zero), so claims of its uncarved objects
 * are populated rather than touched (is_uncarved_unbacked). */
void tcm_span_start_carving(struct tcm_span *span, bool is_fresh_memory);

/* Takes up to want objects off the span's free list, pushing them onto the
 * chain *head; returns how many. They were written when they were given back,
 * so their pages are resident: this runs under the class lock. Inline: every
 * refill from the spans runs it. */
static inline uint32_t tcm_span_take_listed(struct tcm_span *span, uint32_t want, void **head)
{
	const bool has_object_map = tcm_size_classes[span->size_class].has_object_map;
	uint32_t taken = 0;
	while (taken < want && span->free_list != NULL) {
		void *object = span->free_list;
		span->free_list = *(void **)object;
		if (has_object_map)
			span->listed_map &= ~tcm_span_object_bit(span, object);
		*(void **)object = *head;
		*head = object;
		taken++;
	}
	span->allocated_count += taken;
	return taken;
}

/* Objects claimed from the uncarved part of a span: count of them from first,
 * the caller's from the claim on, not yet written. */
struct tcm_span_claim {
	uintptr_t first;
	uint32_t  count;
	uint32_t  object_bytes;
	uintptr_t fault_in_from;      /* the claim's first byte on a page no earlier claim reached */
	bool      is_unbacked;        /* those pages are fresh or released: populate, not touch */
	uintptr_t span_start, span_end;   /* a populate may reach this far past the claim */
};

/* Claims up to want never-used objects of the span, in address order, without
 * writing into them: the class lock is held only for the pointer's move, and the
 * pages they lie on are made resident (possibly a system call or page faults)
 * and the objects linked with tcm_span_link_claim once it is dropped. Returns
 * how many. */
static inline uint32_t tcm_span_claim_uncarved(struct tcm_span *span, uint32_t want, struct tcm_span_claim *claim,
					       size_t kernel_page_bytes)
{
	const size_t object_bytes = tcm_size_classes[span->size_class].object_bytes;
	uintptr_t first = span->carve_next;
	size_t left = (span->carve_end - first) / object_bytes;
	uint32_t count = want < left ? want : (uint32_t)left;
	span->carve_next = first + count * object_bytes;
	span->allocated_count += count;
	/* An earlier claim, which ended at first, made first's page resident, unless
	 * first is the span's first object. */
	bool is_first_claim = first == tcm_span_first_object(span);
	*claim = (struct tcm_span_claim){
		.first = first,
		.count = count,
		.object_bytes = (uint32_t)object_bytes,
		.fault_in_from = is_first_claim ? first : (first + kernel_page_bytes - 1) & ~(uintptr_t)(kernel_page_bytes - 1),
		.is_unbacked = span->is_uncarved_unbacked != 0,
		.span_start = span->start,
		.span_end = span->start + (uintptr_t)tcm_size_classes[span->size_class].span_pages * TCM_PAGE_BYTES,
	};
	return count;
}

/* Links the claim's objects onto the chain *head, the last one first (as
 * carving pushed them). Needs no lock: the objects are the caller's, and their
 * pages resident (or faulted in here, with no lock held). */
void tcm_span_link_claim(const struct tcm_span_claim *claim, void **head);

/* Claims up to want of the span's stranded objects, lowest first, and only
 * those that start on the kernel page of the lowest: they count as handed out
 * from here on, and *claimed has their bits, to be linked with
 * tcm_span_link_objects after the lock is dropped. Linking them faults their
 * page back in (a link is an object's first word, on the page it starts on),
 * and a claim is on a malloc's path (a refill), so it costs at most one page
 * fault, whatever was asked for. Returns how many. */
uint32_t tcm_span_claim_stranded(struct tcm_span *span, uint32_t want, uint64_t *claimed);

/* Links the objects of map (bits of a span whose object 0 is at first_object)
 * onto the chain *head, lowest bit first onto it; *tail, when not NULL, gets
 * the object that ends up last (the lowest one), NULL for an empty map. Needs
 * no lock: the objects are the caller's. */
void tcm_span_link_objects(uintptr_t first_object, size_t object_bytes, uint64_t map, void **head, void **tail);

#endif
