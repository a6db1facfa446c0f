/* core/page_heap.c - spans of 8 KiB pages: free sets, splitting, coalescing,
 * growth, in-place resizing of large spans and the release step.
 *
 * Invariants (beyond page_heap.h and span.h):
 *   - committed_set holds exactly the FREE_COMMITTED spans with a whole kernel
 *     page inside, sliver_set those without one (on kernels with pages larger
 *     than tcm's), released_set the RELEASED ones; each set's pages counter is
 *     the sum of its spans;
 *   - a released range covers only whole kernel pages inside one free committed span
 *     (DESIGN invariant 11): the kernel pages at its edges may be shared with
 *     a neighbour in use, so they stay committed as spans of their own, and a
 *     RELEASED span is exactly a madvised (or never touched) range;
 *   - a free committed span shares no kernel page with a released span (the
 *     released part joins the committed span: take_shared_kernel_pages_locked),
 *     so what sliver_set holds shares its kernel pages with memory in use;
 *   - the pool of spare span records is refilled with no lock held, so a
 *     split under the lock never maps memory; a record back in the pool has
 *     state IN_USE so that a stale page-map entry never merges it;
 *   - a page's size-class byte in the page map is non-zero exactly while it
 *     belongs to an IN_USE small-object span;
 *   - a span handed out from released memory says so (*is_zeroed): its
 *     pages are zero and not resident, and the caller asks the resident-set
 *     policy (core/resident.h) what to release before it faults them in;
 *   - freeing spans never waits for the lock: when it is busy the spans go
 *     on a lock-free deferred list, emptied by the next free that gets the
 *     lock, and by every allocation, in-place growth and release step before
 *     it looks;
 *   - every loop under the lock is bounded by a constant (bitmap words,
 *     TCM_PAGE_HEAP_BUCKET_PROBES, the pages of one small-object span,
 *     SPANS_PER_HOLD spans freed per hold). */
#include "page_heap.h"

#include "lock.h"
#include "metadata.h"
#include "os.h"
#include "page_map.h"
#include "size_class.h"

#include <errno.h>
#include <string.h>

#define BUCKET_COUNT        40   /* log2(npages) of spans above 128 pages */
_Static_assert((size_t)1 << (BUCKET_COUNT - 1) >= TCM_PAGE_HEAP_MAX_PAGES,
	       "every span up to TCM_PAGE_HEAP_MAX_PAGES has a bucket");
#define BUCKET_PROBES       16   /* spans looked at in the one bucket that may not fit */
#define EXACT_WORDS         ((TCM_PAGE_HEAP_EXACT_PAGES + 64) / 64)
#define GROW_MIN_BYTES      ((size_t)16 << 20)
#define SPARE_BLOCK_RECORDS 64
#define FIRST_BLOCK_RECORDS 16   /* the library's own first block: more than a small program's spans,
                                    and little enough not to spread the variables a start writes */
#define SPARE_LOW_WATER     4    /* a split needs at most two records */
#define SPANS_PER_HOLD      16   /* spans freed in one hold of the lock */

struct free_set {
	struct tcm_span *exact[TCM_PAGE_HEAP_EXACT_PAGES + 1]; /* by npages; [0] unused */
	struct tcm_span *bucket[BUCKET_COUNT];                /* by log2(npages) */
	uint64_t         exact_nonempty[EXACT_WORDS];         /* bit n: exact[n] non-empty */
	uint64_t         bucket_nonempty;                     /* bit b: bucket[b] non-empty */
	_Atomic uint64_t pages;                               /* written under the lock, read by stats */
};

static struct tcm_lock page_heap_lock = TCM_LOCK_INITIALIZER(TCM_LOCK_RANK_PAGE_HEAP);
static struct free_set committed_set;    /* guarded by page_heap_lock */
static struct free_set sliver_set;       /* guarded by page_heap_lock */
static struct free_set released_set;     /* guarded by page_heap_lock */
static struct tcm_span *spare_records;   /* guarded by page_heap_lock: records given back */
/* The untaken rest of the newest block of records: taken in address order, so a record is
 * first written when it is taken, and a block costs the pages of the records used (a process's
 * start uses a few), not all of its SPARE_BLOCK_RECORDS at once. The first block is the
 * library's own, so a process that allocates little writes no metadata region at all: a page
 * and the page table that maps it, at every start (issue 12); later blocks come from metadata. */
static struct tcm_span first_records[FIRST_BLOCK_RECORDS];
static struct tcm_span *fresh_records = first_records;                          /* guarded by */
static struct tcm_span *fresh_records_end = first_records + FIRST_BLOCK_RECORDS; /* page_heap_lock */
/* The pages of the heap's regions lie in [heap_first_page, heap_end_page): a neighbour outside
 * is no span, so its page-map entry is not read (neighbour_at_locked: a fresh region's two
 * would be two pages of the map faulted in for nothing). Guarded by page_heap_lock; only widen. */
static uintptr_t heap_first_page = UINTPTR_MAX, heap_end_page;
/* RELEASING spans (being madvised with no lock held), linked through next and
 * prev, which no free set uses then: a fork child, where the releasing thread
 * does not exist, takes them back (tcm_page_heap_after_fork_in_child). */
static struct tcm_span *releasing_spans; /* guarded by page_heap_lock */
static _Atomic size_t spare_count = FIRST_BLOCK_RECORDS; /* spare_records and fresh_records;
                                                           written under the lock */
static _Atomic uint64_t in_use_pages;    /* written under the lock */
static _Atomic size_t largest_large_pages; /* the largest large span asked for; only grows
                                              (the resident-set policy's room) */
static _Atomic uint64_t released_total_bytes;
static _Atomic uint64_t release_calls;
/* IN_USE spans whose free found the lock busy, linked through next: pushed
 * lock-free, taken whole by exchange (so no ABA), freed by the next thread
 * that gets the lock. deferred_pages counts them for stats only. */
static _Atomic(struct tcm_span *) deferred_spans;
static _Atomic int64_t deferred_pages;

struct tcm_lock *tcm_page_heap_lock_object(void)
{
	return &page_heap_lock;
}

static void counter_move(_Atomic uint64_t *counter, int64_t delta)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + (uint64_t)delta,
			      memory_order_relaxed);
}

/* ---- free sets ------------------------------------------------------------ */

static unsigned bucket_of(size_t npages)
{
	return 63u - (unsigned)__builtin_clzll(npages);
}

static struct tcm_span **list_head(struct free_set *set, size_t npages)
{
	return npages <= TCM_PAGE_HEAP_EXACT_PAGES ? &set->exact[npages] : &set->bucket[bucket_of(npages)];
}

static void mark_nonempty(struct free_set *set, size_t npages, bool nonempty)
{
	uint64_t *word, bit;
	if (npages <= TCM_PAGE_HEAP_EXACT_PAGES) {
		word = &set->exact_nonempty[npages / 64];
		bit = (uint64_t)1 << (npages % 64);
	} else {
		word = &set->bucket_nonempty;
		bit = (uint64_t)1 << bucket_of(npages);
	}
	*word = nonempty ? *word | bit : *word & ~bit;
}

/* What a release works in: whole kernel pages made of whole tcm pages. */
static size_t release_unit_bytes(void)
{
	size_t kernel_page = tcm_os_kernel_page_bytes();
	return kernel_page > TCM_PAGE_BYTES ? kernel_page : TCM_PAGE_BYTES;
}

/* The whole kernel pages inside span: [*first, *end), none when *first >= *end. */
static void kernel_pages_inside(const struct tcm_span *span, uintptr_t *first, uintptr_t *end)
{
	uintptr_t unit = release_unit_bytes();
	*first = (span->start + unit - 1) & ~(unit - 1);
	*end = (span->start + span->npages * TCM_PAGE_BYTES) & ~(unit - 1);
}

/* The free set of a free span: released_set; committed_set when a whole
 * kernel page lies inside it, so that the release step finds one at its
 * first look; else sliver_set (nothing in it can be released until a free
 * neighbour joins it). */
static struct free_set *set_of(const struct tcm_span *span)
{
	if (span->state == TCM_SPAN_RELEASED)
		return &released_set;
	uintptr_t first, end;
	kernel_pages_inside(span, &first, &end);
	return first < end ? &committed_set : &sliver_set;
}

static void set_insert(struct free_set *set, struct tcm_span *span)
{
	struct tcm_span **head = list_head(set, span->npages);
	span->prev = NULL;
	span->next = *head;
	if (*head != NULL)
		(*head)->prev = span;
	*head = span;
	mark_nonempty(set, span->npages, true);
	counter_move(&set->pages, (int64_t)span->npages);
}

static void set_remove(struct free_set *set, struct tcm_span *span)
{
	struct tcm_span **head = list_head(set, span->npages);
	if (span->prev != NULL)
		span->prev->next = span->next;
	else
		*head = span->next;
	if (span->next != NULL)
		span->next->prev = span->prev;
	span->next = span->prev = NULL;
	if (*head == NULL)
		mark_nonempty(set, span->npages, false);
	counter_move(&set->pages, -(int64_t)span->npages);
}

/* The smallest exact list with at least npages, else a bucket span that fits. */
static struct tcm_span *set_find(struct free_set *set, size_t npages)
{
	if (npages <= TCM_PAGE_HEAP_EXACT_PAGES) {
		for (size_t word = npages / 64; word < EXACT_WORDS; word++) {
			uint64_t bits = set->exact_nonempty[word];
			if (word == npages / 64)
				bits &= ~(uint64_t)0 << (npages % 64);
			if (bits != 0)
				return set->exact[word * 64 + (size_t)__builtin_ctzll(bits)];
		}
		if (set->bucket_nonempty == 0)
			return NULL;
		return set->bucket[__builtin_ctzll(set->bucket_nonempty)];
	}
	unsigned bucket = bucket_of(npages);
	TCM_ASSERT(bucket < BUCKET_COUNT);
	int probes = 0;
	for (struct tcm_span *span = set->bucket[bucket]; span != NULL && probes < BUCKET_PROBES;
	     span = span->next, probes++)
		if (span->npages >= npages)
			return span;
	uint64_t larger = bucket + 1 < 64 ? set->bucket_nonempty & (~(uint64_t)0 << (bucket + 1)) : 0;
	return larger != 0 ? set->bucket[__builtin_ctzll(larger)] : NULL;
}

/* The smaller of the fits for npages in the two committed sets. */
static struct tcm_span *committed_find(size_t npages)
{
	struct tcm_span *whole = set_find(&committed_set, npages);
	struct tcm_span *sliver = set_find(&sliver_set, npages);
	return whole == NULL || (sliver != NULL && sliver->npages < whole->npages) ? sliver : whole;
}

static struct tcm_span *set_find_largest(struct free_set *set)
{
	if (set->bucket_nonempty != 0)
		return set->bucket[63 - __builtin_clzll(set->bucket_nonempty)];
	for (size_t word = EXACT_WORDS; word-- > 0;)
		if (set->exact_nonempty[word] != 0)
			return set->exact[word * 64 + 63 - (size_t)__builtin_clzll(set->exact_nonempty[word])];
	return NULL;
}

/* ---- span records --------------------------------------------------------- */

/* Every field to zero, on_list_class atomically: a walker of the page map
 * may read it through a stale entry (span.h). */
static void clear_record(struct tcm_span *record)
{
	record->start = 0;
	record->npages = 0;
	record->next = record->prev = NULL;
	record->state = TCM_SPAN_IN_USE;
	record->size_class = 0;
	atomic_store_explicit(&record->on_list_class, 0, memory_order_relaxed);
	record->is_releasing_inside = 0;
	atomic_store_explicit(&record->may_release_inside, 0, memory_order_relaxed);
	record->allocated_count = 0;
	record->free_list = NULL;
	record->carve_next = record->carve_end = 0;
	record->allocated_count_at_inside_release = 0;
	record->stranded_map = 0;
	record->listed_map = 0;
	record->taken_out_map = 0;
}

static struct tcm_span *take_spare_locked(void)
{
	struct tcm_span *record = spare_records;
	if (record != NULL) {
		spare_records = record->next;
	} else {
		TCM_ASSERT(fresh_records < fresh_records_end); /* callers hold the lock from lock_with_records */
		record = fresh_records++;
	}
	atomic_store_explicit(&spare_count, atomic_load_explicit(&spare_count, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	clear_record(record);
	return record;
}

static void give_spare_locked(struct tcm_span *record)
{
	clear_record(record);   /* IN_USE: never mergeable through a stale entry */
	record->next = spare_records;
	spare_records = record;
	atomic_store_explicit(&spare_count, atomic_load_explicit(&spare_count, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* REQUIRES: no lock held. Returns 0 or ENOMEM. */
static int reserve_records(void)
{
	if (atomic_load_explicit(&spare_count, memory_order_relaxed) >= SPARE_LOW_WATER)
		return 0;
	struct tcm_span *block = tcm_metadata_alloc(SPARE_BLOCK_RECORDS * sizeof(struct tcm_span));
	if (block == NULL)
		return ENOMEM;
	tcm_lock(&page_heap_lock);
	/* The older block's untaken records (fewer than SPARE_LOW_WATER, unless another thread
	 * refilled meanwhile) join the given-back ones: the new block takes its place. */
	size_t older = (size_t)(fresh_records_end - fresh_records);
	while (fresh_records < fresh_records_end)
		give_spare_locked(fresh_records++);
	atomic_store_explicit(&spare_count,
			      atomic_load_explicit(&spare_count, memory_order_relaxed) - older + SPARE_BLOCK_RECORDS,
			      memory_order_relaxed);
	fresh_records = block;
	fresh_records_end = block + SPARE_BLOCK_RECORDS;
	tcm_unlock(&page_heap_lock);
	return 0;
}

/* Takes the lock with at least records spare span records in the pool (the
 * most one critical section splits off). The pool is refilled with no lock
 * held, so other threads may use it up before the lock is taken: the count is
 * checked again under the lock. Returns 0 with the lock held, or ENOMEM
 * without it. REQUIRES: no lock held. */
static int lock_with_records(size_t records) TCM_TRY_ACQUIRE(0, &page_heap_lock)
{
	for (;;) {
		if (reserve_records() != 0)
			return ENOMEM;
		tcm_lock(&page_heap_lock);
		if (atomic_load_explicit(&spare_count, memory_order_relaxed) >= records)
			return 0;
		tcm_unlock(&page_heap_lock);
	}
}

/* ---- spans ------------------------------------------------------------------- */

static uintptr_t first_page_of(const struct tcm_span *span)
{
	return span->start >> TCM_PAGE_SHIFT;
}

/* The span the page map records for page, a neighbour being looked for (maybe stale: callers
 * check it); NULL outside the heap's regions, whose entries are not read. */
static struct tcm_span *neighbour_at_locked(uintptr_t page)
{
	return page >= heap_first_page && page < heap_end_page ? tcm_page_map_get(page) : NULL;
}

static void map_ends_locked(struct tcm_span *span)
{
	tcm_page_map_set_span(first_page_of(span), span);
	tcm_page_map_set_span(first_page_of(span) + span->npages - 1, span);
}

/* Cuts pages off the front (is_front) or the back of span into a new record
 * of span's state, which it returns; both ends of both map to them.
 * REQUIRES: a spare record; 0 < pages < span->npages. */
static struct tcm_span *split_off_locked(struct tcm_span *span, size_t pages, bool is_front)
{
	TCM_ASSERT(pages > 0 && pages < span->npages);
	struct tcm_span *piece = take_spare_locked();
	piece->npages = pages;
	piece->state = span->state;
	span->npages -= pages;
	if (is_front) {
		piece->start = span->start;
		span->start += pages * TCM_PAGE_BYTES;
	} else {
		piece->start = span->start + span->npages * TCM_PAGE_BYTES;
	}
	map_ends_locked(piece);
	map_ends_locked(span);
	return piece;
}

/* Drops pages from the front (is_front) or the back of a span no list holds:
 * they belong to a neighbour now. REQUIRES: 0 < pages < span->npages. */
static void trim_locked(struct tcm_span *span, size_t pages, bool is_front)
{
	TCM_ASSERT(pages > 0 && pages < span->npages);
	if (is_front)
		span->start += pages * TCM_PAGE_BYTES;
	span->npages -= pages;
	map_ends_locked(span);
}

/* Splits the pages past keep_pages off into a free span of span's state,
 * which goes back to its set. REQUIRES: a spare record. */
static void split_tail_to_free_locked(struct tcm_span *span, size_t keep_pages)
{
	if (span->npages == keep_pages)
		return;
	struct tcm_span *tail = split_off_locked(span, span->npages - keep_pages, false);
	set_insert(set_of(tail), tail);
}

/* Splits the first head_pages pages off into a free span of span's state,
 * which goes back to its set. REQUIRES: a spare record. */
static void split_head_to_free_locked(struct tcm_span *span, size_t head_pages)
{
	if (head_pages == 0)
		return;
	struct tcm_span *head = split_off_locked(span, head_pages, true);
	set_insert(set_of(head), head);
}

/* The released neighbour on one side of span (a free committed span, or one
 * about to be) when span's edge on that side is not on a kernel page and the
 * neighbour holds all the rest of that kernel page; NULL otherwise. *pages:
 * the neighbour's tcm pages in that kernel page. */
static struct tcm_span *released_sharer_locked(const struct tcm_span *span, bool is_left, size_t *pages)
{
	uintptr_t unit = release_unit_bytes();
	uintptr_t edge = is_left ? span->start : span->start + span->npages * TCM_PAGE_BYTES;
	if (edge % unit == 0)
		return NULL;
	uintptr_t page_start = edge & ~(unit - 1), page_end = page_start + unit;
	uintptr_t neighbour_page = is_left ? first_page_of(span) - 1 : edge >> TCM_PAGE_SHIFT;
	struct tcm_span *other = neighbour_at_locked(neighbour_page);   /* may be stale: checked below */
	if (other == NULL || other->state != TCM_SPAN_RELEASED)
		return NULL;
	uintptr_t other_end = other->start + other->npages * TCM_PAGE_BYTES;
	bool holds_the_rest = is_left ? other_end == edge && other->start <= page_start
				      : other->start == edge && other_end >= page_end;
	if (!holds_the_rest)
		return NULL;
	*pages = (is_left ? edge - page_start : page_end - edge) / TCM_PAGE_BYTES;
	return other;
}

/* A free committed span and a released one never share a kernel page: the
 * released span's part of it joins the committed span, whose whole kernel
 * page can then be released (DESIGN invariant 11; without this, 8 KiB freed
 * next to released memory would stay resident for good). The part is zero and
 * not resident already; counting it committed until then is conservative:
 * committed memory may be resident, released memory never is. Returns
 * whether a released span was used up, so that span may now have a
 * committed neighbour to merge with. */
static bool take_shared_kernel_pages_locked(struct tcm_span *span)
{
	bool is_used_up = false;
	for (int side = 0; side < 2; side++) {
		size_t pages;
		struct tcm_span *other = released_sharer_locked(span, side == 0, &pages);
		if (other == NULL)
			continue;
		set_remove(&released_set, other);
		if (side == 0)
			span->start -= pages * TCM_PAGE_BYTES;
		span->npages += pages;
		if (other->npages == pages) {
			give_spare_locked(other);
			is_used_up = true;
		} else {
			trim_locked(other, pages, side != 0);   /* the left neighbour loses its back */
			set_insert(&released_set, other);
		}
	}
	return is_used_up;
}

/* Merges span (on no list) with its free neighbours in state. */
static void merge_with_neighbours_locked(struct tcm_span *span, enum tcm_span_state state)
{
	struct tcm_span *left = neighbour_at_locked(first_page_of(span) - 1);
	if (left != NULL && left->state == state && left->start + left->npages * TCM_PAGE_BYTES == span->start) {
		set_remove(set_of(left), left);
		span->start = left->start;
		span->npages += left->npages;
		give_spare_locked(left);
	}
	struct tcm_span *right = neighbour_at_locked(first_page_of(span) + span->npages);
	if (right != NULL && right->state == state && right->start == span->start + span->npages * TCM_PAGE_BYTES) {
		set_remove(set_of(right), right);
		span->npages += right->npages;
		give_spare_locked(right);
	}
}

/* Inserts a span no list holds into the free set of state, merging it with
 * neighbours in that same state; a committed span also takes the released
 * parts of the kernel pages at its edges (after which its edges are on
 * kernel pages, and a committed span it reached merges too). */
static void insert_free_locked(struct tcm_span *span, enum tcm_span_state state)
{
	span->state = (uint8_t)state;
	span->size_class = 0;
	merge_with_neighbours_locked(span, state);
	if (state == TCM_SPAN_FREE_COMMITTED && take_shared_kernel_pages_locked(span))
		merge_with_neighbours_locked(span, state);
	map_ends_locked(span);
	set_insert(set_of(span), span);
}

/* REQUIRES: no lock held. Maps at least npages more pages into the released
 * set. Returns 0 or ENOMEM; on failure nothing stays mapped. */
static int grow(size_t npages)
{
	size_t bytes = npages * TCM_PAGE_BYTES;
	if (npages > TCM_PAGE_HEAP_MAX_PAGES)
		return ENOMEM;
	if (bytes < GROW_MIN_BYTES)
		bytes = GROW_MIN_BYTES;
	/* Whole kernel pages: the region's last one holds no byte outside the heap. */
	bytes = (bytes + release_unit_bytes() - 1) & ~(release_unit_bytes() - 1);
	void *memory = tcm_os_map(bytes, TCM_PAGE_BYTES);
	if (memory == NULL)
		return ENOMEM;
	if (tcm_page_map_ensure((uintptr_t)memory >> TCM_PAGE_SHIFT, bytes / TCM_PAGE_BYTES) != 0 ||
	    lock_with_records(1) != 0) {
		tcm_os_unmap(memory, bytes);   /* never published: no pointer into it exists */
		return ENOMEM;
	}
	struct tcm_span *span = take_spare_locked();
	span->start = (uintptr_t)memory;
	span->npages = bytes / TCM_PAGE_BYTES;
	if (first_page_of(span) < heap_first_page)
		heap_first_page = first_page_of(span);
	if (first_page_of(span) + span->npages > heap_end_page)
		heap_end_page = first_page_of(span) + span->npages;
	insert_free_locked(span, TCM_SPAN_RELEASED);
	tcm_unlock(&page_heap_lock);
	return 0;
}

/* Takes a free span of at least want_pages out of its set, committed first. */
static struct tcm_span *detach_fit_locked(size_t want_pages)
{
	struct tcm_span *span = committed_find(want_pages);
	if (span == NULL)
		span = set_find(&released_set, want_pages);
	if (span != NULL)
		set_remove(set_of(span), span);
	return span;
}

static void hand_out_locked(struct tcm_span *span, unsigned size_class, bool *is_zeroed)
{
	*is_zeroed = span->state == TCM_SPAN_RELEASED;
	span->state = TCM_SPAN_IN_USE;
	span->size_class = (uint8_t)size_class;
	if (size_class != 0) {
		/* Bounded: a small-object span has at most a few dozen pages. */
		for (size_t page = 0; page < span->npages; page++)
			tcm_page_map_set(first_page_of(span) + page, span, size_class);
	} else {
		map_ends_locked(span);
	}
	counter_move(&in_use_pages, (int64_t)span->npages);
}

/* Frees up to SPANS_PER_HOLD spans off the front of spans; returns the rest
 * and adds the pages freed to *pages. */
static struct tcm_span *free_some_locked(struct tcm_span *spans, int64_t *pages)
{
	for (int freed = 0; freed < SPANS_PER_HOLD && spans != NULL; freed++) {
		struct tcm_span *span = spans;
		spans = span->next;
		TCM_ASSERT(span->state == TCM_SPAN_IN_USE || span->state == TCM_SPAN_FREEING);
		counter_move(&in_use_pages, -(int64_t)span->npages);
		*pages += (int64_t)span->npages;
		if (span->size_class != 0) {
			/* Only pages of IN_USE small spans carry a class, so that a
			 * stray free of a pointer into free or large memory is seen
			 * as such. Bounded: a small-object span is a few dozen pages. */
			for (size_t page = 0; page < span->npages; page++)
				tcm_page_map_set(first_page_of(span) + page, span, 0);
		}
		span->next = span->prev = NULL;
		insert_free_locked(span, TCM_SPAN_FREE_COMMITTED);
	}
	return spans;
}

/* Pushes a non-empty list onto deferred_spans. No lock: the spans are the
 * caller's. Marked FREEING, so that a second free of a large block in one is
 * seen as the invalid pointer it is (tcm_page_heap_large_span_of). */
static void defer_spans(struct tcm_span *first)
{
	struct tcm_span *last = first;
	last->state = TCM_SPAN_FREEING;
	while (last->next != NULL) {
		last = last->next;
		last->state = TCM_SPAN_FREEING;
	}
	struct tcm_span *head = atomic_load_explicit(&deferred_spans, memory_order_relaxed);
	do
		last->next = head;
	while (!atomic_compare_exchange_weak_explicit(&deferred_spans, &head, first,
			memory_order_release, memory_order_relaxed));
}

/* Frees the deferred spans. With may_wait false it gives up (deferring the
 * rest again) as soon as the lock is busy. REQUIRES: no tcm lock held. */
static void free_deferred(bool may_wait)
{
	if (atomic_load_explicit(&deferred_spans, memory_order_relaxed) == NULL)
		return;
	struct tcm_span *spans = atomic_exchange_explicit(&deferred_spans, NULL, memory_order_acquire);
	while (spans != NULL) {
		if (may_wait)
			tcm_lock(&page_heap_lock);
		else if (!tcm_lock_try(&page_heap_lock)) {
			defer_spans(spans);
			return;
		}
		int64_t pages = 0;
		spans = free_some_locked(spans, &pages);
		tcm_unlock(&page_heap_lock);
		atomic_fetch_sub_explicit(&deferred_pages, pages, memory_order_relaxed);
	}
}

void tcm_page_heap_free_spans(struct tcm_span *spans)
{
	while (spans != NULL) {
		if (!tcm_lock_try(&page_heap_lock)) {
			int64_t pages = 0;
			for (struct tcm_span *span = spans; span != NULL; span = span->next)
				pages += (int64_t)span->npages;
			atomic_fetch_add_explicit(&deferred_pages, pages, memory_order_relaxed);
			defer_spans(spans);
			return;
		}
		int64_t pages = 0;
		spans = free_some_locked(spans, &pages);
		tcm_unlock(&page_heap_lock);
	}
	free_deferred(false);
}

static void releasing_link_locked(struct tcm_span *span)
{
	span->prev = NULL;
	span->next = releasing_spans;
	if (releasing_spans != NULL)
		releasing_spans->prev = span;
	releasing_spans = span;
}

static void releasing_unlink_locked(struct tcm_span *span)
{
	if (span->prev != NULL)
		span->prev->next = span->next;
	else
		releasing_spans = span->next;
	if (span->next != NULL)
		span->next->prev = span->prev;
	span->next = span->prev = NULL;
}

/* Under the lock, of the largest free committed span with a whole kernel page
 * inside, its last whole kernel pages, at most max_bytes of them, if they
 * come to min_bytes: split off (what lies before and after them, the kernel
 * pages shared with neighbours and what max_bytes leaves, stays committed),
 * marked RELEASING and returned; NULL when there is none. One span pick per
 * hold (DESIGN invariant 2). */
static struct tcm_span *take_for_release(size_t max_bytes, size_t min_bytes)
{
	if (lock_with_records(2) != 0)   /* a head and a tail may split off */
		return NULL;
	struct tcm_span *chunk = set_find_largest(&committed_set);
	uintptr_t first = 0, end = 0;
	if (chunk != NULL) {
		kernel_pages_inside(chunk, &first, &end);
		TCM_ASSERT(first < end);   /* what committed_set holds */
		if (end - first > max_bytes)
			first = end - max_bytes;
	}
	if (chunk == NULL || end - first < min_bytes) {
		tcm_unlock(&page_heap_lock);
		return NULL;
	}
	set_remove(&committed_set, chunk);
	split_tail_to_free_locked(chunk, (end - chunk->start) / TCM_PAGE_BYTES);
	split_head_to_free_locked(chunk, (first - chunk->start) / TCM_PAGE_BYTES);
	chunk->state = TCM_SPAN_RELEASING;   /* on no free set: nobody merges it */
	releasing_link_locked(chunk);
	tcm_unlock(&page_heap_lock);
	return chunk;
}

/* The release step: spans taken one by one (take_for_release, each the
 * largest left), each at least min_bytes, at most max_bytes in all and
 * TCM_OS_RELEASE_RANGES_MAX of them, released together with no lock held
 * (one system call where the kernel allows it: core/os.h), then put back as
 * released, or as committed where their release failed. */
static size_t release_largest(size_t max_bytes, size_t min_bytes)
{
	size_t left = max_bytes & ~(release_unit_bytes() - 1);
	if (left == 0)
		return 0;
	free_deferred(true);
	struct tcm_span *chunks[TCM_OS_RELEASE_RANGES_MAX];
	struct tcm_os_range ranges[TCM_OS_RELEASE_RANGES_MAX];
	size_t count = 0;
	while (count < TCM_OS_RELEASE_RANGES_MAX && left >= min_bytes && left != 0) {
		struct tcm_span *chunk = take_for_release(left, min_bytes);
		if (chunk == NULL)
			break;
		chunks[count] = chunk;
		ranges[count] = (struct tcm_os_range){ (void *)chunk->start, chunk->npages * TCM_PAGE_BYTES };
		left -= ranges[count++].bytes;
	}
	if (count == 0)
		return 0;
	unsigned calls = tcm_os_release_ranges(ranges, count);
	size_t released = 0;
	for (size_t i = 0; i < count; i++) {
		tcm_lock(&page_heap_lock);
		releasing_unlink_locked(chunks[i]);
		insert_free_locked(chunks[i], ranges[i].bytes != 0 ? TCM_SPAN_RELEASED : TCM_SPAN_FREE_COMMITTED);
		tcm_unlock(&page_heap_lock);
		released += ranges[i].bytes;
	}
	atomic_fetch_add_explicit(&released_total_bytes, released, memory_order_relaxed);
	atomic_fetch_add_explicit(&release_calls, calls, memory_order_relaxed);
	return released;
}

/* Keeps largest_large_pages up to date. */
static void note_large_request(size_t npages)
{
	size_t largest = atomic_load_explicit(&largest_large_pages, memory_order_relaxed);
	while (npages > largest &&
	       !atomic_compare_exchange_weak_explicit(&largest_large_pages, &largest, npages,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

/* A span of npages whose start is a multiple of align_pages pages (1: any),
 * for size_class (0: a large span), committed memory first: what precedes the
 * aligned start and what follows the span stay free. */
static struct tcm_span *alloc_span(size_t npages, size_t align_pages, unsigned size_class, bool *is_zeroed)
{
	size_t want_pages = npages + align_pages - 1;
	if (size_class == 0)
		note_large_request(npages);
	for (;;) {
		free_deferred(true);   /* committed memory first: it is resident already */
		if (lock_with_records(align_pages > 1 ? 2 : 1) != 0)   /* a head and a tail may split off */
			return NULL;
		struct tcm_span *span = detach_fit_locked(want_pages);
		if (span == NULL) {
			tcm_unlock(&page_heap_lock);
			if (grow(want_pages) != 0)
				return NULL;
			continue;
		}
		size_t align_bytes = align_pages * TCM_PAGE_BYTES;
		split_head_to_free_locked(span, (((span->start + align_bytes - 1) & ~(align_bytes - 1)) - span->start) /
						TCM_PAGE_BYTES);
		split_tail_to_free_locked(span, npages);
		hand_out_locked(span, size_class, is_zeroed);
		tcm_unlock(&page_heap_lock);
		return span;
	}
}

struct tcm_span *tcm_page_heap_alloc_aligned(size_t npages, size_t align_pages, bool *is_zeroed)
{
	if (npages == 0 || npages > TCM_PAGE_HEAP_MAX_PAGES || align_pages == 0 ||
	    align_pages > TCM_PAGE_HEAP_MAX_PAGES)
		return NULL;
	return alloc_span(npages, align_pages, 0, is_zeroed);
}

struct tcm_span *tcm_page_heap_alloc(size_t npages, unsigned size_class, bool *is_zeroed)
{
	if (npages == 0 || npages > TCM_PAGE_HEAP_MAX_PAGES)
		return NULL;
	return alloc_span(npages, 1, size_class, is_zeroed);
}

bool tcm_page_heap_try_grow_in_place(struct tcm_span *span, size_t new_npages)
{
	TCM_ASSERT(span->state == TCM_SPAN_IN_USE && span->size_class == 0 && new_npages > span->npages);
	if (new_npages > TCM_PAGE_HEAP_MAX_PAGES)
		return false;
	free_deferred(true);   /* a deferred free may be the neighbour wanted */
	size_t more_pages = new_npages - span->npages;
	tcm_lock(&page_heap_lock);
	/* The entry may be stale; a free span that starts at the end is the neighbour. */
	struct tcm_span *right = neighbour_at_locked(first_page_of(span) + span->npages);
	bool grown = right != NULL && right->start == span->start + span->npages * TCM_PAGE_BYTES &&
		     right->npages >= more_pages &&
		     (right->state == TCM_SPAN_FREE_COMMITTED ||
		      (right->state == TCM_SPAN_RELEASED && committed_find(new_npages) == NULL));
	if (grown) {
		set_remove(set_of(right), right);
		if (right->npages == more_pages) {
			give_spare_locked(right);
		} else {
			trim_locked(right, more_pages, true);
			set_insert(set_of(right), right);
		}
		span->npages = new_npages;
		map_ends_locked(span);
		counter_move(&in_use_pages, (int64_t)more_pages);
	}
	tcm_unlock(&page_heap_lock);
	return grown;
}

bool tcm_page_heap_shrink_in_place(struct tcm_span *span, size_t new_npages)
{
	TCM_ASSERT(span->state == TCM_SPAN_IN_USE && span->size_class == 0 && new_npages > 0 &&
		   new_npages < span->npages);
	if (lock_with_records(1) != 0)
		return false;
	struct tcm_span *tail = split_off_locked(span, span->npages - new_npages, false);
	counter_move(&in_use_pages, -(int64_t)tail->npages);
	insert_free_locked(tail, TCM_SPAN_FREE_COMMITTED);
	tcm_unlock(&page_heap_lock);
	return true;
}

void tcm_page_heap_after_fork_in_child(void)
{
	tcm_lock(&page_heap_lock);
	/* At most one span per thread that was releasing at the fork. Its
	 * madvise may have run in part: free, maybe resident, so committed. */
	while (releasing_spans != NULL) {
		struct tcm_span *span = releasing_spans;
		releasing_unlink_locked(span);
		insert_free_locked(span, TCM_SPAN_FREE_COMMITTED);
	}
	tcm_unlock(&page_heap_lock);
}

size_t tcm_page_heap_release_step(size_t max_bytes)
{
	return release_largest(max_bytes, 0);
}

size_t tcm_page_heap_release_pieces(size_t max_bytes, size_t min_piece_bytes)
{
	return release_largest(max_bytes, min_piece_bytes);
}

struct tcm_span *tcm_page_heap_large_span_of(const void *ptr)
{
	if (((uintptr_t)ptr & (TCM_PAGE_BYTES - 1)) != 0)
		return NULL;
	struct tcm_span *span = tcm_page_map_get((uintptr_t)ptr >> TCM_PAGE_SHIFT);
	if (span == NULL || span->start != (uintptr_t)ptr || span->state != TCM_SPAN_IN_USE ||
	    span->size_class != 0)
		return NULL;
	return span;
}

void tcm_page_heap_stats(struct tcm_page_heap_stats *out)
{
	/* Deferred spans are free already, though still counted in use. */
	uint64_t in_use = atomic_load_explicit(&in_use_pages, memory_order_relaxed);
	int64_t deferred = atomic_load_explicit(&deferred_pages, memory_order_relaxed);
	uint64_t deferred_counted = deferred < 0 ? 0 : (uint64_t)deferred > in_use ? in_use : (uint64_t)deferred;
	out->in_use_bytes = (in_use - deferred_counted) * TCM_PAGE_BYTES;
	out->free_committed_bytes = (atomic_load_explicit(&committed_set.pages, memory_order_relaxed) +
				     atomic_load_explicit(&sliver_set.pages, memory_order_relaxed) + deferred_counted) *
				    TCM_PAGE_BYTES;
	out->free_released_bytes = atomic_load_explicit(&released_set.pages, memory_order_relaxed) * TCM_PAGE_BYTES;
	out->released_total_bytes = atomic_load_explicit(&released_total_bytes, memory_order_relaxed);
	out->release_calls = atomic_load_explicit(&release_calls, memory_order_relaxed);
	out->largest_large_bytes = (uint64_t)atomic_load_explicit(&largest_large_pages, memory_order_relaxed) *
				   TCM_PAGE_BYTES;
}

static int check_list(struct free_set *set, struct tcm_span *span, enum tcm_span_state state, size_t min_pages,
		      size_t max_pages, uint64_t *pages)
{
	for (struct tcm_span *prev = NULL; span != NULL; prev = span, span = span->next) {
		if (span->state != state || span->prev != prev || set_of(span) != set)
			return __LINE__;
		size_t shared_pages;
		if (state == TCM_SPAN_FREE_COMMITTED && (released_sharer_locked(span, true, &shared_pages) != NULL ||
							 released_sharer_locked(span, false, &shared_pages) != NULL))
			return __LINE__;   /* a kernel page shared with released memory */
		if (span->npages < min_pages || span->npages > max_pages)
			return __LINE__;
		if (tcm_page_map_get(first_page_of(span)) != span ||
		    tcm_page_map_get(first_page_of(span) + span->npages - 1) != span)
			return __LINE__;
		struct tcm_span *right = neighbour_at_locked(first_page_of(span) + span->npages);
		if (right != NULL && right->state == state &&
		    right->start == span->start + span->npages * TCM_PAGE_BYTES)
			return __LINE__;   /* two mergeable neighbours left apart */
		*pages += span->npages;
	}
	return 0;
}

static int check_set(struct free_set *set, enum tcm_span_state state)
{
	uint64_t pages = 0;
	int failed;
	for (size_t n = 1; n <= TCM_PAGE_HEAP_EXACT_PAGES; n++) {
		bool marked = (set->exact_nonempty[n / 64] >> (n % 64)) & 1;
		if (marked != (set->exact[n] != NULL))
			return __LINE__;
		if ((failed = check_list(set, set->exact[n], state, n, n, &pages)) != 0)
			return failed;
	}
	for (unsigned bucket = 0; bucket < BUCKET_COUNT; bucket++) {
		bool marked = (set->bucket_nonempty >> bucket) & 1;
		if (marked != (set->bucket[bucket] != NULL))
			return __LINE__;
		size_t low = (size_t)1 << bucket;
		if ((failed = check_list(set, set->bucket[bucket], state, low, low * 2 - 1, &pages)) != 0)
			return failed;
	}
	return pages == atomic_load_explicit(&set->pages, memory_order_relaxed) ? 0 : __LINE__;
}

int tcm_page_heap_check(void)
{
	tcm_lock(&page_heap_lock);
	int failed = check_set(&committed_set, TCM_SPAN_FREE_COMMITTED);
	if (failed == 0)
		failed = check_set(&sliver_set, TCM_SPAN_FREE_COMMITTED);
	if (failed == 0)
		failed = check_set(&released_set, TCM_SPAN_RELEASED);
	tcm_unlock(&page_heap_lock);
	return failed;
}
