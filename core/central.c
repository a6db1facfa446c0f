/* core/central.c - central free lists: the batch stack, the class's spans,
 * carving new spans, giving emptied spans back to the page heap, and the two
 * holds of a release of the free pages inside a span (taking its free list
 * out, putting back what stays; the rest is core/inside_release.c's).
 *
 * Invariants: see central.h. A new span is carved privately (no lock) and
 * published on the class list only if objects remain in it. */
#include "central.h"

#include "batch_stack.h"
#include "lock.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "release.h"
#include "size_class.h"
#include "span.h"
#include "state.h"

#define STACK_TARGET_BYTES (512 * 1024)
#define STACK_MIN_ENTRIES  2
#define STACK_MAX_ENTRIES  64

/* All zeros is a ready central list (its lock's rank, CENTRAL, is 0). */
struct central {
	struct tcm_batch_stack stack;       /* lock-free */
	_Atomic int64_t        stack_objects;   /* objects on the stack (beside it: the same writes) */
	struct tcm_lock        lock __attribute__((aligned(64)));   /* rank CENTRAL */
	/* Spans with a free object, guarded by lock: fetches take from the first;
	 * a span whose free pages were just released joins at the end, so the
	 * spans whose free objects are resident are used first. */
	struct tcm_span       *with_free;
	struct tcm_span       *with_free_last;
	/* The class's spans, and the objects out of them (the sum of their
	 * allocated_count): atomics, as a fresh span is carved with no lock held
	 * and the statistics read them with none. */
	_Atomic int64_t        span_count;
	_Atomic int64_t        objects_out_of_spans;
} __attribute__((aligned(64)));

static struct central centrals[TCM_SIZE_CLASS_COUNT];

/* The entries the stack keeps in NORMAL: about STACK_TARGET_BYTES of objects. Computed, not
 * stored: a give-back of a batch pays a division, and a start writes no central list it does
 * not use (issue 12). */
static uint32_t stack_capacity(unsigned size_class)
{
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t capacity = STACK_TARGET_BYTES / ((size_t)info->batch_objects * info->object_bytes);
	if (capacity < STACK_MIN_ENTRIES)
		capacity = STACK_MIN_ENTRIES;
	if (capacity > STACK_MAX_ENTRIES)
		capacity = STACK_MAX_ENTRIES;
	return (uint32_t)capacity;
}

struct tcm_lock *tcm_central_lock_object(unsigned size_class)
{
	return &centrals[size_class].lock;
}

static int64_t counter_of(const _Atomic int64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

static void counter_add(_Atomic int64_t *counter, int64_t delta)
{
	atomic_fetch_add_explicit(counter, delta, memory_order_relaxed);
}

void tcm_central_class_stats(unsigned size_class, struct tcm_central_class_stats *out)
{
	const struct central *central = &centrals[size_class];
	/* Read without a lock while objects move: a sum may be off by what was in
	 * flight, never below 0. */
	int64_t spans = counter_of(&central->span_count);
	int64_t stack = counter_of(&central->stack_objects);
	int64_t out_of_spans = counter_of(&central->objects_out_of_spans);
	int64_t in_spans = spans * tcm_size_classes[size_class].objects_per_span - out_of_spans;
	out->spans = spans > 0 ? (uint64_t)spans : 0;
	out->stack_objects = stack > 0 ? (uint64_t)stack : 0;
	out->span_free_objects = in_spans > 0 ? (uint64_t)in_spans : 0;
	out->objects_out_of_spans = out_of_spans > 0 ? (uint64_t)out_of_spans : 0;
}

uint64_t tcm_central_cached_bytes(void)
{
	uint64_t bytes = 0;
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++) {
		struct tcm_central_class_stats class_stats;
		tcm_central_class_stats(size_class, &class_stats);
		bytes += (class_stats.stack_objects + class_stats.span_free_objects) *
			 tcm_size_classes[size_class].object_bytes;
	}
	return bytes;
}

static void stack_push(struct central *central, void *first, uint32_t count)
{
	counter_add(&central->stack_objects, count);
	tcm_batch_stack_push(&central->stack, first, count);
}

static void *stack_pop(struct central *central, uint32_t *count)
{
	void *first = tcm_batch_stack_pop(&central->stack, count);
	if (first != NULL)
		counter_add(&central->stack_objects, -(int64_t)*count);
	return first;
}

/* Hands a list of emptied spans of the class (linked through next, count of
 * them) to the page heap. REQUIRES: no tcm lock held. */
static void free_emptied_spans(struct central *central, struct tcm_span *emptied, int64_t count)
{
	counter_add(&central->span_count, -count);
	tcm_page_heap_free_spans(emptied);
}

static bool is_listed(const struct tcm_span *span)
{
	return atomic_load_explicit(&span->on_list_class, memory_order_relaxed) != 0;
}

static void list_push(struct central *central, struct tcm_span *span)
{
	span->prev = NULL;
	span->next = central->with_free;
	if (span->next != NULL)
		span->next->prev = span;
	else
		central->with_free_last = span;
	central->with_free = span;
	atomic_store_explicit(&span->on_list_class, (uint8_t)(central - centrals), memory_order_relaxed);
}

static void list_push_last(struct central *central, struct tcm_span *span)
{
	span->next = NULL;
	span->prev = central->with_free_last;
	if (span->prev != NULL)
		span->prev->next = span;
	else
		central->with_free = span;
	central->with_free_last = span;
	atomic_store_explicit(&span->on_list_class, (uint8_t)(central - centrals), memory_order_relaxed);
}

static void list_remove(struct central *central, struct tcm_span *span)
{
	if (span->prev != NULL)
		span->prev->next = span->next;
	else
		central->with_free = span->next;
	if (span->next != NULL)
		span->next->prev = span->prev;
	else
		central->with_free_last = span->prev;
	span->next = span->prev = NULL;
	atomic_store_explicit(&span->on_list_class, 0, memory_order_relaxed);
}

/* Takes up to want listed objects from span onto the chain *head; returns how many. */
static uint32_t take_listed(struct central *central, struct tcm_span *span, uint32_t want, void **head)
{
	uint32_t taken = tcm_span_take_listed(span, want, head);
	counter_add(&central->objects_out_of_spans, taken);
	return taken;
}

/* Claims up to want never-used objects of span (span.h); returns how many. */
static uint32_t claim_uncarved(struct central *central, struct tcm_span *span, uint32_t want,
			       struct tcm_span_claim *claim)
{
	uint32_t claimed = tcm_span_claim_uncarved(span, want, claim, tcm_os_kernel_page_bytes());
	counter_add(&central->objects_out_of_spans, claimed);
	return claimed;
}

/* Makes the pages of a claim that no earlier claim reached resident, then
 * links its objects onto *head. No lock is held: a claim is carved under the
 * class lock without a write into its objects (DESIGN invariants 2, 11), and
 * only the pages a refill hands out are faulted in, not the whole span (a
 * start that takes two objects of a 64 KiB span pays for one page of it, issue
 * 12). Fresh or released memory is populated, one system call where the kernel
 * has it rather than a page fault per page, out to the end of the claim's last
 * kernel page within the span (the next claim then starts on a resident page,
 * and a page fault for each claim's partial page is saved); a span from
 * committed memory may still hold pages released inside it in an earlier life
 * (core/inside_release.c): a touch per page faults those in. Every byte
 * written is the claim's own. */
static void link_claim(const struct tcm_span_claim *claim, void **head)
{
	if (claim->count == 0)
		return;
	uintptr_t end = claim->first + (uintptr_t)claim->count * claim->object_bytes;
	if (claim->fault_in_from < end) {
		if (claim->is_unbacked)
			tcm_os_populate((void *)claim->fault_in_from, end - claim->fault_in_from, claim->span_start,
					claim->span_end);
		else
			tcm_os_touch((void *)claim->fault_in_from, end - claim->fault_in_from);
	}
	tcm_span_link_claim(claim, head);
}

static void *fetch_from_spans(unsigned size_class, uint32_t want, uint32_t *count)
{
	struct central *central = &centrals[size_class];
	size_t object_bytes = tcm_size_classes[size_class].object_bytes;
	void *head = NULL;
	uint32_t taken = 0;

	/* Never-used objects of one span, and stranded objects of one span, both
	 * claimed under the lock and linked after it is dropped: linking them
	 * faults their pages in. */
	struct tcm_span_claim uncarved = { .count = 0 };
	uint64_t claimed = 0;
	uintptr_t claimed_first_object = 0;
	tcm_lock(&central->lock);
	while (taken < want && central->with_free != NULL) {
		struct tcm_span *span = central->with_free;
		taken += take_listed(central, span, want - taken, &head);
		if (taken < want && span->carve_next < span->carve_end) {
			taken += claim_uncarved(central, span, want - taken, &uncarved);
			if (!tcm_span_has_free(span))
				list_remove(central, span);
			break;   /* one claim per fetch */
		}
		if (taken < want && span->stranded_map != 0) {
			uint32_t claimed_count = tcm_span_claim_stranded(span, want - taken, &claimed);
			counter_add(&central->objects_out_of_spans, claimed_count);
			taken += claimed_count;
			claimed_first_object = tcm_span_first_object(span);
			if (!tcm_span_has_free(span))
				list_remove(central, span);
			break;   /* one claim per fetch */
		}
		if (!tcm_span_has_free(span))
			list_remove(central, span);
	}
	tcm_unlock(&central->lock);
	link_claim(&uncarved, &head);
	tcm_span_link_objects(claimed_first_object, object_bytes, claimed, &head, NULL);

	if (taken == 0) {
		/* A fresh span, claimed from before anyone else can see it. For pages
		 * from released memory the resident-set policy gives back free
		 * resident memory first (release.h), with no lock held. */
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		size_t span_bytes = (size_t)info->span_pages * TCM_PAGE_BYTES;
		bool is_zeroed;
		struct tcm_span *span = tcm_page_heap_alloc(info->span_pages, size_class, &is_zeroed);
		if (span == NULL)
			return NULL;
		if (is_zeroed)
			tcm_release_before_fault_in(span_bytes, true);
		tcm_span_start_carving(span, is_zeroed);
		counter_add(&central->span_count, 1);
		taken = claim_uncarved(central, span, want, &uncarved);
		if (tcm_span_has_free(span)) {
			tcm_lock(&central->lock);
			list_push(central, span);
			tcm_unlock(&central->lock);
		}
		link_claim(&uncarved, &head);
	}
	*count = taken;
	return head;
}

void *tcm_central_fetch(unsigned size_class, uint32_t want, uint32_t *count)
{
	if (want > 1) {
		void *first = stack_pop(&centrals[size_class], count);
		if (first != NULL)
			return first;
	}
	return fetch_from_spans(size_class, want, count);
}

/* Objects of one span, linked outside the lock. */
struct span_group {
	struct tcm_span *span;
	void            *head;    /* objects linked through their first word */
	void            *tail;    /* last of them: spliced onto the span's list */
	uint32_t         count;
	uint64_t         listed;  /* their bits, when the class has an object map */
};

/* Takes up to TCM_CENTRAL_OBJECTS_PER_HOLD objects off *chain and groups them
 * by span, with no lock held: the page-map lookups and the writes into the
 * objects happen here. Returns the number of groups. */
static unsigned group_by_span(bool has_object_map, void **chain, size_t *count, struct span_group *groups)
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
		if (has_object_map)
			groups[group].listed |= tcm_span_object_bit(span, object);
	}
	return group_count;
}

/* Returns count objects of the chain to their spans. Each lock hold covers at
 * most TCM_CENTRAL_OBJECTS_PER_HOLD objects, and only the splice of each span's
 * group and the span's list fix-up: everything that touches object memory or
 * the page map is done before the lock is taken. Emptied spans go to the page
 * heap after each hold. A hold that finds the lock busy waits for it, pushes
 * what is left on the stack (past its capacity), or, for a chain of one hold,
 * gives up: then it returns false, the chain untouched but for its order. */
enum when_busy { WAIT_FOR_LOCK, PUSH_ON_STACK, GIVE_UP };

static bool return_to_spans(unsigned size_class, void *first, size_t count, enum when_busy when_busy)
{
	TCM_ASSERT(when_busy != GIVE_UP || count <= TCM_CENTRAL_OBJECTS_PER_HOLD);
	struct central *central = &centrals[size_class];
	bool has_object_map = tcm_size_classes[size_class].has_object_map;
	struct span_group groups[TCM_CENTRAL_OBJECTS_PER_HOLD];
	while (count > 0) {
		unsigned group_count = group_by_span(has_object_map, &first, &count, groups);
		if (when_busy == WAIT_FOR_LOCK) {
			tcm_lock(&central->lock);
		} else if (!tcm_lock_try(&central->lock)) {
			for (unsigned i = 0; i < group_count; i++) {
				*(void **)groups[i].tail = first;
				first = groups[i].head;
				count += groups[i].count;
			}
			if (when_busy == GIVE_UP)
				return false;
			stack_push(central, first, (uint32_t)count);
			return true;
		}
		struct tcm_span *emptied = NULL;
		int64_t emptied_count = 0, returned = 0;
		for (unsigned i = 0; i < group_count; i++) {
			struct tcm_span *span = groups[i].span;
			TCM_ASSERT(span->size_class == size_class && span->allocated_count >= groups[i].count);
			*(void **)groups[i].tail = span->free_list;
			span->free_list = groups[i].head;
			span->listed_map |= groups[i].listed;
			span->allocated_count -= groups[i].count;
			returned += groups[i].count;
			if (has_object_map && span->allocated_count < span->allocated_count_at_inside_release)
				atomic_store_explicit(&span->may_release_inside, 1, memory_order_relaxed);
			if (span->allocated_count == 0 && !span->is_releasing_inside) {
				if (is_listed(span))
					list_remove(central, span);
				span->next = emptied;
				emptied = span;
				emptied_count++;
			} else if (!is_listed(span)) {
				list_push(central, span);
			}
		}
		counter_add(&central->objects_out_of_spans, -returned);
		tcm_unlock(&central->lock);
		if (emptied != NULL)
			free_emptied_spans(central, emptied, emptied_count);
	}
	return true;
}

/* Pops one stack entry, if the stack holds more than keep_entries, and
 * returns its objects to the spans. Returns the objects popped. */
static size_t drain_entry(unsigned size_class, uint32_t keep_entries, bool may_wait)
{
	struct central *central = &centrals[size_class];
	if (tcm_batch_stack_entries(&central->stack) <= keep_entries)
		return 0;
	uint32_t count;
	void *first = stack_pop(central, &count);
	if (first == NULL)
		return 0;
	return_to_spans(size_class, first, count, may_wait ? WAIT_FOR_LOCK : PUSH_ON_STACK);   /* still central's */
	return count;
}

void tcm_central_give_back(unsigned size_class, void *first, uint32_t count, bool is_thread_exit)
{
	struct central *central = &centrals[size_class];
	/* A freeing thread never waits for the class lock: waiting behind a
	 * holder (maybe descheduled) is what makes a free slow in a storm of
	 * frees. So a full stack takes the batch anyway while the lock is busy,
	 * and past NORMAL always (the release worker drains the stacks); a
	 * give-back that does get the lock also returns one entry of any such
	 * overflow, so in NORMAL the stack shrinks back to its capacity. */
	uint32_t capacity = stack_capacity(size_class);
	if (is_thread_exit || tcm_batch_stack_entries(&central->stack) < capacity ||
	    tcm_state_get() != TCM_STATE_NORMAL || tcm_lock_is_busy(&central->lock)) {
		stack_push(central, first, count);
		return;
	}
	return_to_spans(size_class, first, count, PUSH_ON_STACK);
	drain_entry(size_class, capacity, false);
}

void tcm_central_give_back_to_spans(unsigned size_class, void *first, uint32_t count)
{
	return_to_spans(size_class, first, count, PUSH_ON_STACK);
}

bool tcm_central_give_back_to_span(unsigned size_class, void *object)
{
	*(void **)object = NULL;
	return return_to_spans(size_class, object, 1, GIVE_UP);
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

/* ---- the two holds of a release of the free pages inside a span ------------ */

/* The spans whose free list is out for a release inside them, one slot each
 * (claimed in hold 1, cleared in hold 2), so that a fork child, where the
 * releasing thread does not exist, can give their objects back. A release
 * that finds every slot taken does not start. */
#define RELEASING_INSIDE_SLOTS 64
static _Atomic(struct tcm_span *) releasing_inside[RELEASING_INSIDE_SLOTS];

static bool claim_releasing_slot(struct tcm_span *span)
{
	for (unsigned slot = 0; slot < RELEASING_INSIDE_SLOTS; slot++) {
		struct tcm_span *expected = NULL;
		if (atomic_compare_exchange_strong_explicit(&releasing_inside[slot], &expected, span,
				memory_order_relaxed, memory_order_relaxed))
			return true;
	}
	return false;
}

static void clear_releasing_slot(struct tcm_span *span)
{
	for (unsigned slot = 0; slot < RELEASING_INSIDE_SLOTS; slot++) {
		struct tcm_span *expected = span;
		if (atomic_compare_exchange_strong_explicit(&releasing_inside[slot], &expected, NULL,
				memory_order_relaxed, memory_order_relaxed))
			return;
	}
}

bool tcm_central_take_free_list(struct tcm_span *span, unsigned size_class, uintptr_t span_start,
				struct tcm_central_taken *out)
{
	struct central *central = &centrals[size_class];
	/* Until tcm_central_end_inside_release no one else frees the span, even
	 * if its last allocated object comes back, and no second releaser (the
	 * worker and malloc_trim may both be here) takes it. */
	tcm_lock(&central->lock);
	/* Only a span on this class's list is this class's while the lock is
	 * held: the record may have been freed and reused since the walk read it
	 * (span.h, on_list_class), so that is checked before anything else. */
	if (atomic_load_explicit(&span->on_list_class, memory_order_relaxed) != size_class ||
	    span->start != span_start || span->size_class != size_class || span->is_releasing_inside) {
		tcm_unlock(&central->lock);
		return false;
	}
	bool has_new_free = span->free_list != NULL && span->allocated_count < span->allocated_count_at_inside_release;
	if (!has_new_free || !claim_releasing_slot(span)) {
		if (!has_new_free)
			atomic_store_explicit(&span->may_release_inside, 0, memory_order_relaxed);
		tcm_unlock(&central->lock);
		return false;
	}
	*out = (struct tcm_central_taken){
		.free_list = span->free_list,
		.free_map = span->listed_map,
		.carved_bytes = span->carve_next - span_start,
	};
	span->taken_out_map = span->listed_map;
	span->free_list = NULL;
	span->listed_map = 0;
	span->is_releasing_inside = 1;
	if (!tcm_span_has_free(span))
		list_remove(central, span);
	tcm_unlock(&central->lock);
	return true;
}

/* After the taken-out objects are back (or stranded): the span leaves central
 * if it emptied; else, with a free object, it is listed, at the end of the
 * list if some of its objects were just stranded (the next fetches would
 * fault their pages back in if it were first), where it was otherwise.
 * Returns whether it emptied. REQUIRES: central[class] lock. */
static bool relist_after_release_locked(struct central *central, struct tcm_span *span, bool has_stranded)
{
	span->taken_out_map = 0;
	span->is_releasing_inside = 0;
	clear_releasing_slot(span);
	if (span->allocated_count == 0) {
		if (is_listed(span))
			list_remove(central, span);
		return true;
	}
	if (has_stranded && is_listed(span))
		list_remove(central, span);
	if (tcm_span_has_free(span) && !is_listed(span)) {
		if (has_stranded)
			list_push_last(central, span);
		else
			list_push(central, span);
	}
	return false;
}

void tcm_central_end_inside_release(const struct tcm_central_inside_release *release)
{
	struct tcm_span *span = release->span;
	struct central *central = &centrals[release->size_class];
	tcm_lock(&central->lock);
	if (release->kept_head != NULL) {
		*(void **)release->kept_tail = span->free_list;
		span->free_list = release->kept_head;
	}
	span->listed_map |= release->kept_map;
	span->stranded_map |= release->stranded_map;   /* a fetch may have claimed earlier ones */
	if (!release->is_cut_short) {
		span->allocated_count_at_inside_release = span->allocated_count;
		atomic_store_explicit(&span->may_release_inside, 0, memory_order_relaxed);
	}
	bool is_emptied = relist_after_release_locked(central, span, release->stranded_map != 0);
	tcm_unlock(&central->lock);
	if (is_emptied) {
		span->next = NULL;
		free_emptied_spans(central, span, 1);
	}
}

void tcm_central_after_fork_in_child(void)
{
	for (unsigned slot = 0; slot < RELEASING_INSIDE_SLOTS; slot++) {
		struct tcm_span *span = atomic_exchange_explicit(&releasing_inside[slot], NULL, memory_order_relaxed);
		if (span == NULL)
			continue;
		struct central *central = &centrals[span->size_class];
		/* The objects taken out are free; some pages may be released.
		 * As stranded objects they are handed out last and linked with
		 * no lock held, which is right for either. */
		tcm_lock(&central->lock);
		span->stranded_map |= span->taken_out_map;
		bool is_emptied = relist_after_release_locked(central, span, span->taken_out_map != 0);
		tcm_unlock(&central->lock);
		if (is_emptied) {
			span->next = NULL;
			free_emptied_spans(central, span, 1);
		}
	}
}

uint32_t tcm_central_capacity(unsigned size_class)
{
	return stack_capacity(size_class);
}
