/* core/alloc.c - malloc, free, realloc and aligned allocation across the tiers:
 * thread cache -> central lists -> page heap. The fast paths live here.
 *
 * Invariants:
 *   - the malloc fast path is: size class, pop the thread's list, clear the
 *     object's double-free mark; the free fast path is: page-map size class and
 *     distance to the span's end, one multiply to test for an object start, a
 *     look at the mark, push on the thread's list. Neither takes a lock, makes
 *     a system call, or checks state (the thread cache's max_count == 0 and
 *     zero multipliers send every non-ACTIVE cache to its slow path);
 *   - core bootstraps on the first slow path without calling malloc
 *     (DESIGN invariant 10);
 *   - a pointer tcm did not hand out, one inside a block, and a small object
 *     freed twice onto the calling thread's list are reported (at most a few
 *     times in all) and ignored; they never reach a free list. */
#include "core.h"

#include "central.h"
#include "debug.h"
#include "format.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_class.h"
#include "thread_cache.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define INVALID_POINTER_REPORTS 8
/* The largest block tcm can hand out; larger requests fail with ENOMEM before
 * any page arithmetic (which could overflow) is done on them. */
#define LARGE_MAX_BYTES (TCM_PAGE_HEAP_MAX_PAGES * TCM_PAGE_BYTES)

static _Atomic int bootstrap_state;   /* 0 not started, 1 running, 2 done */
static _Atomic int64_t large_allocated_bytes;

__attribute__((noinline, cold)) static void bootstrap_slow(void)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&bootstrap_state, &expected, 1)) {
		tcm_os_ticks_calibration_start();
		tcm_size_class_init();
		tcm_thread_cache_bootstrap();
		atomic_store_explicit(&bootstrap_state, 2, memory_order_release);
		return;
	}
	/* Another thread is bootstrapping: it allocates nothing, so this is short. */
	while (atomic_load_explicit(&bootstrap_state, memory_order_acquire) != 2)
		;
}

static inline void bootstrap(void)
{
	if (TCM_UNLIKELY(atomic_load_explicit(&bootstrap_state, memory_order_acquire) != 2))
		bootstrap_slow();
}

void tcm_core_bootstrap(void)
{
	bootstrap();
}

uint64_t tcm_alloc_large_allocated_bytes(void)
{
	int64_t bytes = atomic_load_explicit(&large_allocated_bytes, memory_order_relaxed);
	return bytes > 0 ? (uint64_t)bytes : 0;
}

enum invalid_pointer {
	NOT_FROM_TCM,        /* no block of tcm's starts there: foreign, or freed already */
	NOT_A_BLOCK_START,   /* inside one of tcm's blocks, not at its start */
	FREED_TWICE,         /* on the calling thread's free list already */
};

/* Cold and out of line: its buffer would otherwise give the free fast path a
 * stack frame. */
__attribute__((noinline, cold)) static void report_invalid_pointer(const char *function, const void *ptr,
								   enum invalid_pointer kind)
{
	static const char *const consequence[] = {
		[NOT_FROM_TCM] = " was not allocated by tcm; ignored\n",
		[NOT_A_BLOCK_START] = " points inside a block, not at its start; ignored\n",
		[FREED_TWICE] = " was freed already (double free); ignored\n",
	};
	static _Atomic int reports;
	if (atomic_fetch_add(&reports, 1) >= INVALID_POINTER_REPORTS)
		return;
	char buffer[128];
	struct tcm_text text;
	tcm_text_init(&text, buffer, sizeof(buffer));
	tcm_text_str(&text, "tcm: ");
	tcm_text_str(&text, function);
	tcm_text_str(&text, "(): pointer ");
	tcm_text_hex(&text, (uintptr_t)ptr);
	tcm_text_str(&text, consequence[kind]);
	tcm_os_write(2, text.buffer, text.length);
}

/* ---- small objects ------------------------------------------------------- */

/* The calling thread's list of size_class, in one register: without the
 * empty asm, gcc rebuilds its address from the TLS base for every use. */
static inline struct tcm_thread_cache_list *own_list(unsigned size_class)
{
	struct tcm_thread_cache_list *list = &tcm_thread_cache_self.lists[size_class];
	__asm__("" : "+r"(list));
	return list;
}

static inline void *small_alloc(unsigned size_class)
{
	struct tcm_thread_cache_list *list = own_list(size_class);
	void **object = list->head;
	if (TCM_LIKELY(object != NULL)) {
		list->head = object[0];
		object[1] = NULL;   /* the double-free mark (thread_cache.h) */
		list->room++;
		tcm_thread_cache_self.cached_bytes -= list->object_bytes;
		return object;
	}
	return tcm_thread_cache_refill(list);   /* bootstraps core first */
}

/* Pushes a checked object on its list, marked (thread_cache.h), or hands it
 * to the slow path when the list is full or the cache not active. */
static inline void small_push(struct tcm_thread_cache_list *list, void **object)
{
	if (TCM_LIKELY(--list->room >= 0)) {
		object[0] = list->head;
		__asm__("" ::: "memory");   /* two plain stores, not one SSE pair that costs three */
		object[1] = list;
		list->head = object;
		size_t cached_bytes = tcm_thread_cache_self.cached_bytes + list->object_bytes;
		tcm_thread_cache_self.cached_bytes = cached_bytes;
		if (TCM_UNLIKELY(cached_bytes > atomic_load_explicit(&tcm_thread_cache_budget_bytes,
								       memory_order_relaxed)))
			tcm_thread_cache_scavenge();
		return;
	}
	tcm_thread_cache_overflow(list, object);
}

static bool list_holds(const struct tcm_thread_cache_list *list, const void *object)
{
	uint32_t count = tcm_thread_cache_list_count(list);
	for (void *const *listed = list->head; listed != NULL && count-- > 0; listed = *listed)
		if (listed == object)
			return true;
	return false;
}

static void large_free(void *ptr, const char *function);

/* The fast test failed: object is no small object (class 0), is not an
 * object start, carries its list's mark, or the cache is not active yet (its
 * multipliers are 0). Settles which, reports a bad pointer and ignores it,
 * and frees anything else. */
__attribute__((noinline, cold)) static void small_free_checked(struct tcm_thread_cache_list *list, void **object)
{
	unsigned size_class = tcm_thread_cache_class_of(list);
	if (size_class == 0) {   /* not a small object: see tcm_core_free */
		if (object != NULL)
			large_free(object, "free");
		return;
	}
	uint64_t bytes_to_span_end = 0;
	tcm_page_map_small_object(object, &bytes_to_span_end);
	if (bytes_to_span_end % tcm_size_classes[size_class].object_bytes != 0) {
		report_invalid_pointer("free", object, NOT_A_BLOCK_START);
		return;
	}
	if (object[1] == list && list_holds(list, object)) {
		report_invalid_pointer("free", object, FREED_TWICE);
		return;
	}
	small_push(list, object);
}

/* object lies in a span of size_class, bytes_to_span_end before its end. */
static inline void small_free(unsigned size_class, uint64_t bytes_to_span_end, void **object)
{
	struct tcm_thread_cache_list *list = own_list(size_class);
	if (TCM_LIKELY(tcm_size_class_is_object_start(bytes_to_span_end, list->object_start_multiplier) &&
		       object[1] != list)) {
		small_push(list, object);
		return;
	}
	small_free_checked(list, object);
}

/* ---- large objects: one span each ------------------------------------------ */

/* A span for a large block; one from released memory is about to be
 * faulted in, page by page as the program writes it: the resident-set policy
 * gives back free resident memory first (release.h). */
static struct tcm_span *large_span_alloc(size_t npages, size_t align_pages, bool *is_zeroed)
{
	struct tcm_span *span = align_pages > 1 ? tcm_page_heap_alloc_aligned(npages, align_pages, is_zeroed)
						: tcm_page_heap_alloc(npages, 0, is_zeroed);
	if (span != NULL && *is_zeroed)
		tcm_release_before_fault_in(npages * TCM_PAGE_BYTES, false);
	return span;
}

static void *large_alloc(size_t size_bytes, size_t align_pages, bool want_zeroed)
{
	if (size_bytes > LARGE_MAX_BYTES || align_pages > TCM_PAGE_HEAP_MAX_PAGES) {
		errno = ENOMEM;
		return NULL;
	}
	bootstrap();
	size_t npages = (size_bytes + TCM_PAGE_BYTES - 1) >> TCM_PAGE_SHIFT;
	bool is_zeroed;
	struct tcm_span *span = large_span_alloc(npages, align_pages, &is_zeroed);
	if (span == NULL) {
		/* Small objects in the central stacks and this thread's cache
		 * may keep spans in use all over the heap, cutting its free pages
		 * into pieces too short for this block: given back, emptied spans
		 * merge. Once, before ENOMEM. */
		tcm_core_release_free_memory(0);
		span = large_span_alloc(npages, align_pages, &is_zeroed);
	}
	if (span == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	atomic_fetch_add_explicit(&large_allocated_bytes, (int64_t)(npages * TCM_PAGE_BYTES), memory_order_relaxed);
	if (want_zeroed && !is_zeroed)
		memset((void *)span->start, 0, npages * TCM_PAGE_BYTES);
	return (void *)span->start;
}

/* Resizes the large block at ptr to size_bytes (TCM_SMALL_MAX_BYTES <
 * size_bytes <= LARGE_MAX_BYTES) without moving it: grows into the free pages
 * right after it, or gives back its tail. Returns false, the block unchanged,
 * when that cannot be done. */
static bool large_resize_in_place(void *ptr, size_t size_bytes)
{
	struct tcm_span *span = tcm_page_heap_large_span_of(ptr);
	size_t old_npages = span->npages;
	size_t npages = (size_bytes + TCM_PAGE_BYTES - 1) >> TCM_PAGE_SHIFT;
	bool resized = npages > old_npages ? tcm_page_heap_try_grow_in_place(span, npages)
					   : tcm_page_heap_shrink_in_place(span, npages);
	if (resized)
		atomic_fetch_add_explicit(&large_allocated_bytes,
					  ((int64_t)npages - (int64_t)old_npages) * (int64_t)TCM_PAGE_BYTES,
					  memory_order_relaxed);
	return resized;
}

/* A large block for realloc to move a growing block to: size_bytes
 * (TCM_SMALL_MAX_BYTES < size_bytes <= LARGE_MAX_BYTES) in pages rounded up to a
 * multiple of a quarter of their highest power of two (at most 25% more), so
 * that the next growth steps fit in the block. NULL, errno ENOMEM, when that
 * cannot be had. */
static void *large_alloc_for_growth(size_t size_bytes)
{
	size_t npages = (size_bytes + TCM_PAGE_BYTES - 1) >> TCM_PAGE_SHIFT;
	size_t quarter = ((size_t)1 << (63 - __builtin_clzll(npages))) / 4;   /* >= 8: npages > 32 */
	npages = (npages + quarter - 1) & ~(quarter - 1);
	return large_alloc(npages * TCM_PAGE_BYTES, 1, false);
}

/* Out of line, so that the small-object free it is beside needs no stack frame. */
__attribute__((noinline)) static void large_free(void *ptr, const char *function)
{
	struct tcm_span *span = tcm_page_heap_large_span_of(ptr);
	if (span == NULL) {
		report_invalid_pointer(function, ptr, NOT_FROM_TCM);
		return;
	}
	atomic_fetch_sub_explicit(&large_allocated_bytes, (int64_t)(span->npages * TCM_PAGE_BYTES),
				  memory_order_relaxed);
	span->next = NULL;
	tcm_page_heap_free_spans(span);
}

/* ---- entry points ------------------------------------------------------------ */

void *tcm_core_malloc(size_t size_bytes)
{
	/* The table's sizes first: one test for most requests. */
	if (TCM_LIKELY(size_bytes <= TCM_SIZE_CLASS_TABLE_MAX_BYTES))
		return small_alloc(tcm_size_class_by_16_bytes[(size_bytes + 15) >> 4]);
	if (size_bytes <= TCM_SMALL_MAX_BYTES)
		return small_alloc(tcm_size_class_of(size_bytes));
	return large_alloc(size_bytes, 1, false);
}

void *tcm_core_zalloc(size_t size_bytes)
{
	if (size_bytes <= TCM_SMALL_MAX_BYTES) {
		void *object = small_alloc(tcm_size_class_of(size_bytes));
		if (object != NULL)
			memset(object, 0, size_bytes);
		return object;
	}
	return large_alloc(size_bytes, 1, true);
}

void tcm_core_free(void *ptr)
{
	/* A large block, NULL, or a foreign pointer in a covered leaf reads class
	 * 0: list 0 is never activated, so its zero multiplier sends them all to
	 * small_free_checked, and the fast path has no test of its own for them. */
	uint64_t bytes_to_span_end = 0;
	unsigned size_class = tcm_page_map_small_object(ptr, &bytes_to_span_end);
	small_free(size_class, bytes_to_span_end, ptr);
}

size_t tcm_core_usable_size(const void *ptr)
{
	uint64_t bytes_to_span_end;
	unsigned size_class = tcm_page_map_small_object(ptr, &bytes_to_span_end);
	if (size_class != 0) {
		const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
		return tcm_size_class_is_object_start(bytes_to_span_end, info->object_start_multiplier)
			       ? info->object_bytes : 0;
	}
	if (ptr == NULL)
		return 0;
	struct tcm_span *span = tcm_page_heap_large_span_of(ptr);
	return span != NULL ? span->npages * TCM_PAGE_BYTES : 0;
}

void *tcm_core_aligned_alloc(size_t alignment_bytes, size_t size_bytes)
{
	if (alignment_bytes <= TCM_MIN_ALIGN_BYTES)
		return tcm_core_malloc(size_bytes);
	if (size_bytes <= TCM_SMALL_MAX_BYTES && alignment_bytes <= TCM_PAGE_BYTES) {
		/* Spans start page-aligned, so objects of a class whose size is a
		 * multiple of the alignment are all aligned. */
		bootstrap();
		for (unsigned size_class = tcm_size_class_of(size_bytes); size_class < TCM_SIZE_CLASS_COUNT; size_class++)
			if (tcm_size_classes[size_class].object_bytes % alignment_bytes == 0)
				return small_alloc(size_class);
	}
	size_t align_pages = alignment_bytes > TCM_PAGE_BYTES ? alignment_bytes / TCM_PAGE_BYTES : 1;
	return large_alloc(size_bytes == 0 ? 1 : size_bytes, align_pages, false);
}

void *tcm_core_realloc(void *ptr, size_t size_bytes)
{
	size_t old_bytes = tcm_core_usable_size(ptr);
	if (old_bytes == 0) {
		report_invalid_pointer("realloc", ptr,
				       tcm_page_map_size_class(ptr) != 0 ? NOT_A_BLOCK_START : NOT_FROM_TCM);
		errno = ENOMEM;
		return NULL;
	}
	/* In place when the block still fits and is not more than twice too big. */
	if (size_bytes <= old_bytes && size_bytes >= old_bytes / 2)
		return ptr;
	if (size_bytes > LARGE_MAX_BYTES) {   /* refused as malloc refuses it; the block stays */
		errno = ENOMEM;
		return NULL;
	}
	/* A large block that stays large changes its pages where it is, if it can. */
	if (size_bytes > TCM_SMALL_MAX_BYTES && tcm_page_map_size_class(ptr) == 0 &&
	    large_resize_in_place(ptr, size_bytes))
		return ptr;
	/* A growing block that moves to large pages gets room to grow into; the
	 * exact size is the fallback when that room cannot be had. */
	void *moved = NULL;
	if (size_bytes > old_bytes && size_bytes > TCM_SMALL_MAX_BYTES)
		moved = large_alloc_for_growth(size_bytes);
	if (moved == NULL)
		moved = tcm_core_malloc(size_bytes);
	if (moved == NULL)
		return NULL;
	memcpy(moved, ptr, size_bytes < old_bytes ? size_bytes : old_bytes);
	tcm_core_free(ptr);
	return moved;
}

void tcm_core_set_thread_cache_budget(size_t thread_max_bytes, size_t total_max_bytes)
{
	tcm_thread_cache_set_budget(thread_max_bytes, total_max_bytes);
}
