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
 *     its free list, not yet carved, or stranded on a released page); a span
 *     some of whose objects were just stranded is put at the end of the list,
 *     and fetches take from the front;
 *   - stranded objects are handed out only once a span has no other free
 *     object, those of one kernel page per fetch, and are linked with no lock
 *     held (that faults their page in: at most one per fetch);
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

/* A release of the free pages inside a span in use (core/inside_release.c)
 * takes the span's free list out in one hold of the class lock, works out
 * with no lock held which kernel pages hold only free objects and releases
 * them, and puts back in a second hold what stays listed. Until then no one
 * else frees the span, even if its last allocated object comes back, and no
 * second releaser takes it. */
struct tcm_central_taken {
	void     *free_list;      /* the objects taken out, linked (for the debug check) */
	uint64_t  free_map;       /* the same objects' bits (span.h, object map) */
	uintptr_t carved_bytes;   /* the span's bytes from its start to the first never-carved object */
};

/* Hold 1, for a span of a class with an object map that starts at
 * span_start, as read lock-free from the page map: false, with nothing taken,
 * when the span is not that class's any more, is being released by someone
 * else, or has had no object back since its last release (or when every
 * releasing slot is taken); else *out. REQUIRES: no tcm lock held. */
bool tcm_central_take_free_list(struct tcm_span *span, unsigned size_class, uintptr_t span_start,
				struct tcm_central_taken *out);

/* One span's release inside it, as hold 2 takes it: the objects that stay
 * listed (linked with no lock held, from kept_head to kept_tail), those left
 * on released pages (stranded from here on), and whether the release was cut
 * short (then the span may be released inside again at once). */
struct tcm_central_inside_release {
	struct tcm_span *span;
	unsigned         size_class;
	uint64_t         kept_map, stranded_map;
	void            *kept_head, *kept_tail;
	bool             is_cut_short;
};

/* Hold 2: splices the kept objects back and notes the stranded ones; the span
 * leaves central if it emptied meanwhile, and goes to the page heap after the
 * lock is dropped. REQUIRES: no tcm lock held. */
void tcm_central_end_inside_release(const struct tcm_central_inside_release *release);

/* In a fork child, after the locks are reset: the free objects of spans a
 * thread of the parent had taken out for a release inside them become the
 * spans' stranded objects (that thread does not exist in the child). */
void tcm_central_after_fork_in_child(void);

/* The stack's capacity in entries (fixed per class). */
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

/* The class's lock itself (fork handlers, stats); taking it is tcm_lock's. */
struct tcm_lock *tcm_central_lock_object(unsigned size_class);

#endif
