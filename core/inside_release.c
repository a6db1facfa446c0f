/* core/inside_release.c - releasing the free pages inside small-object spans
 * in use (inside_release.h): the walk, the kernel pages of a span that hold
 * only free objects, and a batch of spans released together. The two holds of
 * the class lock are central.c's (tcm_central_take_free_list,
 * tcm_central_end_inside_release); everything here runs with no lock held. */
#include "inside_release.h"

#include "central.h"
#include "lock.h"
#include "os.h"
#include "page_map.h"
#include "size_class.h"
#include "span.h"

static _Atomic uint64_t released_bytes_total;
static _Atomic uint64_t release_calls_total;

/* Spans released inside together: their ranges go to the kernel in one
 * tcm_os_release_ranges (one system call where the kernel allows it). */
#define BATCH_SPANS 32

/* The whole kernel pages of a span, counted from the first kernel page
 * boundary in it: page k is bytes [first + k * bytes, first + (k + 1) * bytes)
 * of the span. A span need not start on a kernel page when those are larger
 * than tcm's; the kernel page it shares with a neighbour is never released. */
struct span_kernel_pages {
	uintptr_t first;   /* offset of the first kernel page boundary in the span */
	size_t    bytes;   /* the kernel's page */
};

static struct span_kernel_pages kernel_pages_of(uintptr_t span_start)
{
	size_t kernel_page = tcm_os_kernel_page_bytes();
	return (struct span_kernel_pages){
		.first = ((span_start + kernel_page - 1) & ~(uintptr_t)(kernel_page - 1)) - span_start,
		.bytes = kernel_page,
	};
}

/* Bit i set: object i of a span of info's class, at byte first_object_offset
 * + i * object_bytes of it, overlaps bytes [first_byte, end_byte) of it. */
static uint64_t objects_overlapping(const struct tcm_size_class_info *info, uintptr_t first_byte, uintptr_t end_byte)
{
	uint64_t bits = 0;
	size_t object = first_byte > info->first_object_offset ? (first_byte - info->first_object_offset) /
								   info->object_bytes : 0;
	for (; info->first_object_offset + object * info->object_bytes < end_byte; object++)
		bits |= (uint64_t)1 << object;
	return bits;
}

/* The objects of a span on its kernel page k. */
static uint64_t objects_on_kernel_page(const struct tcm_size_class_info *info, struct span_kernel_pages kernel,
				       unsigned k)
{
	return objects_overlapping(info, kernel.first + k * kernel.bytes, kernel.first + (k + 1) * kernel.bytes);
}

/* Bit k set: kernel page k lies inside the carved part, holds objects, and
 * every object on it is free; the first such pages, at most max_bytes of them
 * (*is_cut_short: more were left out). Bounded: a span of a class with an
 * object map has at most 64 kernel pages. */
static uint64_t free_kernel_pages(const struct tcm_size_class_info *info, uint64_t free_map, uintptr_t carved_bytes,
				  struct span_kernel_pages kernel, size_t max_bytes, bool *is_cut_short)
{
	uint64_t pages = 0;
	size_t planned = 0;
	*is_cut_short = false;
	for (unsigned k = 0; kernel.first + (k + 1) * kernel.bytes <= carved_bytes; k++) {
		uint64_t on_page = objects_on_kernel_page(info, kernel, k);
		if (on_page == 0 || (on_page & ~free_map) != 0)
			continue;   /* the slack alone (never used), or a live object on it */
		if (planned + kernel.bytes > max_bytes) {
			*is_cut_short = true;
			break;
		}
		pages |= (uint64_t)1 << k;
		planned += kernel.bytes;
	}
	return pages;
}

/* The object map a free list should have (for the debug check). */
static uint64_t object_map_of(const struct tcm_span *span, void *list)
{
	uint64_t map = 0;
	for (void *object = list; object != NULL; object = *(void **)object)
		map |= tcm_span_object_bit(span, object);
	return map;
}

/* A batch: each span's hold-2 record and the runs of free kernel pages of
 * all of them. */
struct batch {
	struct tcm_central_inside_release spans[BATCH_SPANS];
	size_t                            span_count;
	struct tcm_os_range               ranges[TCM_OS_RELEASE_RANGES_MAX];
	size_t                            range_count;
	size_t                            planned_bytes;
};

/* The most runs of free kernel pages a span of size_class can have. */
static size_t max_runs_of(unsigned size_class)
{
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	size_t kernel_pages = (size_t)info->span_pages * TCM_PAGE_BYTES / tcm_os_kernel_page_bytes();
	return (kernel_pages + 1) / 2;
}

/* Whether the batch has no room for one more span of size_class. */
static bool is_batch_full(const struct batch *batch, unsigned size_class, size_t max_bytes)
{
	return batch->span_count == BATCH_SPANS ||
	       batch->range_count + max_runs_of(size_class) > TCM_OS_RELEASE_RANGES_MAX ||
	       batch->planned_bytes + tcm_os_kernel_page_bytes() > max_bytes;
}

/* One range per run of set bits of pages (kernel pages of the span at span_start). */
static void add_runs(struct batch *batch, uintptr_t span_start, struct span_kernel_pages kernel, uint64_t pages)
{
	for (unsigned k = 0; k < 64;) {
		if (((pages >> k) & 1) == 0) {
			k++;
			continue;
		}
		unsigned run_end = k;
		while (run_end < 64 && ((pages >> run_end) & 1))
			run_end++;
		size_t run_bytes = (run_end - k) * kernel.bytes;
		batch->ranges[batch->range_count++] = (struct tcm_os_range){
			(void *)(span_start + kernel.first + k * kernel.bytes), run_bytes };
		batch->planned_bytes += run_bytes;
		k = run_end;
	}
}

/* Adds the span (an in-use span of a class with an object map that starts at
 * span_start, as read lock-free from the page map) to the batch if it has
 * whole free kernel pages inside, within what is left of max_bytes: its free
 * list is taken out (hold 1), the pages and the objects to keep are worked out
 * from its object map, the objects on the free pages become stranded (neither
 * allocated nor listed, so the span still empties without them) and the
 * others are linked again from their bits, stores that do not wait on one
 * another: all before madvise zeroes any link. A span with no free page is put
 * back at once. Returns whether the span joined the batch. */
static bool add_to_batch(struct batch *batch, struct tcm_span *span, unsigned size_class, uintptr_t span_start,
			 size_t max_bytes)
{
	TCM_ASSERT(tcm_size_classes[size_class].has_object_map);
	if (is_batch_full(batch, size_class, max_bytes))
		return false;
	struct tcm_central_taken taken;
	if (!tcm_central_take_free_list(span, size_class, span_start, &taken))
		return false;
	TCM_ASSERT(object_map_of(span, taken.free_list) == taken.free_map);

	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	struct span_kernel_pages kernel = kernel_pages_of(span_start);
	struct tcm_central_inside_release *release = &batch->spans[batch->span_count];
	*release = (struct tcm_central_inside_release){ .span = span, .size_class = size_class };
	uint64_t pages = free_kernel_pages(info, taken.free_map, taken.carved_bytes, kernel,
					   max_bytes - batch->planned_bytes, &release->is_cut_short);
	for (uint64_t rest = pages; rest != 0; rest &= rest - 1)
		release->stranded_map |= objects_on_kernel_page(info, kernel, (unsigned)__builtin_ctzll(rest));
	release->kept_map = taken.free_map & ~release->stranded_map;
	tcm_span_link_objects(span_start + info->first_object_offset, info->object_bytes, release->kept_map,
			      &release->kept_head, &release->kept_tail);
	if (pages == 0) {
		tcm_central_end_inside_release(release);
		return false;
	}
	add_runs(batch, span_start, kernel, pages);
	batch->span_count++;
	return true;
}

/* Releases the batch's ranges with no lock held and puts every span back (a
 * failed range leaves its objects stranded but resident: they are handed out
 * like the others). Returns the bytes released. */
static size_t release_batch(struct batch *batch)
{
	if (batch->span_count == 0)
		return 0;
	unsigned calls = tcm_os_release_ranges(batch->ranges, batch->range_count);
	size_t released = 0;
	for (size_t i = 0; i < batch->range_count; i++)
		released += batch->ranges[i].bytes;
	for (size_t i = 0; i < batch->span_count; i++)
		tcm_central_end_inside_release(&batch->spans[i]);
	atomic_fetch_add_explicit(&release_calls_total, calls, memory_order_relaxed);
	atomic_fetch_add_explicit(&released_bytes_total, released, memory_order_relaxed);
	return released;
}

#ifdef TCM_TESTING
size_t tcm_inside_release_span(struct tcm_span *span, unsigned size_class, uintptr_t span_start, size_t max_bytes)
{
	struct batch batch = { .span_count = 0 };
	add_to_batch(&batch, span, size_class, span_start, max_bytes);
	return release_batch(&batch);
}
#endif

/* Where the next walk starts: a page number. */
static _Atomic uintptr_t walk_cursor;

/* Whether span, recorded for page (a page of a small-object span of
 * size_class, read lock-free), is a span that may have free kernel pages
 * inside and page its first: checked again under the lock before use. */
static bool is_walk_candidate(const struct tcm_span *span, uintptr_t page, unsigned size_class)
{
	return tcm_size_classes[size_class].has_object_map && span != NULL &&
	       span->start == page << TCM_PAGE_SHIFT &&   /* not a later page (or a stale entry) */
	       atomic_load_explicit(&span->may_release_inside, memory_order_relaxed) &&
	       atomic_load_explicit(&span->on_list_class, memory_order_relaxed) == size_class;
}

size_t tcm_inside_release_walk(size_t max_bytes, size_t max_pages_walked)
{
	uintptr_t page = atomic_load_explicit(&walk_cursor, memory_order_relaxed);
	size_t walked = 0;
	struct batch batch = { .span_count = 0 };
	unsigned size_class;
	struct tcm_span *span;
	for (; tcm_page_map_next_small_page(&page, &size_class, &span); page++) {
		if (walked++ == max_pages_walked) {
			atomic_store_explicit(&walk_cursor, page, memory_order_relaxed);
			return release_batch(&batch);
		}
		if (!is_walk_candidate(span, page, size_class) ||
		    add_to_batch(&batch, span, size_class, page << TCM_PAGE_SHIFT, max_bytes))
			continue;
		if (batch.span_count != 0 && is_batch_full(&batch, size_class, max_bytes)) {
			/* This span waits for the next walk, which starts here. */
			atomic_store_explicit(&walk_cursor, page, memory_order_relaxed);
			return release_batch(&batch);
		}
	}
	atomic_store_explicit(&walk_cursor, 0, memory_order_relaxed);   /* next walk from the start */
	return release_batch(&batch);
}

void tcm_inside_release_totals(uint64_t *released_bytes, uint64_t *release_calls)
{
	*released_bytes = atomic_load_explicit(&released_bytes_total, memory_order_relaxed);
	*release_calls = atomic_load_explicit(&release_calls_total, memory_order_relaxed);
}
