/* core/metadata.c - a bump allocator for tcm's own structures.
 *
 * Invariants: the metadata lock covers the bump pointer only; mapping a new
 * region happens with no lock held (DESIGN invariant 1); a region that lost
 * the race to be installed is unmapped (nothing was handed out of it), and
 * the rest of a replaced region is abandoned: it was too short for a request
 * (less than METADATA_OWN_MAPPING_BYTES: larger ones are mapped apart).
 * Never: calls malloc; frees memory. */
#include "metadata.h"

#include "lock.h"
#include "os.h"

#include <stdbool.h>

#define METADATA_REGION_BYTES ((size_t)4 << 20)
#define METADATA_ALIGN_BYTES  64
/* A request this large (a page-map leaf: 4.25 MiB) gets a mapping of its own. Served from the
 * bump region it replaced the region, whose rest was abandoned, and the next small request
 * mapped another: a run of tests/fault's rlimit_as under RLIMIT_AS lost 12 MiB of address
 * space to that, two leaves' worth. */
#define METADATA_OWN_MAPPING_BYTES (METADATA_REGION_BYTES / 4)

static struct tcm_lock metadata_lock = TCM_LOCK_INITIALIZER(TCM_LOCK_RANK_METADATA);
static char *region_next;           /* guarded by metadata_lock */
static char *region_end;            /* guarded by metadata_lock */
static _Atomic uint64_t handed_out_bytes;

struct tcm_lock *tcm_metadata_lock_object(void)
{
	return &metadata_lock;
}

static void *bump_locked(size_t size_bytes)
{
	if (region_next == NULL || (size_t)(region_end - region_next) < size_bytes)
		return NULL;
	void *result = region_next;
	region_next += size_bytes;
	return result;
}

void *tcm_metadata_alloc(size_t size_bytes)
{
	size_bytes = (size_bytes + METADATA_ALIGN_BYTES - 1) & ~(size_t)(METADATA_ALIGN_BYTES - 1);
	if (size_bytes >= METADATA_OWN_MAPPING_BYTES) {
		size_t own_bytes = (size_bytes + TCM_PAGE_BYTES - 1) & ~(TCM_PAGE_BYTES - 1);
		void *own = tcm_os_map(own_bytes, METADATA_ALIGN_BYTES);
		if (own != NULL)
			atomic_fetch_add_explicit(&handed_out_bytes, own_bytes, memory_order_relaxed);
		return own;
	}
	for (;;) {
		tcm_lock(&metadata_lock);
		void *result = bump_locked(size_bytes);
		tcm_unlock(&metadata_lock);
		if (result != NULL) {
			atomic_fetch_add_explicit(&handed_out_bytes, size_bytes, memory_order_relaxed);
			return result;
		}
		size_t region_bytes = size_bytes > METADATA_REGION_BYTES ? size_bytes : METADATA_REGION_BYTES;
		region_bytes = (region_bytes + TCM_PAGE_BYTES - 1) & ~(TCM_PAGE_BYTES - 1);
		char *region = tcm_os_map(region_bytes, METADATA_ALIGN_BYTES);
		if (region == NULL)
			return NULL;
		tcm_lock(&metadata_lock);
		/* Another thread may have installed a region meanwhile: the larger
		 * remainder wins. */
		bool is_installed = region_next == NULL || (size_t)(region_end - region_next) < region_bytes;
		if (is_installed) {
			region_next = region;
			region_end = region + region_bytes;
		}
		tcm_unlock(&metadata_lock);
		if (!is_installed)
			tcm_os_unmap(region, region_bytes);
	}
}

uint64_t tcm_metadata_bytes(void)
{
	return atomic_load_explicit(&handed_out_bytes, memory_order_relaxed);
}
