/* tests/unit/metadata_test.c - the bump allocator of tcm's own structures: small requests come
 * one after another from the current region, and a large one (a page-map leaf) gets a mapping
 * of its own, so the region it would not fit in is neither replaced nor abandoned: the next small
 * request goes on where the last one ended, and the address space taken grows by the large
 * request alone. */
#include "unit.h"

#include "core.h"
#include "metadata.h"
#include "os.h"
#include "page_map.h"

static void large_request_leaves_the_region_in_place(void **state)
{
	(void)state;
	tcm_core_bootstrap();
	char *first = tcm_metadata_alloc(64);
	char *second = tcm_metadata_alloc(64);
	assert_non_null(first);
	assert_ptr_equal(second, first + 64);
	uint64_t mapped = tcm_os_mapped_bytes();
	uint64_t handed_out = tcm_metadata_bytes();
	size_t leaf_bytes = sizeof(struct tcm_page_map_leaf);   /* as large as a region */
	char *leaf = tcm_metadata_alloc(leaf_bytes);
	assert_non_null(leaf);
	size_t leaf_mapping = (leaf_bytes + 63) / 64 * 64;
	leaf_mapping = (leaf_mapping + TCM_PAGE_BYTES - 1) / TCM_PAGE_BYTES * TCM_PAGE_BYTES;
	assert_int_equal(tcm_os_mapped_bytes(), mapped + leaf_mapping);
	assert_int_equal(tcm_metadata_bytes(), handed_out + leaf_mapping);
	char *third = tcm_metadata_alloc(64);
	assert_ptr_equal(third, second + 64);   /* the region goes on */
	assert_int_equal(tcm_os_mapped_bytes(), mapped + leaf_mapping);
	memset(leaf, 0, leaf_bytes);   /* all of it is there */
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(large_request_leaves_the_region_in_place),
	};
	return unit_main(argc, argv, "metadata", tests, sizeof(tests) / sizeof(tests[0]));
}
