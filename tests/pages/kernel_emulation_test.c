/* tests/pages/kernel_emulation_test.c - os.c's emulated kernel (testing build): the
 * suites of tests/pages rerun on it at 16 and 64 KiB pages, so it must do what such a
 * kernel does: map whole pages at page-aligned addresses, fail madvise and munmap
 * with EINVAL at a start not on a page, round their lengths up to whole pages (so a
 * short length zeroes the bytes after the range), and, emulating Linux 5.10, refuse
 * MADV_POPULATE_WRITE. Also tcm_os_populate on such kernels: every page of the range
 * resident afterwards, its contents kept, whatever came before it.
 * Each test runs in a fresh process (tests/unit/unit.h) and picks its kernel first. */
#include "unit.h"

#include "os.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#define KERNEL_64K ((size_t)64 << 10)

/* Whether every page the MMU maps in [start, start + len) is resident. */
static bool is_resident(uintptr_t start, size_t len)
{
	static unsigned char pages[1024];
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t count = (len + page - 1) / page;
	assert_int_equal(start % page, 0);
	assert_true(count <= sizeof(pages));
	assert_int_equal(mincore((void *)start, count * page, pages), 0);
	for (size_t i = 0; i < count; i++)
		if ((pages[i] & 1) == 0)
			return false;
	return true;
}

/* Whether the page holding address is mapped (mincore fails with ENOMEM if not). */
static bool is_mapped(uintptr_t address)
{
	unsigned char page;
	uintptr_t page_start = address & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
	return mincore((void *)page_start, 1, &page) == 0;
}

static void map_returns_whole_aligned_kernel_pages(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	assert_int_equal(tcm_os_kernel_page_bytes(), KERNEL_64K);
	for (int i = 0; i < 8; i++) {
		uintptr_t start = (uintptr_t)tcm_os_map(TCM_PAGE_BYTES, TCM_PAGE_BYTES);
		assert_true(start != 0);
		assert_int_equal(start % KERNEL_64K, 0);
		assert_true(is_mapped(start + KERNEL_64K - 1));   /* the rest of the kernel page */
		tcm_os_unmap((void *)start, TCM_PAGE_BYTES);        /* takes the whole kernel page */
		assert_false(is_mapped(start));
		assert_false(is_mapped(start + KERNEL_64K - 1));
	}
}

static void release_refuses_a_start_off_a_kernel_page(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	char *region = tcm_os_map(4 * KERNEL_64K, TCM_PAGE_BYTES);
	assert_non_null(region);
	memset(region, 0x5a, 4 * KERNEL_64K);
	errno = 1234;
	struct tcm_os_range range = { region + TCM_PAGE_BYTES, KERNEL_64K - TCM_PAGE_BYTES };
	assert_int_equal(tcm_os_release_ranges(&range, 1), 1);
	assert_int_equal(range.bytes, 0);   /* refused */
	assert_int_equal(errno, 1234);
	for (size_t i = 0; i < 4 * KERNEL_64K; i += 512)
		assert_int_equal(region[i], 0x5a);
}

/* As on a 64 KiB kernel: madvise of 8 KiB zeroes the kernel page's other 56 KiB. */
static void release_rounds_the_length_up_to_kernel_pages(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	char *region = tcm_os_map(2 * KERNEL_64K, TCM_PAGE_BYTES);
	assert_non_null(region);
	memset(region, 0x5a, 2 * KERNEL_64K);
	struct tcm_os_range range = { region, TCM_PAGE_BYTES };
	tcm_os_release_ranges(&range, 1);
	assert_int_equal(range.bytes, TCM_PAGE_BYTES);
	for (size_t i = 0; i < KERNEL_64K; i++)
		if (region[i] != 0)
			fail_msg("byte %zu of the released kernel page is 0x%02x", i, (unsigned char)region[i]);
	for (size_t i = KERNEL_64K; i < 2 * KERNEL_64K; i++)
		assert_int_equal(region[i], 0x5a);
}

/* Several ranges in one call (where the real kernel batches them) are rounded
 * and refused one by one as one madvise each would be: a short range zeroes
 * its whole kernel page, and a start off a kernel page is refused (bytes 0)
 * while the ranges before it are released. */
static void batched_release_rounds_and_refuses_range_by_range(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	char *region = tcm_os_map(6 * KERNEL_64K, TCM_PAGE_BYTES);
	assert_non_null(region);
	memset(region, 0x5a, 6 * KERNEL_64K);
	struct tcm_os_range ranges[] = {
		{ region, TCM_PAGE_BYTES },
		{ region + 4 * KERNEL_64K, KERNEL_64K },
		{ region + 2 * KERNEL_64K + TCM_PAGE_BYTES, KERNEL_64K - TCM_PAGE_BYTES },
	};
	tcm_os_release_ranges(ranges, 3);
	assert_int_equal(ranges[0].bytes, TCM_PAGE_BYTES);
	assert_int_equal(ranges[1].bytes, KERNEL_64K);
	assert_int_equal(ranges[2].bytes, 0);
	for (size_t page = 0; page < 6; page++) {
		char expected = page == 0 || page == 4 ? 0 : 0x5a;
		for (size_t i = 0; i < KERNEL_64K; i += 512)
			if (region[page * KERNEL_64K + i] != expected)
				fail_msg("kernel page %zu byte %zu is 0x%02x", page, i,
					 (unsigned char)region[page * KERNEL_64K + i]);
	}
}

/* Linux 5.10: no MADV_POPULATE_WRITE. A range that starts and ends off kernel
 * pages is resident afterwards all the same (touched), its bytes unchanged. */
static void populate_without_populate_write_touches_every_page(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_BATCHED_RELEASE);
	char *region = tcm_os_map(4 * KERNEL_64K, TCM_PAGE_BYTES);
	assert_non_null(region);
	region[TCM_PAGE_BYTES + 100] = 0x77;
	tcm_os_populate(region + TCM_PAGE_BYTES, 3 * KERNEL_64K, (uintptr_t)region + TCM_PAGE_BYTES,
			(uintptr_t)region + TCM_PAGE_BYTES + 3 * KERNEL_64K);
	assert_true(is_resident((uintptr_t)region + TCM_PAGE_BYTES, 3 * KERNEL_64K));
	assert_int_equal(region[TCM_PAGE_BYTES + 100], 0x77);
	assert_int_equal(region[TCM_PAGE_BYTES + 101], 0);
}

/* A call whose range starts off a kernel page (the kernel would answer EINVAL
 * to its madvise) does not switch MADV_POPULATE_WRITE off for later calls. */
static void populate_off_a_kernel_page_keeps_populate_write(void **state)
{
	(void)state;
	tcm_os_testing_emulate_kernel(KERNEL_64K, TCM_OS_TESTING_MODERN_KERNEL);
	char *region = tcm_os_map(8 * KERNEL_64K, TCM_PAGE_BYTES);
	assert_non_null(region);
	tcm_os_populate(region + TCM_PAGE_BYTES, 2 * KERNEL_64K, (uintptr_t)region + TCM_PAGE_BYTES,
			(uintptr_t)region + TCM_PAGE_BYTES + 2 * KERNEL_64K);
	assert_true(is_resident((uintptr_t)region + TCM_PAGE_BYTES, 2 * KERNEL_64K));
	tcm_os_populate(region + 4 * KERNEL_64K, 4 * KERNEL_64K, (uintptr_t)region + 4 * KERNEL_64K,
			(uintptr_t)region + 8 * KERNEL_64K);
	assert_true(is_resident((uintptr_t)region + 4 * KERNEL_64K, 4 * KERNEL_64K));
}

/* With no call to the setter, the environment picks the kernel, read once. */
static void environment_picks_the_kernel(void **state)
{
	(void)state;
	assert_int_equal(setenv("TCM_TESTING_KERNEL_PAGE_KIB", "16", 1), 0);
	assert_int_equal(tcm_os_kernel_page_bytes(), (size_t)16 << 10);
	assert_int_equal(setenv("TCM_TESTING_KERNEL_PAGE_KIB", "64", 1), 0);
	assert_int_equal(tcm_os_kernel_page_bytes(), (size_t)16 << 10);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(map_returns_whole_aligned_kernel_pages),
	cmocka_unit_test(release_refuses_a_start_off_a_kernel_page),
	cmocka_unit_test(release_rounds_the_length_up_to_kernel_pages),
	cmocka_unit_test(batched_release_rounds_and_refuses_range_by_range),
	cmocka_unit_test(populate_without_populate_write_touches_every_page),
	cmocka_unit_test(populate_off_a_kernel_page_keeps_populate_write),
	cmocka_unit_test(environment_picks_the_kernel),
};

UNIT_MAIN("kernel_emulation", tests)
