/* core/batch_stack.c - the tagged Treiber stack of batches (see batch_stack.h).
 *
 * Invariants: the count word of an entry is written before the push's
 * compare-and-swap and read after the pop's (each a full barrier); the link
 * word may be read stale by a losing popper, whose swap then fails because
 * the tag moved; the head changes only through the 16-byte swap.
 * Never: allocates, blocks, or makes a system call. */
#include "batch_stack.h"

#include "debug.h"

#include <stdbool.h>
#include <stddef.h>

/* The head's two words as one value for the 16-byte compare-and-swap (the
 * address in the low word: both supported targets are little-endian). */
typedef unsigned __int128 head_pair __attribute__((may_alias, aligned(16)));

static head_pair pair_of(uint64_t first, uint64_t tag)
{
	return (head_pair)tag << 64 | first;
}

/* Replaces the head with desired if it still is expected; *expected gets
 * the head as found. A full barrier either way. */
static bool head_swap(struct tcm_batch_stack *stack, head_pair *expected, head_pair desired)
{
	head_pair found = __sync_val_compare_and_swap((head_pair *)&stack->head_first, *expected, desired);
	bool swapped = found == *expected;
	*expected = found;
	return swapped;
}

/* The head read a word at a time: the tag first, with acquire, so that the
 * address read after it is at least as new. */
static head_pair head_read(struct tcm_batch_stack *stack)
{
	uint64_t tag = atomic_load_explicit(&stack->head_tag, memory_order_acquire);
	uint64_t first = atomic_load_explicit(&stack->head_first, memory_order_acquire);
	return pair_of(first, tag);
}

static uint64_t first_of(head_pair head)
{
	return (uint64_t)head;
}

static uint64_t tag_of(head_pair head)
{
	return (uint64_t)(head >> 64);
}

/* The second word of an object, accessed atomically because a losing popper
 * may read it while its new owner writes it. */
static _Atomic uintptr_t *second_word(void *object)
{
	return (_Atomic uintptr_t *)((uintptr_t *)object + 1);
}

void tcm_batch_stack_push(struct tcm_batch_stack *stack, void *first, uint32_t count)
{
	TCM_ASSERT(first != NULL && count >= 1 && ((uintptr_t)first & 15) == 0);
	if (count >= 2)
		atomic_store_explicit(second_word(*(void **)first), count, memory_order_relaxed);
	else
		*(void **)first = NULL;
	head_pair head = head_read(stack);
	do
		atomic_store_explicit(second_word(first), (uintptr_t)first_of(head), memory_order_relaxed);
	while (!head_swap(stack, &head, pair_of((uint64_t)(uintptr_t)first, tag_of(head) + 1)));
	atomic_fetch_add_explicit(&stack->entries, 1, memory_order_relaxed);
}

void *tcm_batch_stack_pop(struct tcm_batch_stack *stack, uint32_t *count)
{
	head_pair head = head_read(stack);
	void *first;
	for (;;) {
		first = (void *)(uintptr_t)first_of(head);
		if (first == NULL)
			return NULL;
		/* Maybe stale (first popped and reused meanwhile): then the tag has
		 * moved on and the swap fails. */
		uint64_t next = atomic_load_explicit(second_word(first), memory_order_relaxed);
		if (head_swap(stack, &head, pair_of(next, tag_of(head) + 1)))
			break;
	}
	atomic_fetch_sub_explicit(&stack->entries, 1, memory_order_relaxed);
	void *second = *(void **)first;
	*count = second == NULL ? 1 : (uint32_t)atomic_load_explicit(second_word(second), memory_order_relaxed);
	return first;
}
