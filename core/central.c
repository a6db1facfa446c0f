/* core/central.c - central free lists: the batch stack, the class's spans,
 * carving new spans, giving emptied spans back to the page heap, and
 * releasing the free pages inside partly used spans.
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
#define OFFSET_MIN_FREE_BYTES ((uint64_t)8 << 20)   /* see offset_fresh_span */
#define OFFSET_WALK_PAGES     1024

struct central {
	struct tcm_batch_stack stack;       /* lock-free */
	uint32_t               capacity;    /* entries; fixed after init */
	_Atomic int64_t        stack_objects;   /* objects on the stack (beside it: the same writes) */
	struct tcm_lock        lock __attribute__((aligned(64)));   /* rank CENTRAL */
	struct tcm_span       *with_free;   /* spans with a free object; guarded by lock */
	/* The class's spans, and the objects out of them (the sum of their
	 * allocated_objects): atomics, as a fresh span is carved with no lock held
	 * and the statistics read them with none. */
	_Atomic int64_t        span_count;
	_Atomic int64_t        objects_out_of_spans;
	/* Fixed after init. A class eligible for release inside spans keeps each
	 * span's listed_objects, so that a release needs no walk of the free list
	 * (a cache miss per object); object i of a span is at offset * multiplier
	 * >> 32 from the first object, with multiplier = ceil(2^32 / object
	 * size), exact for the at most 64 objects of those spans. */
	bool                   keeps_listed_map;
	uint64_t               index_multiplier;
	uint32_t               first_object_offset;   /* size_class.h */
} __attribute__((aligned(64)));

static struct central centrals[TCM_SIZE_CLASS_COUNT];

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
		central->keeps_listed_map = tcm_central_may_release_inside_spans(size_class);
		central->index_multiplier = (((uint64_t)1 << 32) + info->object_bytes - 1) / info->object_bytes;
		central->first_object_offset = info->first_object_offset;
		tcm_lock_init(&central->lock, TCM_LOCK_RANK_CENTRAL);
	}
}

struct tcm_lock *tcm_central_lock(unsigned size_class)
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
	central->with_free = span;
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
	span->next = span->prev = NULL;
	atomic_store_explicit(&span->on_list_class, 0, memory_order_relaxed);
}

/* Where object 0 of the span starting at span_start lies: the bytes that fit
 * no whole object come first (size_class.h, first_object_offset). */
static uintptr_t first_object_of(const struct central *central, uintptr_t span_start)
{
	return span_start + central->first_object_offset;
}

/* The bit of object in its span's listed_objects (see struct central). */
static uint64_t listed_bit(const struct central *central, uintptr_t span_start, const void *object)
{
	uintptr_t offset = (uintptr_t)object - first_object_of(central, span_start);
	return (uint64_t)1 << ((offset * central->index_multiplier) >> 32);
}

/* Takes up to want objects from span onto the chain *head; returns how many. */
static uint32_t take_from_span(struct central *central, struct tcm_span *span, size_t object_bytes,
			       uint32_t want, void **head)
{
	uint32_t taken = 0;
	while (taken < want && span->free_objects != NULL) {
		void *object = span->free_objects;
		span->free_objects = *(void **)object;
		if (central->keeps_listed_map)
			span->listed_objects &= ~listed_bit(central, span->start, object);
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
	counter_add(&central->objects_out_of_spans, taken);
	return taken;
}

static bool span_has_free(const struct tcm_span *span)
{
	return span->free_objects != NULL || span->carve_next < span->carve_end || span->stranded_objects != 0;
}

/* Objects of a span's released pages, claimed under the class lock and linked
 * into a chain after it is dropped: linking them faults their pages back in. */
struct stranded_claim {
	uintptr_t first_object;   /* object 0 of the span */
	uint64_t  objects;        /* bit i: object i */
};

/* Claims up to want of span's stranded objects (those left once its free list
 * and carve are used up); returns how many. REQUIRES: central[class] lock. */
static uint32_t claim_stranded(struct central *central, struct tcm_span *span, uint32_t want,
			       struct stranded_claim *claim)
{
	uint64_t claimed = 0;
	uint32_t count = 0;
	for (uint64_t rest = span->stranded_objects; rest != 0 && count < want; rest &= rest - 1, count++)
		claimed |= rest & (0 - rest);   /* the lowest object left */
	span->stranded_objects &= ~claimed;
	span->allocated_objects += count;
	counter_add(&central->objects_out_of_spans, count);
	claim->first_object = first_object_of(central, span->start);
	claim->objects = claimed;
	return count;
}

/* Links the claimed objects onto the chain *head. No lock held. */
static void link_claimed(const struct stranded_claim *claim, size_t object_bytes, void **head)
{
	for (uint64_t rest = claim->objects; rest != 0; rest &= rest - 1) {
		void *object = (void *)(claim->first_object + (uintptr_t)__builtin_ctzll(rest) * object_bytes);
		*(void **)object = *head;
		*head = object;
	}
}

/* A fresh span has come from released memory, its pages about to be faulted
 * in, while the spans hold more free object bytes than a quarter of the memory
 * in use (and at least OFFSET_MIN_FREE_BYTES): as many bytes of the whole free
 * pages inside them are released first, each walk looking at no more than
 * OFFSET_WALK_PAGES of the page map, so that a program that frees most of its
 * objects and then allocates other sizes (bench/fragmentation) does not add
 * the new spans' pages on top of the free ones. A span served from committed
 * memory adds nothing to the resident set and releases nothing. Only in
 * NORMAL. REQUIRES: no tcm lock held. */
static void offset_fresh_span(size_t span_bytes)
{
	/* The free bytes count objects of every class, stranded ones too, so a
	 * walk may find nothing to release; after one that did not, the offset
	 * waits until the memory in use has grown by a quarter, which bounds the
	 * fruitless walks to one per such growth. From DRAINING on the release
	 * worker does this work: a malloc then does not add it to its latency. */
	static _Atomic uint64_t quiet_below_in_use_bytes;
	if (tcm_state_get() != TCM_STATE_NORMAL)
		return;
	uint64_t free_bytes = tcm_central_cached_bytes();
	if (free_bytes < OFFSET_MIN_FREE_BYTES)
		return;
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	if (free_bytes < heap.in_use_bytes / 4 ||
	    heap.in_use_bytes < atomic_load_explicit(&quiet_below_in_use_bytes, memory_order_relaxed))
		return;
	for (size_t released = 0, step; released < span_bytes; released += step) {
		step = tcm_central_release_inside_spans(span_bytes - released, OFFSET_WALK_PAGES);
		if (step == 0) {
			atomic_store_explicit(&quiet_below_in_use_bytes, heap.in_use_bytes + heap.in_use_bytes / 4,
					      memory_order_relaxed);
			return;
		}
	}
}

static void *fetch_from_spans(unsigned size_class, uint32_t want, uint32_t *count)
{
	struct central *central = &centrals[size_class];
	size_t object_bytes = tcm_size_classes[size_class].object_bytes;
	void *head = NULL;
	uint32_t taken = 0;

	struct stranded_claim claim = { 0, 0 };
	tcm_lock(&central->lock);
	while (taken < want && central->with_free != NULL) {
		struct tcm_span *span = central->with_free;
		taken += take_from_span(central, span, object_bytes, want - taken, &head);
		if (taken < want && span->stranded_objects != 0) {
			taken += claim_stranded(central, span, want - taken, &claim);
			if (!span_has_free(span))
				list_remove(central, span);
			break;   /* one claim per fetch: its objects are linked below */
		}
		if (!span_has_free(span))
			list_remove(central, span);
	}
	tcm_unlock(&central->lock);
	link_claimed(&claim, object_bytes, &head);

	if (taken == 0) {
		/* A fresh span, carved before anyone else can see it. */
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		size_t span_bytes = (size_t)info->span_pages * TCM_PAGE_BYTES;
		bool is_zeroed;
		struct tcm_span *span = tcm_page_heap_alloc(info->span_pages, size_class, &is_zeroed);
		if (span == NULL)
			return NULL;
		/* The whole span is made resident here, with no lock held, so that
		 * the carves under the class lock later fault nothing in (DESIGN
		 * invariants 2, 11). Pages from released memory are offset first,
		 * then populated: one system call where the kernel has it rather than
		 * a page fault per page (10% off the wall time of
		 * bench/fragmentation), a touch per page on older kernels. A span
		 * from committed memory may still hold pages released inside it
		 * before it emptied (tcm_central_release_inside_span): a touch per
		 * page faults those in. It costs at most the untouched rest of one
		 * span per class. */
		if (is_zeroed) {
			offset_fresh_span(span_bytes);
			tcm_os_populate((void *)span->start, span_bytes);
		} else {
			tcm_os_touch((void *)span->start, span_bytes);
		}
		span->allocated_objects = 0;
		span->free_objects = NULL;
		span->carve_next = first_object_of(central, span->start);
		span->carve_end = span->start + span_bytes;
		span->allocated_after_page_release = UINT32_MAX;
		span->is_releasing_inside = 0;
		atomic_store_explicit(&span->may_release_inside, 0, memory_order_relaxed);
		span->stranded_objects = 0;
		span->listed_objects = 0;
		counter_add(&central->span_count, 1);
		taken = take_from_span(central, span, object_bytes, want, &head);
		if (span_has_free(span)) {
			tcm_lock(&central->lock);
			list_push(central, span);
			tcm_unlock(&central->lock);
		}
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
	uint64_t         listed;  /* their bits, when the class keeps listed_objects */
};

/* Takes up to TCM_CENTRAL_OBJECTS_PER_HOLD objects off *chain and groups them
 * by span, with no lock held: the page-map lookups and the writes into the
 * objects happen here. Returns the number of groups. */
static unsigned group_by_span(const struct central *central, void **chain, size_t *count,
			      struct span_group *groups)
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
		if (central->keeps_listed_map)
			groups[group].listed |= listed_bit(central, span->start, object);
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
	struct span_group groups[TCM_CENTRAL_OBJECTS_PER_HOLD];
	while (count > 0) {
		unsigned group_count = group_by_span(central, &first, &count, groups);
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
			TCM_ASSERT(span->size_class == size_class && span->allocated_objects >= groups[i].count);
			*(void **)groups[i].tail = span->free_objects;
			span->free_objects = groups[i].head;
			span->listed_objects |= groups[i].listed;
			span->allocated_objects -= groups[i].count;
			returned += groups[i].count;
			if (central->keeps_listed_map && span->allocated_objects < span->allocated_after_page_release)
				atomic_store_explicit(&span->may_release_inside, 1, memory_order_relaxed);
			if (span->allocated_objects == 0 && !span->is_releasing_inside) {
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
	if (is_thread_exit || tcm_batch_stack_entries(&central->stack) < central->capacity ||
	    tcm_state_get() != TCM_STATE_NORMAL || tcm_lock_is_busy(&central->lock)) {
		stack_push(central, first, count);
		return;
	}
	return_to_spans(size_class, first, count, PUSH_ON_STACK);
	drain_entry(size_class, central->capacity, false);
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

/* ---- free pages inside partly used spans -------------------------------------- */

static _Atomic uint64_t inside_span_released_bytes;
static _Atomic uint64_t inside_span_release_calls;

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

bool tcm_central_may_release_inside_spans(unsigned size_class)
{
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t span_bytes = (size_t)info->span_pages * TCM_PAGE_BYTES, kernel_page = tcm_os_kernel_page_bytes();
	return info->object_bytes >= TCM_CENTRAL_INSIDE_SPAN_MIN_OBJECT_BYTES && info->objects_per_span <= 64 &&
	       span_bytes > kernel_page && span_bytes <= 64 * kernel_page;
}

/* Bit i set: object i of the span, at byte first_object_offset + i *
 * object_bytes of it, overlaps bytes [first_byte, end_byte) of it. */
static uint64_t objects_overlapping(size_t object_bytes, uintptr_t first_object_offset, uintptr_t first_byte,
				    uintptr_t end_byte)
{
	uint64_t bits = 0;
	size_t object = first_byte > first_object_offset ? (first_byte - first_object_offset) / object_bytes : 0;
	for (; first_object_offset + object * object_bytes < end_byte; object++)
		bits |= (uint64_t)1 << object;
	return bits;
}

/* The whole kernel pages of a span, counted from the first kernel page
 * boundary in it: page k is bytes [first + k * bytes, first + (k + 1) * bytes)
 * of the span. A span need not start on a kernel page when those are larger
 * than tcm's; the kernel page it shares with a neighbour is never released. */
struct span_kernel_pages {
	uintptr_t first;   /* offset of the first kernel page boundary in the span */
	size_t    bytes;   /* the kernel's page */
};

/* Bit k set: kernel page k lies inside the carved part, holds objects, and
 * every object on it is free; the first such pages, at most max_bytes of them
 * (*is_cut_short: more were left out). Bounded: a span of an eligible class
 * has at most 64 kernel pages (tcm_central_may_release_inside_spans). */
static uint64_t free_kernel_pages(uint64_t is_free, size_t object_bytes, uintptr_t first_object_offset,
				  uintptr_t carved_bytes, struct span_kernel_pages kernel, size_t max_bytes,
				  bool *is_cut_short)
{
	uint64_t pages = 0;
	size_t released = 0;
	*is_cut_short = false;
	for (unsigned k = 0; kernel.first + (k + 1) * kernel.bytes <= carved_bytes; k++) {
		uint64_t on_page = objects_overlapping(object_bytes, first_object_offset,
						       kernel.first + k * kernel.bytes,
						       kernel.first + (k + 1) * kernel.bytes);
		if (on_page == 0 || (on_page & ~is_free) != 0)
			continue;   /* the slack alone (never used), or a live object on it */
		if (released + kernel.bytes > max_bytes) {
			*is_cut_short = true;
			break;
		}
		pages |= (uint64_t)1 << k;
		released += kernel.bytes;
	}
	return pages;
}

/* The listed_objects a free list should have (for the debug check). */
static uint64_t listed_map_of(const struct central *central, uintptr_t span_start, void *list)
{
	uint64_t map = 0;
	for (void *object = list; object != NULL; object = *(void **)object)
		map |= listed_bit(central, span_start, object);
	return map;
}

/* One span's release inside it, from hold 1 to hold 2: what stays listed
 * (kept, linked from kept_head to kept_tail with no lock held), what becomes
 * stranded, and its runs of free kernel pages in the batch's ranges. */
struct inside_release {
	struct tcm_span *span;
	unsigned         size_class;
	uint64_t         kept, stranded;
	void            *kept_head, *kept_tail;
	size_t           first_range, range_count;
	bool             is_cut_short;   /* the batch's max_bytes left free pages out */
};

/* Spans released inside together: their ranges go to the kernel in one
 * tcm_os_release_ranges (one system call where the kernel allows it). */
#define INSIDE_BATCH_SPANS 32
struct inside_batch {
	struct inside_release spans[INSIDE_BATCH_SPANS];
	size_t                span_count;
	struct tcm_os_range   ranges[TCM_OS_RELEASE_RANGES_MAX];
	size_t                range_count;
	size_t                planned_bytes;
};

/* The most runs of free kernel pages a span of size_class can have. */
static size_t max_runs_of(unsigned size_class)
{
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t kernel_pages = (size_t)info->span_pages * TCM_PAGE_BYTES / tcm_os_kernel_page_bytes();
	return (kernel_pages + 1) / 2;
}

/* Whether the batch has no room for one more span of size_class. */
static bool is_batch_full(const struct inside_batch *batch, unsigned size_class, size_t max_bytes)
{
	return batch->span_count == INSIDE_BATCH_SPANS ||
	       batch->range_count + max_runs_of(size_class) > TCM_OS_RELEASE_RANGES_MAX ||
	       batch->planned_bytes + tcm_os_kernel_page_bytes() > max_bytes;
}

/* Hold 2: splices the kept objects back and notes the stranded ones (a fetch
 * may have claimed earlier ones meanwhile); the span leaves central if it
 * emptied, and goes to the page heap after the lock is dropped. */
static void put_back_after_release(const struct inside_release *release)
{
	struct tcm_span *span = release->span;
	struct central *central = &centrals[release->size_class];
	tcm_lock(&central->lock);
	if (release->kept_head != NULL) {
		*(void **)release->kept_tail = span->free_objects;
		span->free_objects = release->kept_head;
	}
	span->listed_objects |= release->kept;
	span->stranded_objects |= release->stranded;
	span->is_releasing_inside = 0;
	span->taken_out_objects = 0;
	clear_releasing_slot(span);
	if (!release->is_cut_short) {
		span->allocated_after_page_release = span->allocated_objects;
		atomic_store_explicit(&span->may_release_inside, 0, memory_order_relaxed);
	}
	bool is_emptied = span->allocated_objects == 0;
	if (is_emptied) {
		if (is_listed(span))
			list_remove(central, span);
	} else if (span_has_free(span) && !is_listed(span)) {
		list_push(central, span);
	}
	tcm_unlock(&central->lock);
	if (is_emptied) {
		span->next = NULL;
		free_emptied_spans(central, span, 1);
	}
}

/* Adds the span (an in-use span of an eligible size_class that starts at
 * span_start, as read lock-free from the page map) to the batch if it has
 * whole free kernel pages inside, within what is left of max_bytes: hold 1
 * takes its free list out, and with no lock held the pages are worked out and
 * the objects to keep are linked. A span with none is put back at once.
 * Returns whether the span joined the batch. */
static bool add_to_batch(struct inside_batch *batch, struct tcm_span *span, unsigned size_class,
			 uintptr_t span_start, size_t max_bytes)
{
	struct central *central = &centrals[size_class];
	size_t object_bytes = tcm_size_classes[size_class].object_bytes;
	size_t kernel_page = tcm_os_kernel_page_bytes();
	struct span_kernel_pages kernel = {
		.first = ((span_start + kernel_page - 1) & ~(uintptr_t)(kernel_page - 1)) - span_start,
		.bytes = kernel_page,
	};
	TCM_ASSERT(tcm_central_may_release_inside_spans(size_class));
	if (is_batch_full(batch, size_class, max_bytes))
		return false;

	/* Hold 1: take the span's free list out. Until hold 2 no one else frees
	 * the span, even if its last allocated object comes back, and no second
	 * releaser (the worker and malloc_trim may both be here) takes it. */
	tcm_lock(&central->lock);
	/* Only a span on this class's list is this class's while the lock is
	 * held: the record may have been freed and reused since the walk read it
	 * (span.h, on_list_class), so that is checked before anything else. */
	if (atomic_load_explicit(&span->on_list_class, memory_order_relaxed) != size_class ||
	    span->start != span_start || span->size_class != size_class || span->is_releasing_inside) {
		tcm_unlock(&central->lock);
		return false;
	}
	if (span->free_objects == NULL || span->allocated_objects >= span->allocated_after_page_release ||
	    !claim_releasing_slot(span)) {
		if (span->free_objects == NULL || span->allocated_objects >= span->allocated_after_page_release)
			atomic_store_explicit(&span->may_release_inside, 0, memory_order_relaxed);
		tcm_unlock(&central->lock);
		return false;
	}
	void *taken = span->free_objects;
	uint64_t is_free = span->listed_objects;
	span->taken_out_objects = is_free;
	uintptr_t carved_bytes = span->carve_next - span_start;
	span->free_objects = NULL;
	span->listed_objects = 0;
	span->is_releasing_inside = 1;
	if (!span_has_free(span))
		list_remove(central, span);
	tcm_unlock(&central->lock);

	/* No lock from here to hold 2. Which kernel pages hold only free objects
	 * (read from the map, not from the list: a walk would be a cache miss per
	 * object); the objects on them become stranded (neither allocated nor
	 * listed, so the span still empties without them), the others are linked
	 * again from their bits, stores that do not wait on one another: all
	 * before madvise zeroes any link. */
	TCM_ASSERT(listed_map_of(central, span_start, taken) == is_free);
	(void)taken;
	struct inside_release *release = &batch->spans[batch->span_count];
	*release = (struct inside_release){ .span = span, .size_class = size_class,
					    .first_range = batch->range_count };
	uint64_t pages = free_kernel_pages(is_free, object_bytes, central->first_object_offset, carved_bytes,
					   kernel, max_bytes - batch->planned_bytes, &release->is_cut_short);
	for (unsigned k = 0; k < 64; k++)
		if ((pages >> k) & 1)
			release->stranded |= objects_overlapping(object_bytes, central->first_object_offset,
								 kernel.first + k * kernel_page,
								 kernel.first + (k + 1) * kernel_page);
	release->kept = is_free & ~release->stranded;
	for (uint64_t rest = release->kept; rest != 0; rest &= rest - 1) {
		void *object = (void *)(first_object_of(central, span_start) +
					(uintptr_t)__builtin_ctzll(rest) * object_bytes);
		*(void **)object = release->kept_head;
		release->kept_head = object;
		if (release->kept_tail == NULL)
			release->kept_tail = object;
	}
	if (pages == 0) {
		put_back_after_release(release);
		return false;
	}
	/* One range per run of free pages. */
	for (unsigned k = 0; k < 64;) {
		if (((pages >> k) & 1) == 0) {
			k++;
			continue;
		}
		unsigned run_end = k;
		while (run_end < 64 && ((pages >> run_end) & 1))
			run_end++;
		size_t run_bytes = (run_end - k) * kernel_page;
		batch->ranges[batch->range_count++] = (struct tcm_os_range){
			(void *)(span_start + kernel.first + k * kernel_page), run_bytes };
		batch->planned_bytes += run_bytes;
		k = run_end;
	}
	release->range_count = batch->range_count - release->first_range;
	batch->span_count++;
	return true;
}

/* Releases the batch's ranges with no lock held and puts every span back (a
 * failed range leaves its objects stranded but resident: they are handed out
 * like the others). Returns the bytes released. */
static size_t release_batch(struct inside_batch *batch)
{
	if (batch->span_count == 0)
		return 0;
	unsigned calls = tcm_os_release_ranges(batch->ranges, batch->range_count);
	size_t released = 0;
	for (size_t i = 0; i < batch->range_count; i++)
		released += batch->ranges[i].bytes;
	for (size_t i = 0; i < batch->span_count; i++)
		put_back_after_release(&batch->spans[i]);
	atomic_fetch_add_explicit(&inside_span_release_calls, calls, memory_order_relaxed);
	atomic_fetch_add_explicit(&inside_span_released_bytes, released, memory_order_relaxed);
	return released;
}

size_t tcm_central_release_inside_span(struct tcm_span *span, unsigned size_class, uintptr_t span_start,
				       size_t max_bytes)
{
	struct inside_batch batch = { .span_count = 0 };
	add_to_batch(&batch, span, size_class, span_start, max_bytes);
	return release_batch(&batch);
}

void tcm_central_after_fork_in_child(void)
{
	for (unsigned slot = 0; slot < RELEASING_INSIDE_SLOTS; slot++) {
		struct tcm_span *span = atomic_exchange_explicit(&releasing_inside[slot], NULL, memory_order_relaxed);
		if (span == NULL)
			continue;
		unsigned size_class = span->size_class;
		struct central *central = &centrals[size_class];
		/* The objects taken out are free; some pages may be released.
		 * As stranded objects they are handed out last and linked with
		 * no lock held, which is right for either. */
		tcm_lock(&central->lock);
		span->stranded_objects |= span->taken_out_objects;
		span->taken_out_objects = 0;
		span->is_releasing_inside = 0;
		bool is_emptied = span->allocated_objects == 0;
		if (is_emptied) {
			if (is_listed(span))
				list_remove(central, span);
		} else if (!is_listed(span)) {
			list_push(central, span);
		}
		tcm_unlock(&central->lock);
		if (is_emptied) {
			span->next = NULL;
			free_emptied_spans(central, span, 1);
		}
	}
}

/* Where the next walk for spans with free pages inside starts: a page number. */
static _Atomic uintptr_t inside_span_cursor;

size_t tcm_central_release_inside_spans(size_t max_bytes, size_t max_pages_walked)
{
	const uintptr_t root_entries = (uintptr_t)1 << TCM_PAGE_MAP_ROOT_BITS;
	uintptr_t page = atomic_load_explicit(&inside_span_cursor, memory_order_relaxed);
	size_t walked = 0;
	struct inside_batch batch = { .span_count = 0 };
	while ((page >> TCM_PAGE_MAP_LEAF_BITS) < root_entries) {
		struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
		if (leaf == NULL) {
			page = ((page >> TCM_PAGE_MAP_LEAF_BITS) + 1) << TCM_PAGE_MAP_LEAF_BITS;
			continue;
		}
		for (size_t index = page & (TCM_PAGE_MAP_LEAF_PAGES - 1); index < TCM_PAGE_MAP_LEAF_PAGES;
		     index++, page++) {
			unsigned size_class = atomic_load_explicit(&leaf->size_class[index], memory_order_relaxed);
			if (size_class == 0)
				continue;   /* a byte each: cheap, and not counted */
			if (walked++ == max_pages_walked) {
				atomic_store_explicit(&inside_span_cursor, page, memory_order_relaxed);
				return release_batch(&batch);
			}
			if (!centrals[size_class].keeps_listed_map)
				continue;   /* not eligible (tcm_central_may_release_inside_spans) */
			struct tcm_span *span = atomic_load_explicit(&leaf->span[index], memory_order_relaxed);
			uintptr_t span_start = page << TCM_PAGE_SHIFT;
			if (span == NULL || span->start != span_start)
				continue;   /* not the span's first page (or a stale entry) */
			/* Checked again under the lock; most spans stop here without it. */
			if (!atomic_load_explicit(&span->may_release_inside, memory_order_relaxed) ||
			    atomic_load_explicit(&span->on_list_class, memory_order_relaxed) != size_class)
				continue;
			if (add_to_batch(&batch, span, size_class, span_start, max_bytes))
				continue;
			if (batch.span_count != 0 && is_batch_full(&batch, size_class, max_bytes)) {
				/* This span waits for the next walk, which starts here. */
				atomic_store_explicit(&inside_span_cursor, page, memory_order_relaxed);
				return release_batch(&batch);
			}
		}
	}
	atomic_store_explicit(&inside_span_cursor, 0, memory_order_relaxed);   /* next walk from the start */
	return release_batch(&batch);
}

void tcm_central_inside_span_release_stats(uint64_t *released_bytes, uint64_t *release_calls)
{
	*released_bytes = atomic_load_explicit(&inside_span_released_bytes, memory_order_relaxed);
	*release_calls = atomic_load_explicit(&inside_span_release_calls, memory_order_relaxed);
}

uint32_t tcm_central_capacity(unsigned size_class)
{
	return centrals[size_class].capacity;
}
