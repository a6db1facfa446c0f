/* tests/unit/batch_stack_test.c - the lock-free batch stack: LIFO order,
 * entries of count 1 and count >= 2 with their chains intact, the entry
 * counter, tag wrap-around, and the ABA test: many threads popping and
 * pushing a fixed set of entries between two stacks, after which every
 * object is present exactly once and every entry's count and chain are intact.
 *
 * Objects come from glibc's aligned_alloc(16, ...): 16-byte aligned and below
 * 2^48 as the stack requires. Each object is 64 bytes; the stack owns words 0
 * and 1, and the test keeps its own identity marks in words 2 and 3. */
#include "unit.h"

#include "batch_stack.h"

#include <pthread.h>
#include <stdlib.h>

#define OBJECT_BYTES 64

struct object {
	void     *link;        /* word 0: chain link (the stack's) */
	uintptr_t stack_word;  /* word 1: the stack's */
	uintptr_t entry_id;    /* word 2: which entry this object belongs to */
	uintptr_t index;       /* word 3: position within its entry */
	char      pad[OBJECT_BYTES - 4 * sizeof(uintptr_t)];
};

static struct object *new_object(uintptr_t entry_id, uintptr_t index)
{
	struct object *object = aligned_alloc(16, sizeof(struct object));
	assert_non_null(object);
	assert_int_equal((uintptr_t)object & 15, 0);
	memset(object, 0, sizeof(*object));
	object->entry_id = entry_id;
	object->index = index;
	return object;
}

/* A NULL-terminated chain of count fresh objects marked (entry_id, 0..count-1). */
static struct object *new_chain(uintptr_t entry_id, uint32_t count)
{
	struct object *first = NULL;
	for (uint32_t i = count; i-- > 0;) {
		struct object *object = new_object(entry_id, i);
		object->link = first;
		first = object;
	}
	return first;
}

static void free_chain(struct object *first, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct object *next = first->link;
		free(first);
		first = next;
	}
}

/* True when first..count objects carry entry_id and indexes 0..count-1 in order. */
static bool chain_is_intact(struct object *first, uintptr_t entry_id, uint32_t count)
{
	struct object *object = first;
	for (uint32_t i = 0; i < count; i++) {
		if (object == NULL || object->entry_id != entry_id || object->index != i)
			return false;
		object = object->link;
	}
	return true;
}

/* ---- single-threaded behaviour ---------------------------------------------- */

static void empty_stack_pops_null(void **state)
{
	(void)state;
	struct tcm_batch_stack stack = { 0 };
	uint32_t count = 12345;
	assert_null(tcm_batch_stack_pop(&stack, &count));
	assert_int_equal(tcm_batch_stack_entries(&stack), 0);
}

static void lifo_with_counts(void **state)
{
	(void)state;
	struct tcm_batch_stack stack = { 0 };
	static const uint32_t counts[] = { 1, 2, 3, 1, 32, 5, 1, 1, 2, 1000 };
	enum { N = sizeof(counts) / sizeof(counts[0]) };
	struct object *chains[N];
	for (uintptr_t i = 0; i < N; i++) {
		chains[i] = new_chain(i, counts[i]);
		tcm_batch_stack_push(&stack, chains[i], counts[i]);
		assert_int_equal(tcm_batch_stack_entries(&stack), i + 1);
	}
	for (size_t i = N; i-- > 0;) {
		uint32_t count = 0;
		struct object *first = tcm_batch_stack_pop(&stack, &count);
		assert_ptr_equal(first, chains[i]);
		assert_int_equal(count, counts[i]);
		assert_true(chain_is_intact(first, i, count));
		assert_int_equal(tcm_batch_stack_entries(&stack), i);
	}
	uint32_t count;
	assert_null(tcm_batch_stack_pop(&stack, &count));
	for (size_t i = 0; i < N; i++)
		free_chain(chains[i], counts[i]);
}

static void interleaved_push_pop(void **state)
{
	(void)state;
	struct tcm_batch_stack stack = { 0 };
	struct object *a = new_chain(1, 1), *b = new_chain(2, 4), *c = new_chain(3, 2);
	uint32_t count;
	tcm_batch_stack_push(&stack, a, 1);
	tcm_batch_stack_push(&stack, b, 4);
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), b);
	assert_int_equal(count, 4);
	tcm_batch_stack_push(&stack, c, 2);
	tcm_batch_stack_push(&stack, b, 4);   /* the same entry again */
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), b);
	assert_int_equal(count, 4);
	assert_true(chain_is_intact(b, 2, 4));
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), c);
	assert_int_equal(count, 2);
	assert_true(chain_is_intact(c, 3, 2));
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), a);
	assert_int_equal(count, 1);
	assert_null(tcm_batch_stack_pop(&stack, &count));
	assert_int_equal(tcm_batch_stack_entries(&stack), 0);
	free_chain(a, 1);
	free_chain(b, 4);
	free_chain(c, 2);
}

static void count_one_entry_after_longer_one(void **state)
{
	(void)state;
	/* The same first object pushed as a 3-chain, popped, then pushed alone:
	 * the stale count in the old second object must not leak into the new entry. */
	struct tcm_batch_stack stack = { 0 };
	struct object *chain = new_chain(9, 3);
	struct object *second = chain->link;
	uint32_t count;
	tcm_batch_stack_push(&stack, chain, 3);
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), chain);
	assert_int_equal(count, 3);
	chain->link = NULL;
	tcm_batch_stack_push(&stack, chain, 1);
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), chain);
	assert_int_equal(count, 1);
	free(chain);
	free_chain(second, 2);
}

static void tag_wraps_around(void **state)
{
	(void)state;
	/* More than 2^20 operations on one object (where a 20-bit tag wrapped):
	 * the stack keeps working. */
	struct tcm_batch_stack stack = { 0 };
	struct object *under = new_chain(1, 2);
	struct object *top = new_chain(2, 3);
	tcm_batch_stack_push(&stack, under, 2);
	uint32_t count;
	for (uint32_t i = 0; i < (1u << 20) + 1000; i++) {
		tcm_batch_stack_push(&stack, top, 3);
		if (tcm_batch_stack_pop(&stack, &count) != top || count != 3)
			fail_msg("iteration %u: pop did not return the entry just pushed", i);
	}
	assert_int_equal(tcm_batch_stack_entries(&stack), 1);
	assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), under);
	assert_int_equal(count, 2);
	assert_true(chain_is_intact(under, 1, 2));
	assert_null(tcm_batch_stack_pop(&stack, &count));
	free_chain(under, 2);
	free_chain(top, 3);
}

/* What a pop preempted between reading the head and its compare-and-swap
 * holds: the head as it was. After 2^20 pushes and pops that bring the same
 * object back to the top (a busy class in a few tens of milliseconds), the
 * head must not read the same, or that pop's swap would succeed with a next
 * pointer that is no longer true. A 20-bit tag packed beside the address
 * came back to the same word. */
static void stale_head_never_matches_after_many_operations(void **state)
{
	(void)state;
	struct tcm_batch_stack stack = { 0 };
	struct object *under = new_chain(1, 2);
	struct object *top = new_chain(2, 3);
	tcm_batch_stack_push(&stack, under, 2);
	tcm_batch_stack_push(&stack, top, 3);
	uint64_t seen_first = atomic_load(&stack.head_first);
	uint64_t seen_tag = atomic_load(&stack.head_tag);
	uint32_t count;
	for (uint32_t i = 0; i < (1u << 19); i++) {
		assert_ptr_equal(tcm_batch_stack_pop(&stack, &count), top);
		tcm_batch_stack_push(&stack, top, 3);
	}
	assert_int_equal(atomic_load(&stack.head_first), seen_first);   /* the same object on top */
	assert_true(atomic_load(&stack.head_tag) != seen_tag);
	assert_int_equal(atomic_load(&stack.head_tag), seen_tag + (2u << 19));
	free_chain(under, 2);
	free_chain(top, 3);
}

/* ---- many threads: the ABA test -------------------------------------------------- */

#define ABA_THREADS    8
#define ABA_ENTRIES    16
#define ABA_ITERATIONS 150000

struct entry_record {
	struct object *first;
	uint32_t       count;
};

static struct tcm_batch_stack aba_stacks[2];
static struct entry_record aba_entries[ABA_ENTRIES];
static pthread_barrier_t aba_barrier;

static uint32_t entry_count_of(uintptr_t id)
{
	return (uint32_t)(id % 5) + 1;   /* 1..5: count-1 entries and chains mixed */
}

/* Checks that a popped entry is one of ours, whole. */
static void check_popped(struct object *first, uint32_t count)
{
	UNIT_THREAD_CHECK(first->entry_id < ABA_ENTRIES);
	if (first->entry_id >= ABA_ENTRIES)
		return;
	UNIT_THREAD_CHECK(aba_entries[first->entry_id].first == first);
	UNIT_THREAD_CHECK(count == entry_count_of(first->entry_id));
	UNIT_THREAD_CHECK(chain_is_intact(first, first->entry_id, entry_count_of(first->entry_id)));
}

static void *aba_worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	pthread_barrier_wait(&aba_barrier);
	for (int i = 0; i < ABA_ITERATIONS; i++) {
		seed = seed * 1103515245u + 12345u;
		struct tcm_batch_stack *from = &aba_stacks[(seed >> 16) & 1];
		struct tcm_batch_stack *to = &aba_stacks[(seed >> 17) & 1];
		uint32_t count_a, count_b;
		struct object *a = tcm_batch_stack_pop(from, &count_a);
		if (a == NULL)
			continue;
		check_popped(a, count_a);
		if ((seed >> 18) & 1) {
			/* Hold two entries and push them back in the other order: the
			 * pattern that lets an untagged head succeed with a stale next. */
			struct object *b = tcm_batch_stack_pop(from, &count_b);
			if (b != NULL) {
				check_popped(b, count_b);
				tcm_batch_stack_push(to, a, count_a);
				tcm_batch_stack_push(from, b, count_b);
				continue;
			}
		}
		tcm_batch_stack_push(to, a, count_a);
	}
	return NULL;
}

static void threads_lose_and_duplicate_nothing(void **state)
{
	(void)state;
	memset(aba_stacks, 0, sizeof(aba_stacks));
	for (uintptr_t id = 0; id < ABA_ENTRIES; id++) {
		aba_entries[id].count = entry_count_of(id);
		aba_entries[id].first = new_chain(id, aba_entries[id].count);
		tcm_batch_stack_push(&aba_stacks[id & 1], aba_entries[id].first, aba_entries[id].count);
	}
	pthread_t threads[ABA_THREADS];
	pthread_barrier_init(&aba_barrier, NULL, ABA_THREADS);
	for (uintptr_t i = 0; i < ABA_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, aba_worker, (void *)i), 0);
	for (int i = 0; i < ABA_THREADS; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&aba_barrier);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);

	/* Every entry exactly once, whole; both stacks then empty. */
	int seen[ABA_ENTRIES] = { 0 };
	uint32_t entries_counted = tcm_batch_stack_entries(&aba_stacks[0]) + tcm_batch_stack_entries(&aba_stacks[1]);
	assert_int_equal(entries_counted, ABA_ENTRIES);
	for (int s = 0; s < 2; s++) {
		uint32_t count;
		struct object *first;
		/* Bounded: a stack corrupted into a cycle fails here instead of hanging. */
		for (int pops = 0; (first = tcm_batch_stack_pop(&aba_stacks[s], &count)) != NULL; pops++) {
			assert_true(pops < ABA_ENTRIES);
			assert_true(first->entry_id < ABA_ENTRIES);
			assert_ptr_equal(aba_entries[first->entry_id].first, first);
			assert_int_equal(count, aba_entries[first->entry_id].count);
			assert_true(chain_is_intact(first, first->entry_id, count));
			seen[first->entry_id]++;
		}
		assert_int_equal(tcm_batch_stack_entries(&aba_stacks[s]), 0);
	}
	for (int id = 0; id < ABA_ENTRIES; id++)
		if (seen[id] != 1)
			fail_msg("entry %d seen %d times", id, seen[id]);
	for (int id = 0; id < ABA_ENTRIES; id++)
		free_chain(aba_entries[id].first, aba_entries[id].count);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(empty_stack_pops_null),
	cmocka_unit_test(lifo_with_counts),
	cmocka_unit_test(interleaved_push_pop),
	cmocka_unit_test(count_one_entry_after_longer_one),
	cmocka_unit_test(tag_wraps_around),
	cmocka_unit_test(stale_head_never_matches_after_many_operations),
	cmocka_unit_test(threads_lose_and_duplicate_nothing),
};

UNIT_MAIN("batch_stack", tests)
