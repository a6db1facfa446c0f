/* core/central.c - central free lists: the batch stack, the class's spans,
 * carving new spans, and giving emptied spans back to the page heap.
 *
 * Invariants: see central.h. A new span is carved privately (no lock) and
 * published on the class list only if objects remain in it. */
#include "central.h"

#include "batch_stack.h"
#include "lock.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_class.h"
#include "state.h"

#define STACK_TARGET_BYTES (512 * 1024)
#define STACK_MIN_ENTRIES  2
#define STACK_MAX_ENTRIES  64

struct central {
	struct tcm_batch_stack stack;       /* lock-free */
	uint32_t               capacity;    /* entries; fixed after init */
	char                   pad_stack[64 - sizeof(struct tcm_batch_stack) - sizeof(uint32_t)];
	struct tcm_lock        lock;        /* rank CENTRAL */
	struct tcm_span       *with_free;   /* spans with a free object; guarded by lock */
} __attribute__((aligned(64)));

static struct central centrals[TCM_SIZE_CLASS_COUNT];
static _Atomic int64_t cached_bytes;

void tcm_central_init(void)
{
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		struct central *central = &centrals[size_class];
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		size_t entry_bytes = (size_t)info->batch_objects * info->object_bytes;
		size_t capacity = STACK_TARGET_BYTES / entry_bytes;
		if (capacity < STACK_MIN_ENTRIES)
			capacity = STACK_MIN_ENTRIES;
		if (capacity > STACK_MAX_ENTRIES)
			capacity = STACK_MAX_ENTRIES;
		central->capacity = (uint32_t)capacity;
		tcm_lock_init(&central->lock, TCM_LOCK_RANK_CENTRAL);
	}
}

struct tcm_lock *tcm_central_lock(unsigned size_class)
{
	return &centrals[size_class].lock;
}

uint64_t tcm_central_cached_bytes(void)
{
	int64_t bytes = atomic_load_explicit(&cached_bytes, memory_order_relaxed);
	return bytes > 0 ? (uint64_t)bytes : 0;
}

static void cached_bytes_add(int64_t delta)
{
	atomic_fetch_add_explicit(&cached_bytes, delta, memory_order_relaxed);
}

static void list_push(struct central *central, struct tcm_span *span)
{
	span->prev = NULL;
	span->next = central->with_free;
	if (span->next != NULL)
		span->next->prev = span;
	central->with_free = span;
	span->is_on_list = 1;
}

static void list_remove(struct central *central, struct tcm_span *span)
{
	if (span->prev != NULL)
		span->prev->next = span->next;
	else
		central->with_free = span->next;
	if (span->next != NULL)
		span->next->prev = span->prev;
	span->next = span->prev = NULL;
	span->is_on_list = 0;
}

/* Takes up to want objects from span onto the chain *head; returns how many. */
static uint32_t take_from_span(struct tcm_span *span, size_t object_bytes, uint32_t want, void **head)
{
	uint32_t taken = 0;
	while (taken < want && span->free_objects != NULL) {
		void *object = span->free_objects;
		span->free_objects = *(void **)object;
		*(void **)object = *head;
		*head = object;
		taken++;
	}
	while (taken < want && span->carve_next < span->carve_end) {
		void *object = (void *)span->carve_next;
		span->carve_next += object_bytes;
		*(void **)object = *head;
		*head = object;
		taken++;
	}
	span->allocated_objects += taken;
	return taken;
}

static bool span_has_free(const struct tcm_span *span)
{
	return span->free_objects != NULL || span->carve_next < span->carve_end;
}

static void *fetch_from_spans(unsigned size_class, uint32_t want, uint32_t *count)
{
	struct central *central = &centrals[size_class];
	size_t object_bytes = tcm_size_classes[size_class].object_bytes;
	void *head = NULL;
	uint32_t taken = 0;

	tcm_lock(&central->lock);
	while (taken < want && central->with_free != NULL) {
		struct tcm_span *span = central->with_free;
		taken += take_from_span(span, object_bytes, want - taken, &head);
		if (!span_has_free(span))
			list_remove(central, span);
	}
	tcm_unlock(&central->lock);

	if (taken == 0) {
		/* A fresh span, carved before anyone else can see it. */
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		bool is_zeroed;
		struct tcm_span *span = tcm_page_heap_alloc(info->span_pages, size_class, &is_zeroed);
		if (span == NULL)
			return NULL;
		span->allocated_objects = 0;
		span->free_objects = NULL;
		span->carve_next = span->start;
		span->carve_end = span->start + (uintptr_t)info->objects_per_span * object_bytes;
		cached_bytes_add((int64_t)info->objects_per_span * (int64_t)object_bytes);
		taken = take_from_span(span, object_bytes, want, &head);
		if (span_has_free(span)) {
			tcm_lock(&central->lock);
			list_push(central, span);
			tcm_unlock(&central->lock);
		}
	}
	cached_bytes_add(-(int64_t)taken * (int64_t)object_bytes);
	*count = taken;
	return head;
}

void *tcm_central_fetch(unsigned size_class, uint32_t want, uint32_t *count)
{
	if (want > 1) {
		void *first = tcm_batch_stack_pop(&centrals[size_class].stack, count);
		if (first != NULL) {
			cached_bytes_add(-(int64_t)*count * (int64_t)tcm_size_classes[size_class].object_bytes);
			return first;
		}
	}
	return fetch_from_spans(size_class, want, count);
}

/* Objects of one span, linked outside the lock. */
struct span_group {
	struct tcm_span *span;
	void            *head;    /* objects linked through their first word */
	void            *tail;    /* last of them: spliced onto the span's list */
	uint32_t         count;
};

/* Takes up to TCM_CENTRAL_OBJECTS_PER_HOLD objects off *chain and groups them
 * by span, with no lock held: the page-map lookups and the writes into the
 * objects happen here. Returns the number of groups. */
static unsigned group_by_span(void **chain, size_t *count, struct span_group *groups)
{
	unsigned group_count = 0;
	for (int taken = 0; taken < TCM_CENTRAL_OBJECTS_PER_HOLD && *count > 0; taken++, (*count)--) {
		void *object = *chain;
		*chain = *(void **)object;
		struct tcm_span *span = tcm_page_map_get((uintptr_t)object >> TCM_PAGE_SHIFT);
		TCM_ASSERT(span != NULL);
		unsigned group = group_count;
		/* Objects of a batch come from few spans: look from the newest group. */
		for (unsigned i = group_count; i-- > 0;)
			if (groups[i].span == span) {
				group = i;
				break;
			}
		if (group == group_count)
			groups[group_count++] = (struct span_group){ .span = span, .tail = object };
		*(void **)object = groups[group].head;
		groups[group].head = object;
		groups[group].count++;
	}
	return group_count;
}

/* Returns count objects of the chain to their spans. Each lock hold covers at
 * most TCM_CENTRAL_OBJECTS_PER_HOLD objects, and only the splice of each span's
 * group and the span's list fix-up: everything that touches object memory or
 * the page map is done before the lock is taken. Emptied spans go to the page
 * heap after each hold. With may_wait false, a hold that finds the lock busy
 * pushes what is left on the stack instead (past its capacity). */
static void return_to_spans(unsigned size_class, void *first, size_t count, bool may_wait)
{
	struct central *central = &centrals[size_class];
	size_t span_bytes = (size_t)tcm_size_classes[size_class].objects_per_span *
			    tcm_size_classes[size_class].object_bytes;
	struct span_group groups[TCM_CENTRAL_OBJECTS_PER_HOLD];
	while (count > 0) {
		unsigned group_count = group_by_span(&first, &count, groups);
		if (may_wait) {
			tcm_lock(&central->lock);
		} else if (!tcm_lock_try(&central->lock)) {
			for (unsigned i = 0; i < group_count; i++) {
				*(void **)groups[i].tail = first;
				first = groups[i].head;
				count += groups[i].count;
			}
			tcm_batch_stack_push(&central->stack, first, (uint32_t)count);
			return;
		}
		struct tcm_span *emptied = NULL;
		int64_t emptied_bytes = 0;
		for (unsigned i = 0; i < group_count; i++) {
			struct tcm_span *span = groups[i].span;
			TCM_ASSERT(span->size_class == size_class && span->allocated_objects >= groups[i].count);
			*(void **)groups[i].tail = span->free_objects;
			span->free_objects = groups[i].head;
			span->allocated_objects -= groups[i].count;
			if (span->allocated_objects == 0) {
				if (span->is_on_list)
					list_remove(central, span);
				span->next = emptied;
				emptied = span;
				emptied_bytes += (int64_t)span_bytes;
			} else if (!span->is_on_list) {
				list_push(central, span);
			}
		}
		tcm_unlock(&central->lock);
		if (emptied != NULL) {
			cached_bytes_add(-emptied_bytes);
			tcm_page_heap_free_spans(emptied);
		}
	}
}

/* Pops one stack entry, if the stack holds more than keep_entries, and
 * returns its objects to the spans. Returns the objects popped. */
static size_t drain_entry(unsigned size_class, uint32_t keep_entries, bool may_wait)
{
	struct central *central = &centrals[size_class];
	if (tcm_batch_stack_entries(&central->stack) <= keep_entries)
		return 0;
	uint32_t count;
	void *first = tcm_batch_stack_pop(&central->stack, &count);
	if (first == NULL)
		return 0;
	return_to_spans(size_class, first, count, may_wait);   /* still central's: no byte change */
	return count;
}

void tcm_central_give_back(unsigned size_class, void *first, uint32_t count, bool is_thread_exit)
{
	struct central *central = &centrals[size_class];
	cached_bytes_add((int64_t)count * (int64_t)tcm_size_classes[size_class].object_bytes);
	/* A freeing thread never waits for the class lock: waiting behind a
	 * holder (maybe descheduled) is what makes a free slow in a storm of
	 * frees. So a full stack takes the batch anyway while the lock is busy,
	 * and past NORMAL always (the release worker drains the stacks); a
	 * give-back that does get the lock also returns one entry of any such
	 * overflow, so in NORMAL the stack shrinks back to its capacity. */
	if (is_thread_exit || tcm_batch_stack_entries(&central->stack) < central->capacity ||
	    tcm_state_get() != TCM_STATE_NORMAL || tcm_lock_is_busy(&central->lock)) {
		tcm_batch_stack_push(&central->stack, first, count);
		return;
	}
	return_to_spans(size_class, first, count, false);
	drain_entry(size_class, central->capacity, false);
}

size_t tcm_central_drain_one(unsigned size_class, uint32_t keep_entries)
{
	return drain_entry(size_class, keep_entries, true);
}

size_t tcm_central_drain(unsigned size_class, uint32_t keep_entries)
{
	size_t moved = 0, step;
	while ((step = tcm_central_drain_one(size_class, keep_entries)) != 0)
		moved += step;
	return moved;
}

uint32_t tcm_central_capacity(unsigned size_class)
{
	return centrals[size_class].capacity;
}
