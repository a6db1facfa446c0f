/* core/central.h - per-size-class central free lists: a lock-free stack of
 * whole batches (the transfer path) in front of the class's spans, which sit
 * under a short per-class lock.
 *
 * Invariants:
 *   - a give-back never waits for the class lock. In NORMAL the stack holds
 *     at most its capacity of entries, except after a dying thread's push
 *     (DESIGN invariant 4) or a give-back that found the lock busy; a
 *     give-back that finds the stack full and the lock free returns its batch
 *     to the spans (invariant 8) and one entry of any overflow with it, so
 *     the overflow shrinks back with the next frees of the class.
 *     From DRAINING on, every give-back pushes: the release worker is draining
 *     the stacks, and a shutdown must not funnel its frees into class locks;
 *   - a span is on the class's list exactly when it has a free object (on
 *     its free list, not yet carved, or stranded on a released page);
 *   - stranded objects are handed out only once a span has no other free
 *     object, and are linked with no lock held (that faults their pages in);
 *   - spans that become empty are collected under the lock and handed to the
 *     page heap after it is dropped, as one list (invariant 8);
 *   - every hold of central[class] is bounded by TCM_CENTRAL_OBJECTS_PER_HOLD
 *     objects of pointer work (invariant 2). */
#ifndef TCM_CORE_CENTRAL_H
#define TCM_CORE_CENTRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCM_CENTRAL_OBJECTS_PER_HOLD 64

struct tcm_lock;
struct tcm_span;

/* Sets each class's capacity and lock. Called once at bootstrap. */
void tcm_central_init(void);

/* Returns a NULL-terminated chain of 1..want objects of size_class linked
 * through their first word, and its length in *count; NULL when the heap
 * cannot grow (ENOMEM). An entry popped from the stack is taken whole, so
 * *count may exceed want when want > 1 (a dying thread's entry).
 * REQUIRES: no tcm lock held. */
void *tcm_central_fetch(unsigned size_class, uint32_t want, uint32_t *count);

/* Takes back a chain of count objects. Pushes it on the stack, unless the
 * stack is full, the class lock is free, is_thread_exit is false and core is
 * in NORMAL: then the objects go back to their spans. Never waits for a lock.
 * REQUIRES: no tcm lock held. */
void tcm_central_give_back(unsigned size_class, void *first, uint32_t count, bool is_thread_exit);

/* A thread helping the drain (core/release.h) takes back a chain of count
 * objects straight to their spans, past the stack, so that the spans it
 * empties reach the page heap now; emptied spans go there. When the class lock
 * is busy it does not wait (DESIGN invariant 8): the chain goes on the stack.
 * REQUIRES: no tcm lock held. */
void tcm_central_give_back_to_spans(unsigned size_class, void *first, uint32_t count);

/* Takes back one object straight to its span, past the stack: for an object
 * the next refill should not be handed first. When the class lock is busy it
 * does not wait (DESIGN invariant 8) and takes nothing: false, the object
 * still the caller's. REQUIRES: no tcm lock held. */
bool tcm_central_give_back_to_span(unsigned size_class, void *object);

/* When the stack holds more than keep_entries, pops one entry and returns its
 * objects to the spans (emptied spans go to the page heap); one bounded step
 * of the release path. Returns the objects moved, 0 when there was nothing
 * above keep_entries. REQUIRES: no tcm lock held. */
size_t tcm_central_drain_one(unsigned size_class, uint32_t keep_entries);

/* tcm_central_drain_one until at most keep_entries remain. Returns the objects moved. */
size_t tcm_central_drain(unsigned size_class, uint32_t keep_entries);

/* Free pages inside partly used spans (release.h, and the offset of a fresh
 * span: see fetch). Only classes of at least this many bytes, whose spans
 * hold at most 64 objects and more bytes than one kernel page (at most 64 of
 * them), are eligible: with smaller objects a kernel page is almost never
 * free whole while its span is in use, and a span of one kernel page or less
 * has one free whole only once it is empty (64 KiB pages: most classes). */
#define TCM_CENTRAL_INSIDE_SPAN_MIN_OBJECT_BYTES 256
bool tcm_central_may_release_inside_spans(unsigned size_class);

/* Releases the whole kernel pages inside span (an in-use span of an eligible
 * size_class that starts at span_start, as read lock-free from the page map,
 * not necessarily on a kernel page) that hold only free objects, at most
 * max_bytes in all; a kernel page shared with a neighbour span is never
 * released. The span's free list is taken out under the class lock, the
 * pages are worked out and released with no lock held, and the objects on
 * kept pages are linked back under the lock. Objects on released pages become
 * the span's stranded objects: a fetch hands them out (faulting their pages
 * back in) once the span has no other free object, and a span that empties
 * goes back to the page heap whole (where its released pages count as
 * committed). A span whose allocated_objects did not drop since its last
 * release is skipped. Returns the bytes released; 0 when the span was not
 * eligible any more or had no whole free page. REQUIRES: no tcm lock held. */
size_t tcm_central_release_inside_span(struct tcm_span *span, unsigned size_class, uintptr_t span_start,
				       size_t max_bytes);

/* Walks the page map, lock-free, from where the last walk stopped, taking
 * the free lists of spans of eligible classes with whole free kernel pages
 * inside out as tcm_central_release_inside_span does, until they come to
 * max_bytes, 32 spans or TCM_OS_RELEASE_RANGES_MAX runs of pages, and
 * releases them together: one system call where the kernel allows it
 * (core/os.h; one madvise per run cost 60 us a run on a two-CPU guest, most
 * of a drain's CPU). Returns the bytes released; 0 when the walk looked at
 * max_pages_walked pages of small-object spans (the next one goes on from
 * there) or reached the end of the map (the next one starts over) without
 * finding any. REQUIRES: no tcm lock held. */
size_t tcm_central_release_inside_spans(size_t max_bytes, size_t max_pages_walked);

/* In a fork child, after the locks are reset: the free objects of spans a
 * thread of the parent had taken out for a release inside them become the
 * spans' stranded objects (that thread does not exist in the child). */
void tcm_central_after_fork_in_child(void);

/* Bytes released inside spans, and the system calls that released them, since start. */
void tcm_central_inside_span_release_stats(uint64_t *released_bytes, uint64_t *release_calls);

/* The stack's capacity in entries (fixed after init). */
uint32_t tcm_central_capacity(unsigned size_class);

/* Bytes of free objects held by all central lists (stacks and spans). */
uint64_t tcm_central_cached_bytes(void);

/* One class's counts now, read with no lock (each may be off by objects in
 * flight between two places, never below 0). */
struct tcm_central_class_stats {
	uint64_t spans;                 /* spans the class holds */
	uint64_t stack_objects;         /* free objects on its lock-free stack */
	uint64_t span_free_objects;     /* free objects in its spans: listed, not yet carved, stranded */
	uint64_t objects_out_of_spans;  /* in thread caches, on the stack or the program's */
};
void tcm_central_class_stats(unsigned size_class, struct tcm_central_class_stats *out);

struct tcm_lock *tcm_central_lock(unsigned size_class);

#endif
