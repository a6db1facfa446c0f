/* core/batch_stack.h - a lock-free stack of whole batches of free objects
 * (the transfer path between thread caches and a central list), and nothing else.
 *
 * An entry is a chain of count >= 1 objects of one size class, linked through
 * each object's first word. While on the stack, the first object's second word
 * links to the next entry; when count >= 2, the second object's second word
 * holds count (a 16-byte object has room for exactly this), and count == 1 is
 * marked by a NULL chain link.
 *
 * ABA safety: the head is two 64-bit words, the first object's address and a
 * tag that every successful push and pop increments, changed together by one
 * 16-byte compare-and-swap (cmpxchg16b on x86_64, a pair of exclusives on
 * aarch64). A pop that read a stale "next" fails its compare-and-swap unless
 * 2^64 other operations completed in between: the tag cannot wrap during one
 * preempted pop however long the preemption (a tag of a few bits packed beside
 * the address would wrap within milliseconds of a busy class). A stale read of a popped object's memory
 * cannot fault: small-object memory is never unmapped (DESIGN invariant 9).
 *
 * The entry count is approximate under concurrency (updated after the CAS),
 * and serves the capacity rule of DESIGN invariant 8 only. */
#ifndef TCM_CORE_BATCH_STACK_H
#define TCM_CORE_BATCH_STACK_H

#include <stdatomic.h>
#include <stdint.h>

struct tcm_batch_stack {
	/* Written only by the 16-byte compare-and-swap; read a word at a time
	 * (a torn pair only makes that compare-and-swap fail). */
	_Alignas(16) _Atomic uint64_t head_first;   /* the top entry's first object, 0: empty */
	_Atomic uint64_t head_tag;                  /* successful pushes and pops so far */
	_Atomic int32_t  entries;    /* approximate (may dip below 0 for a moment) */
};

/* Pushes the chain first..(count objects). Lock-free; never blocks. */
void tcm_batch_stack_push(struct tcm_batch_stack *stack, void *first, uint32_t count);

/* Pops one entry: returns its first object and sets *count, or NULL. */
void *tcm_batch_stack_pop(struct tcm_batch_stack *stack, uint32_t *count);

static inline uint32_t tcm_batch_stack_entries(struct tcm_batch_stack *stack)
{
	int32_t entries = atomic_load_explicit(&stack->entries, memory_order_relaxed);
	return entries > 0 ? (uint32_t)entries : 0;
}

#endif
