/* core/page_map.c - leaf creation and entry writes of the page map.
 *
 * Invariants: see page_map.h. Leaves are installed with a compare-and-swap so
 * two growing threads never both install one; the loser's leaf is kept for
 * the next missing slot rather than lost. */
#include "page_map.h"

#include "debug.h"
#include "metadata.h"
#include "span.h"

#include <errno.h>

_Static_assert(TCM_ADDRESS_BITS <= TCM_PAGE_MAP_CLASS_SHIFT, "a span's end leaves the top byte free");
_Static_assert(TCM_SIZE_CLASS_COUNT <= 256, "every class fits the top byte");

/* In common storage, which the linker places after every other zero-initialised variable: the
 * root's 1 MiB then does not sit between the few small ones a process's start writes, and
 * those share pages (a page fault fewer at the first allocation, issue 12). */
struct tcm_page_map_leaf *_Atomic tcm_page_map_root[(size_t)1 << TCM_PAGE_MAP_ROOT_BITS] __attribute__((common));

void tcm_page_map_set(uintptr_t page, struct tcm_span *span, unsigned size_class)
{
	struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
	TCM_ASSERT(leaf != NULL);
	TCM_ASSERT(size_class < 256);
	uintptr_t word = 0;
	if (size_class != 0)
		word = (uintptr_t)size_class << TCM_PAGE_MAP_CLASS_SHIFT | (span->start + span->npages * TCM_PAGE_BYTES);
	atomic_store_explicit(tcm_page_map_span_word(leaf, page), (uintptr_t)span, memory_order_relaxed);
	atomic_store_explicit(tcm_page_map_class_word(leaf, page), word, memory_order_relaxed);
}

void tcm_page_map_set_span(uintptr_t page, struct tcm_span *span)
{
	struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(page);
	TCM_ASSERT(leaf != NULL);
	TCM_ASSERT(atomic_load_explicit(tcm_page_map_class_word(leaf, page), memory_order_relaxed) == 0);
	atomic_store_explicit(tcm_page_map_span_word(leaf, page), (uintptr_t)span, memory_order_relaxed);
}

int tcm_page_map_ensure(uintptr_t first_page, size_t npages)
{
	static struct tcm_page_map_leaf *_Atomic spare_leaf;
	uintptr_t first_root = first_page >> TCM_PAGE_MAP_LEAF_BITS;
	uintptr_t last_root = (first_page + npages - 1) >> TCM_PAGE_MAP_LEAF_BITS;
	for (uintptr_t root_index = first_root; root_index <= last_root; root_index++) {
		if (root_index >= ((uintptr_t)1 << TCM_PAGE_MAP_ROOT_BITS))
			return ENOMEM;
		if (atomic_load_explicit(&tcm_page_map_root[root_index], memory_order_acquire) != NULL)
			continue;
		struct tcm_page_map_leaf *leaf = atomic_exchange(&spare_leaf, NULL);
		if (leaf == NULL)
			leaf = tcm_metadata_alloc(sizeof(struct tcm_page_map_leaf));
		if (leaf == NULL)
			return ENOMEM;
		struct tcm_page_map_leaf *expected = NULL;
		if (!atomic_compare_exchange_strong(&tcm_page_map_root[root_index], &expected, leaf))
			atomic_store(&spare_leaf, leaf);  /* still all zeros */
	}
	return 0;
}

bool tcm_page_map_next_small_page(uintptr_t *page, unsigned *size_class, struct tcm_span **span)
{
	const uintptr_t root_entries = (uintptr_t)1 << TCM_PAGE_MAP_ROOT_BITS;
	uintptr_t at = *page;
	while ((at >> TCM_PAGE_MAP_LEAF_BITS) < root_entries) {
		struct tcm_page_map_leaf *leaf = tcm_page_map_leaf_of(at);
		if (leaf == NULL) {
			at = ((at >> TCM_PAGE_MAP_LEAF_BITS) + 1) << TCM_PAGE_MAP_LEAF_BITS;
			continue;
		}
		for (size_t index = at & (TCM_PAGE_MAP_LEAF_PAGES - 1); index < TCM_PAGE_MAP_LEAF_PAGES; index++, at++) {
			unsigned found = atomic_load_explicit(tcm_page_map_class_word(leaf, at), memory_order_relaxed) >>
					 TCM_PAGE_MAP_CLASS_SHIFT;
			if (found != 0) {
				*page = at;
				*size_class = found;
				*span = (struct tcm_span *)atomic_load_explicit(tcm_page_map_span_word(leaf, at),
										memory_order_relaxed);
				return true;
			}
		}
	}
	return false;
}
