/* core/alloc.c - malloc, free, realloc and aligned allocation across the tiers:
 * thread cache -> central lists -> page heap. The fast paths live here.
 *
 * Invariants:
 *   - the malloc fast path is: size class, pop the thread's list; the free fast
 *     path is: page-map size class, push on the thread's list. Neither takes a
 *     lock, makes a system call, or checks state (the thread cache's
 *     max_count == 0 sends every non-ACTIVE cache to its slow path);
 *   - core bootstraps on the first slow path without calling malloc
 *     (DESIGN invariant 10);
 *   - a pointer tcm did not hand out is reported (at most a few times) and
 *     ignored; it never reaches a free list. */
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

static void bootstrap_slow(void)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&bootstrap_state, &expected, 1)) {
		tcm_size_class_init();
		tcm_central_init();
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

/* Cold and out of line: its buffer would otherwise give the free fast path a
 * stack frame. */
__attribute__((noinline, cold)) static void report_invalid_pointer(const char *function, const void *ptr)
{
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
	tcm_text_str(&text, " was not allocated by tcm; ignored\n");
	tcm_os_write(2, text.buffer, text.length);
}

/* ---- small objects ------------------------------------------------------- */

static inline void *small_alloc(unsigned size_class)
{
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	struct tcm_thread_cache_list *list = &cache->lists[size_class];
	void *object = list->head;
	if (TCM_LIKELY(object != NULL)) {
		list->head = *(void **)object;
		list->count--;
		cache->cached_bytes -= list->object_bytes;
		return object;
	}
	bootstrap();
	return tcm_thread_cache_refill(cache, size_class);
}

static inline void small_free(unsigned size_class, void *object)
{
	struct tcm_thread_cache *cache = &tcm_thread_cache_self;
	struct tcm_thread_cache_list *list = &cache->lists[size_class];
	if (TCM_LIKELY(list->count < list->max_count)) {
		*(void **)object = list->head;
		list->head = object;
		list->count++;
		cache->cached_bytes += list->object_bytes;
		if (TCM_UNLIKELY(cache->cached_bytes >
				 atomic_load_explicit(&tcm_thread_cache_budget_bytes, memory_order_relaxed)))
			tcm_thread_cache_scavenge(cache);
		return;
	}
	tcm_thread_cache_overflow(cache, size_class, object);
}

/* ---- large objects: one span each ------------------------------------------ */

static struct tcm_span *large_span_alloc(size_t npages, size_t align_pages, bool *is_zeroed)
{
	return align_pages > 1 ? tcm_page_heap_alloc_aligned(npages, align_pages, is_zeroed)
			       : tcm_page_heap_alloc(npages, 0, is_zeroed);
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
		report_invalid_pointer(function, ptr);
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
	if (TCM_LIKELY(size_bytes <= TCM_SMALL_MAX_BYTES))
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
	unsigned size_class = tcm_page_map_size_class(ptr);
	if (TCM_LIKELY(size_class != 0)) {
		small_free(size_class, ptr);
		return;
	}
	if (ptr != NULL)
		large_free(ptr, "free");
}

void tcm_core_free_with_size(void *ptr, size_t size_bytes)
{
	if (TCM_LIKELY(size_bytes <= TCM_SMALL_MAX_BYTES && ptr != NULL)) {
		unsigned size_class = tcm_size_class_of(size_bytes);
		TCM_ASSERT(tcm_page_map_size_class(ptr) == size_class);
		small_free(size_class, ptr);
		return;
	}
	tcm_core_free(ptr);
}

size_t tcm_core_usable_size(const void *ptr)
{
	unsigned size_class = tcm_page_map_size_class(ptr);
	if (size_class != 0)
		return tcm_size_classes[size_class].object_bytes;
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
		report_invalid_pointer("realloc", ptr);
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
