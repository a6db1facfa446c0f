/* core/inside_release.h - releasing the free pages inside small-object spans
 * still in use: a kernel page that holds only free objects of a span goes
 * back to the kernel while the span's other objects stay in use. Together with
 * the page heap's release step (page_heap.h) this is what release.h's steps
 * and the drain give back.
 *
 * How: the page map is walked lock-free for spans of classes with an object
 * map (size_class.h: has_object_map) that had objects back since their last
 * release; each such span's free list is taken out in one hold of its class
 * lock (central.h), the kernel pages holding only free objects are worked out
 * from the object map with no lock held, up to 32 spans' runs of pages are
 * released together (one system call where the kernel allows it: os.h), and a
 * second hold puts back the objects on kept pages. Objects on released pages
 * become the span's stranded objects (span.h): a fetch hands out those of one
 * page, faulting it back in, once the span has no other free object, and a span that
 * empties goes back to the page heap whole (where its released pages count as
 * committed).
 *
 * Invariants: no lock is held across a system call; a kernel page shared
 * with a neighbour span is never released (DESIGN invariant 11); every hold
 * is one span's bookkeeping (invariant 2). */
#ifndef TCM_CORE_INSIDE_RELEASE_H
#define TCM_CORE_INSIDE_RELEASE_H

#include <stddef.h>
#include <stdint.h>

struct tcm_span;

/* Walks the page map, lock-free, from where the last walk stopped, releasing
 * the free kernel pages inside spans in use until they come to max_bytes, 32
 * spans or TCM_OS_RELEASE_RANGES_MAX runs of pages, all in one batch. Returns
 * the bytes released; 0 when the walk looked at max_pages_walked pages of
 * small-object spans (the next one goes on from there) or reached the end of
 * the map (the next one starts over) without finding any. REQUIRES: no tcm
 * lock held. */
size_t tcm_inside_release_walk(size_t max_bytes, size_t max_pages_walked);

/* Bytes released inside spans, and the system calls that released them, since start. */
void tcm_inside_release_totals(uint64_t *released_bytes, uint64_t *release_calls);

#ifdef TCM_TESTING
/* The release of one span, as the walk does it for each: span is an in-use
 * span of a class with an object map that starts at span_start, as read
 * lock-free from the page map. At most max_bytes. Returns the bytes released. */
size_t tcm_inside_release_span(struct tcm_span *span, unsigned size_class, uintptr_t span_start, size_t max_bytes);
#endif

#endif
