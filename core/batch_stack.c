/* core/batch_stack.c - the tagged Treiber stack of batches (see batch_stack.h).
 *
 * Invariants: the count word of an entry is written before the push's release
 * CAS and read after the pop's acquire CAS; the link word may be read stale by
 * a losing popper, which then retries. Never: allocates, blocks, or makes a
 * system call. */
#include "batch_stack.h"

#include "debug.h"

#include <stddef.h>

#define ADDRESS_SHIFT 4
#define TAG_SHIFT     44
#define ADDRESS_MASK  (((uint64_t)1 << TAG_SHIFT) - 1)

static uint64_t pack(void *first, uint64_t old_head)
{
	uint64_t tag = (old_head >> TAG_SHIFT) + 1;
	return (tag << TAG_SHIFT) | ((uint64_t)(uintptr_t)first >> ADDRESS_SHIFT);
}

static void *unpack(uint64_t head)
{
	return (void *)(uintptr_t)((head & ADDRESS_MASK) << ADDRESS_SHIFT);
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
	uint64_t old_head = atomic_load_explicit(&stack->head, memory_order_relaxed);
	uint64_t new_head;
	do {
		atomic_store_explicit(second_word(first), (uintptr_t)unpack(old_head), memory_order_relaxed);
		new_head = pack(first, old_head);
	} while (!atomic_compare_exchange_weak_explicit(&stack->head, &old_head, new_head,
			memory_order_release, memory_order_relaxed));
	atomic_fetch_add_explicit(&stack->entries, 1, memory_order_relaxed);
}

void *tcm_batch_stack_pop(struct tcm_batch_stack *stack, uint32_t *count)
{
	uint64_t old_head = atomic_load_explicit(&stack->head, memory_order_acquire);
	void *first;
	for (;;) {
		first = unpack(old_head);
		if (first == NULL)
			return NULL;
		void *next = (void *)atomic_load_explicit(second_word(first), memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&stack->head, &old_head, pack(next, old_head),
				memory_order_acquire, memory_order_acquire))
			break;
	}
	atomic_fetch_sub_explicit(&stack->entries, 1, memory_order_relaxed);
	void *second = *(void **)first;
	*count = second == NULL ? 1 : (uint32_t)atomic_load_explicit(second_word(second), memory_order_relaxed);
	return first;
}
