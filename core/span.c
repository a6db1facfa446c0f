/* core/span.c - the objects of a small-object span: carving, claiming
 * stranded objects, linking claimed objects and turning an object map into a
 * chain (span.h; taking listed objects and claiming never-used ones, on every
 * refill's path, are inline there). Callers hold central[span->size_class] for
 * all but tcm_span_link_objects and tcm_span_link_claim, or own the span
 * outright (a fresh one, not yet published). */
#include "span.h"

void tcm_span_start_carving(struct tcm_span *span, bool is_fresh_memory)
{
	span->allocated_count = 0;
	span->free_list = NULL;
	span->is_uncarved_unbacked = is_fresh_memory;
	span->carve_next = tcm_span_first_object(span);
	span->carve_end = span->start + (uintptr_t)tcm_size_classes[span->size_class].span_pages * TCM_PAGE_BYTES;
	span->allocated_count_at_inside_release = UINT32_MAX;
	span->is_releasing_inside = 0;
	atomic_store_explicit(&span->may_release_inside, 0, memory_order_relaxed);
	span->stranded_map = 0;
	span->listed_map = 0;
}

uint32_t tcm_span_claim_stranded(struct tcm_span *span, uint32_t want, uint64_t *claimed)
{
	uint64_t bits = 0;
	uint32_t count = 0;
	if (span->stranded_map != 0) {
		const size_t object_bytes = tcm_size_classes[span->size_class].object_bytes;
		const uintptr_t first_object = tcm_span_first_object(span);
		uintptr_t lowest = first_object + (uintptr_t)__builtin_ctzll(span->stranded_map) * object_bytes;
		uintptr_t page_end = (lowest | (tcm_os_kernel_page_bytes() - 1)) + 1;
		for (uint64_t rest = span->stranded_map; rest != 0 && count < want; rest &= rest - 1, count++) {
			if (first_object + (uintptr_t)__builtin_ctzll(rest) * object_bytes >= page_end)
				break;   /* past the lowest one's kernel page */
			bits |= rest & (0 - rest);   /* the lowest object left */
		}
	}
	span->stranded_map &= ~bits;
	span->allocated_count += count;
	*claimed = bits;
	return count;
}

void tcm_span_link_objects(uintptr_t first_object, size_t object_bytes, uint64_t map, void **head, void **tail)
{
	if (tail != NULL)
		*tail = map != 0 ? (void *)(first_object + (uintptr_t)__builtin_ctzll(map) * object_bytes) : NULL;
	for (uint64_t rest = map; rest != 0; rest &= rest - 1) {
		void *object = (void *)(first_object + (uintptr_t)__builtin_ctzll(rest) * object_bytes);
		*(void **)object = *head;
		*head = object;
	}
}

void tcm_span_link_claim(const struct tcm_span_claim *claim, void **head)
{
	for (uint32_t i = 0; i < claim->count; i++) {
		void *object = (void *)(claim->first + (uintptr_t)i * claim->object_bytes);
		*(void **)object = *head;
		*head = object;
	}
}
