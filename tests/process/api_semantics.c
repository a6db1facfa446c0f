/* tests/process/api_semantics.c - glibc malloc-family semantics of libtcm.so under LD_PRELOAD.
 *
 * Run as `env LD_PRELOAD=libtcm.so api_semantics`. Checks, in order: that the
 * dynamic linker resolves malloc and every other
 * interposed name to libtcm.so (dladdr); then the argument rules, errno values and
 * results glibc 2.36 gives for malloc, free, calloc, realloc, reallocarray,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size,
 * free_sized, free_aligned_sized, mallinfo2, malloc_trim, mallopt, malloc_stats,
 * malloc_info and the __libc_* aliases, over small (16 B..256 KiB) and large
 * (300 KiB, 5 MiB, 100 MiB) sizes. fork_threaded.c covers fork.
 *
 * Semantics asserted where glibc versions or documents differ:
 *  - aligned_alloc with a non-power-of-two alignment (0, 3, 24): glibc 2.36 (this
 *    machine) accepts it like memalign (rounds up to a power of two); glibc >= 2.38
 *    and C17 DR 460 give NULL/EINVAL. Either is accepted, each checked exactly.
 *  - memalign rounds a non-power-of-two alignment up to the next power of two (glibc).
 *  - mallopt with an unknown parameter must return 0 (the tcm spec; glibc returns 1).
 *  - malloc_info(1, fp) must return -1 with errno EINVAL (man page and tcm spec;
 *    glibc 2.36 returns EINVAL as the value and leaves errno alone).
 * The expected library file name is libtcm.so; TCM_TESTING_EXPECT_LIB_NAME overrides it so the
 * program can be tried against another allocator. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "pattern.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);

/* Sizes from every small class region and the large (own span) region. */
static const size_t test_sizes[] = {
	1, 8, 15, 16, 17, 24, 32, 48, 64, 100, 128, 200, 256, 500, 512, 1000, 1024,
	2000, 4096, 5000, 8192, 10000, 16 * 1024, 32 * 1024 + 1, 64 * 1024, 100 * 1024,
	200 * 1024, 256 * 1024, 300 * 1024, 5 * MIB, 100 * MIB,
};
#define N_TEST_SIZES (sizeof(test_sizes) / sizeof(test_sizes[0]))

/* volatile so the compiler cannot fold the huge-size calls to NULL by itself. */
static volatile size_t size_max_v = SIZE_MAX;
static volatile size_t ptrdiff_max_v = PTRDIFF_MAX;
static volatile size_t zero_v = 0;  /* clang warns on a literal non-power-of-two alignment */

static const char *expected_lib_name(void)
{
	const char *name = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	return name != NULL && name[0] != '\0' ? name : "libtcm.so";
}

static int path_names_lib(const char *path, const char *lib)
{
	size_t n = strlen(path), m = strlen(lib);
	if (n < m || strcmp(path + n - m, lib) != 0)
		return 0;
	return n == m || path[n - m - 1] == '/';
}

/* The object file that defines the symbol `name` as the dynamic linker resolves it. */
static const char *defining_object(const char *name)
{
	void *sym = dlsym(RTLD_DEFAULT, name);
	if (sym == NULL)
		return "(symbol not found)";
	Dl_info info;
	if (dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return "(dladdr failed)";
	return info.dli_fname;
}


static size_t first_nonzero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return i;
	return n;
}

static int is_aligned(const void *p, size_t alignment)
{
	return ((uintptr_t)p & (alignment - 1)) == 0;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---------------------------------------------------------------- who serves malloc */

static void test_shim_malloc_served_by_tcm(void **state)
{
	(void)state;
	const char *lib = expected_lib_name();
	const char *obj = defining_object("malloc");
	print_message("malloc is defined in %s\n", obj);
	if (!path_names_lib(obj, lib))
		fail_msg("malloc resolves to %s, expected a path ending in %s", obj, lib);
}

static void test_shim_all_entry_points_served_by_tcm(void **state)
{
	(void)state;
	static const char *const names[] = {
		"free", "calloc", "realloc", "reallocarray", "memalign", "posix_memalign",
		"aligned_alloc", "valloc", "pvalloc", "malloc_usable_size", "malloc_trim",
		"mallinfo2", "mallopt", "malloc_stats", "malloc_info", "__libc_malloc",
		"__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
		"free_sized", "free_aligned_sized",
	};
	const char *lib = expected_lib_name();
	int bad = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *obj = defining_object(names[i]);
		if (!path_names_lib(obj, lib)) {
			print_error("%s resolves to %s, expected %s\n", names[i], obj, lib);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---------------------------------------------------------------- malloc / free */

static void test_shim_malloc_zero_is_unique_and_freeable(void **state)
{
	(void)state;
	void *a = malloc(0);
	void *b = malloc(0);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	free(a);
	free(b);
	free(NULL);
}

static void test_shim_malloc_alignment_16(void **state)
{
	(void)state;
	for (size_t n = 1; n <= 4096; n += (n < 256 ? 1 : 37)) {
		void *p = malloc(n);
		assert_non_null(p);
		if (!is_aligned(p, 16))
			fail_msg("malloc(%zu) = %p is not 16-byte aligned", n, p);
		memset(p, 0x5a, n);
		free(p);
	}
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		void *p = malloc(test_sizes[i]);
		assert_non_null(p);
		if (!is_aligned(p, 16))
			fail_msg("malloc(%zu) = %p is not 16-byte aligned", test_sizes[i], p);
		free(p);
	}
}

static void test_shim_malloc_contents_survive(void **state)
{
	(void)state;
	void *blocks[N_TEST_SIZES];
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		blocks[i] = malloc(test_sizes[i]);
		assert_non_null(blocks[i]);
		fill(blocks[i], test_sizes[i], (unsigned)i);
	}
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t bad = check_fill(blocks[i], test_sizes[i], (unsigned)i);
		if (bad != test_sizes[i])
			fail_msg("block %zu of %zu bytes corrupted at offset %zu", i, test_sizes[i], bad);
		free(blocks[i]);
	}
}

static void test_shim_malloc_huge_fails_enomem(void **state)
{
	(void)state;
	errno = 0;
	assert_null(malloc(size_max_v));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(malloc(ptrdiff_max_v + 1));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(malloc(size_max_v - 4096));
	assert_int_equal(errno, ENOMEM);
	/* The allocator still works afterwards. */
	void *p = malloc(100);
	assert_non_null(p);
	free(p);
}

/* ---------------------------------------------------------------- calloc */

static void test_shim_calloc_zeroes(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t n = test_sizes[i];
		unsigned char *p = calloc(1, n);
		assert_non_null(p);
		size_t bad = first_nonzero(p, n);
		if (bad != n)
			fail_msg("calloc(1, %zu): byte %zu is not zero", n, bad);
		free(p);
	}
	unsigned char *q = calloc(1000, 24);
	assert_non_null(q);
	assert_int_equal(first_nonzero(q, 24000), 24000);
	free(q);
}

/* A block freed dirty and handed out again by calloc must come back zeroed; the
 * thread cache is LIFO, so the same block is the likely one to be reused. */
static void test_shim_calloc_zeroes_reused_dirty_block(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t n = test_sizes[i];
		for (int round = 0; round < 3; round++) {
			unsigned char *d = malloc(n);
			assert_non_null(d);
			memset(d, 0xab, malloc_usable_size(d));
			free(d);
			unsigned char *p = calloc(n, 1);
			assert_non_null(p);
			size_t bad = first_nonzero(p, n);
			if (bad != n)
				fail_msg("calloc(%zu, 1) after a dirty free (reused: %s): byte %zu = 0x%02x",
				         n, p == d ? "yes" : "no", bad, p[bad]);
			free(p);
		}
	}
}

static void test_shim_calloc_overflow_enomem(void **state)
{
	(void)state;
	errno = 0;
	assert_null(calloc(size_max_v / 2, 3));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(calloc(3, size_max_v / 2));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(calloc(size_max_v >> 31, size_max_v >> 31));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(calloc(1, size_max_v));
	assert_int_equal(errno, ENOMEM);
	void *p = calloc(0, 0);  /* glibc: a unique freeable pointer */
	assert_non_null(p);
	free(p);
}

/* ---------------------------------------------------------------- realloc */

/* The failing realloc tests use the old block after a NULL return on purpose (it is
 * still the caller's); gcc 12's -Wuse-after-free cannot know the call fails. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static void test_shim_realloc_null_is_malloc(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t n = test_sizes[i];
		unsigned char *p = realloc(NULL, n);
		assert_non_null(p);
		assert_true(is_aligned(p, 16));
		assert_true(malloc_usable_size(p) >= n);
		fill(p, n, 7);
		assert_int_equal(check_fill(p, n, 7), n);
		free(p);
	}
}

static void test_shim_realloc_zero_frees_returns_null(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		void *p = malloc(test_sizes[i]);
		assert_non_null(p);
		/* glibc: realloc(p, 0) with p != NULL frees p and returns NULL. */
		assert_null(realloc(p, 0));
	}
}

static void test_shim_realloc_preserves_contents_small_large(void **state)
{
	(void)state;
	/* Walk across small <-> large boundaries in both directions. */
	static const size_t steps[] = {
		10, MIB, 100, 300 * KIB, 16, 5 * MIB, 4 * MIB, 257 * KIB, 255 * KIB, 1000, 1001, 24,
	};
	size_t cur = steps[0];
	unsigned char *p = malloc(cur);
	assert_non_null(p);
	fill(p, cur, 99);
	for (size_t i = 1; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t next = steps[i];
		unsigned char *q = realloc(p, next);
		if (q == NULL)
			fail_msg("realloc(%zu -> %zu) returned NULL", cur, next);
		size_t keep = cur < next ? cur : next;
		size_t bad = check_fill(q, keep, 99);
		if (bad != keep)
			fail_msg("realloc(%zu -> %zu) lost contents at offset %zu", cur, next, bad);
		assert_true(malloc_usable_size(q) >= next);
		fill(q, next, 99);
		p = q;
		cur = next;
	}
	free(p);
}

static void test_shim_realloc_huge_fails_keeps_block(void **state)
{
	(void)state;
	static const size_t sizes[] = { 100, 300 * KIB };
	for (size_t i = 0; i < 2; i++) {
		size_t n = sizes[i];
		unsigned char *p = malloc(n);
		assert_non_null(p);
		fill(p, n, 3);
		errno = 0;
		assert_null(realloc(p, size_max_v - 4096));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(realloc(p, ptrdiff_max_v + 1));
		assert_int_equal(errno, ENOMEM);
		assert_int_equal(check_fill(p, n, 3), n);
		assert_true(malloc_usable_size(p) >= n);
		free(p);
	}
}

static void test_shim_reallocarray(void **state)
{
	(void)state;
	unsigned char *p = reallocarray(NULL, 10, 10);
	assert_non_null(p);
	fill(p, 100, 5);
	unsigned char *q = reallocarray(p, 1000, 10);
	assert_non_null(q);
	assert_int_equal(check_fill(q, 100, 5), 100);
	p = q;
	errno = 0;
	assert_null(reallocarray(p, size_max_v / 2, 3));
	assert_int_equal(errno, ENOMEM);
	/* The old block is untouched and still owned by the caller. */
	assert_int_equal(check_fill(p, 100, 5), 100);
	assert_true(malloc_usable_size(p) >= 10000);
	memset(p, 0, 10000);
	free(p);
}

/* ---------------------------------------------------------------- aligned allocation */

static void test_shim_posix_memalign_einval(void **state)
{
	(void)state;
	static const size_t bad[] = { 0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, (size_t)1 << 63 | 8 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *p = (void *)0x1;
		int r = posix_memalign(&p, bad[i], 64);
		if (r != EINVAL)
			fail_msg("posix_memalign(alignment %zu) returned %d, expected EINVAL", bad[i], r);
	}
}

static void test_shim_posix_memalign_succeeds_aligned(void **state)
{
	(void)state;
	for (size_t a = sizeof(void *); a <= 64 * KIB; a *= 2) {
		static const size_t sizes[] = { 1, 8, 100, 4096, 70000, 300 * KIB };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			void *p = NULL;
			errno = 4242;
			int r = posix_memalign(&p, a, sizes[i]);
			if (r != 0)
				fail_msg("posix_memalign(%zu, %zu) = %d", a, sizes[i], r);
			assert_int_equal(errno, 4242);  /* success leaves errno alone */
			assert_non_null(p);
			if (!is_aligned(p, a))
				fail_msg("posix_memalign(%zu, %zu) = %p misaligned", a, sizes[i], p);
			assert_true(malloc_usable_size(p) >= sizes[i]);
			memset(p, 0x11, sizes[i]);
			free(p);
		}
	}
	void *p = NULL;
	assert_int_equal(posix_memalign(&p, MIB, 10), 0);
	assert_true(is_aligned(p, MIB));
	memset(p, 1, 10);
	free(p);
	assert_int_equal(posix_memalign(&p, MIB, 3 * MIB), 0);
	assert_true(is_aligned(p, MIB));
	memset(p, 1, 3 * MIB);
	free(p);
}

static void test_shim_posix_memalign_huge_enomem(void **state)
{
	(void)state;
	void *p = NULL;
	assert_int_equal(posix_memalign(&p, 64, size_max_v - 100), ENOMEM);
	assert_int_equal(posix_memalign(&p, 4096, ptrdiff_max_v + 1), ENOMEM);
	assert_int_equal(posix_memalign(&p, MIB, size_max_v - MIB), ENOMEM);
}

static void test_shim_aligned_alloc(void **state)
{
	(void)state;
	for (size_t a = 1; a <= MIB; a *= 2) {
		void *p = aligned_alloc(a, 3 * a);
		assert_non_null(p);
		if (!is_aligned(p, a))
			fail_msg("aligned_alloc(%zu, %zu) = %p misaligned", a, 3 * a, p);
		memset(p, 0x22, 3 * a);
		free(p);
	}
	errno = 0;
	assert_null(aligned_alloc(64, size_max_v - 100));
	assert_int_equal(errno, ENOMEM);
}

/* glibc 2.36 treats aligned_alloc like memalign (non-power-of-two alignment rounded up,
 * 0 meaning the default); glibc >= 2.38 returns NULL/EINVAL. Accept either, exactly. */
static void test_shim_aligned_alloc_bad_alignment(void **state)
{
	(void)state;
	static const struct { size_t alignment, rounded; } cases[] = { { 0, 1 }, { 3, 4 }, { 24, 32 } };
	for (size_t i = 0; i < 3; i++) {
		errno = 0;
		void *p = aligned_alloc(cases[i].alignment, 16);
		if (p == NULL) {
			if (errno != EINVAL)
				fail_msg("aligned_alloc(%zu, 16) = NULL with errno %d, expected EINVAL",
				         cases[i].alignment, errno);
		} else {
			if (!is_aligned(p, cases[i].rounded))
				fail_msg("aligned_alloc(%zu, 16) = %p, not %zu-aligned",
				         cases[i].alignment, p, cases[i].rounded);
			assert_true(malloc_usable_size(p) >= 16);
			memset(p, 0, 16);
			free(p);
		}
	}
}

static void test_shim_memalign(void **state)
{
	(void)state;
	void *p = memalign(4096, 1);
	assert_non_null(p);
	assert_true(is_aligned(p, 4096));
	free(p);
	for (size_t a = 1; a <= MIB; a *= 2) {
		p = memalign(a, a + 1);
		assert_non_null(p);
		if (!is_aligned(p, a))
			fail_msg("memalign(%zu) = %p misaligned", a, p);
		memset(p, 0x33, a + 1);
		free(p);
	}
	/* glibc: a non-power-of-two alignment is rounded up to the next power of two. */
	static const struct { size_t alignment, rounded; } cases[] = {
		{ 3, 4 }, { 24, 32 }, { 48, 64 }, { 100, 128 }, { 3000, 4096 }, { 5000, 8192 },
		{ 300 * KIB, 512 * KIB },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = memalign(cases[i].alignment, 100);
		if (p == NULL)
			fail_msg("memalign(%zu, 100) = NULL errno %d", cases[i].alignment, errno);
		if (!is_aligned(p, cases[i].rounded))
			fail_msg("memalign(%zu, 100) = %p, not %zu-aligned", cases[i].alignment, p,
			         cases[i].rounded);
		memset(p, 0x44, 100);
		free(p);
	}
	p = memalign(zero_v, 100);  /* glibc: alignment below the minimum means malloc */
	assert_non_null(p);
	assert_true(is_aligned(p, 16));
	free(p);
	/* An alignment no size_t can round up, or a size nothing can hold, fails with
	 * errno EINVAL (glibc) or ENOMEM. */
	errno = 0;
	assert_null(memalign(size_max_v / 2 + 2, 16));
	assert_true(errno == EINVAL || errno == ENOMEM);
	errno = 0;
	assert_null(memalign(64, size_max_v - 100));
	assert_int_equal(errno, ENOMEM);
}

static void test_shim_valloc_pvalloc(void **state)
{
	(void)state;
	size_t page = page_size();
	static const size_t sizes[] = { 1, 100, 4096, 5000, 300 * KIB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *p = valloc(sizes[i]);
		assert_non_null(p);
		if (!is_aligned(p, page))
			fail_msg("valloc(%zu) = %p not page aligned", sizes[i], p);
		memset(p, 0x55, sizes[i]);
		free(p);
	}
	void *p = pvalloc(1);
	assert_non_null(p);
	assert_true(is_aligned(p, page));
	if (malloc_usable_size(p) < page)
		fail_msg("pvalloc(1): usable size %zu < page %zu", malloc_usable_size(p), page);
	memset(p, 0x66, page);  /* pvalloc rounds the size up to a whole page */
	free(p);
	p = pvalloc(page + 1);
	assert_non_null(p);
	assert_true(is_aligned(p, page));
	assert_true(malloc_usable_size(p) >= 2 * page);
	memset(p, 0x66, 2 * page);
	free(p);
}

/* ---------------------------------------------------------------- usable size, sized free */

static void test_shim_malloc_usable_size(void **state)
{
	(void)state;
	assert_int_equal(malloc_usable_size(NULL), 0);
	for (size_t n = 1; n <= 2048; n += 7) {
		unsigned char *p = malloc(n);
		assert_non_null(p);
		size_t u = malloc_usable_size(p);
		if (u < n)
			fail_msg("malloc_usable_size(malloc(%zu)) = %zu", n, u);
		memset(p, 0x77, u);  /* the whole usable size is writable */
		free(p);
	}
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t n = test_sizes[i];
		unsigned char *p = malloc(n);
		assert_non_null(p);
		size_t u = malloc_usable_size(p);
		if (u < n)
			fail_msg("malloc_usable_size(malloc(%zu)) = %zu", n, u);
		memset(p, 0x77, u);
		/* a neighbour must not be disturbed by writing the whole usable size */
		unsigned char *q = malloc(n);
		assert_non_null(q);
		fill(q, n, 11);
		memset(p, 0x78, u);
		assert_int_equal(check_fill(q, n, 11), n);
		free(q);
		free(p);
	}
}

static void test_shim_free_sized_and_aligned_sized(void **state)
{
	(void)state;
	/* Looked up at run time so the program also links against a glibc without them. */
	free_sized_fn fs = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
	free_aligned_sized_fn fas = (free_aligned_sized_fn)dlsym(RTLD_DEFAULT, "free_aligned_sized");
	if (fs == NULL || fas == NULL)
		fail_msg("free_sized=%p free_aligned_sized=%p: not exported", (void *)fs, (void *)fas);
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t n = test_sizes[i];
		void *p = malloc(n);
		assert_non_null(p);
		memset(p, 1, n);
		fs(p, n);
		p = calloc(1, n);
		assert_non_null(p);
		fs(p, n);
	}
	for (size_t a = 16; a <= 64 * KIB; a *= 4) {
		static const size_t sizes[] = { 16, 1000, 70000, 300 * KIB };
		for (size_t i = 0; i < 4; i++) {
			size_t n = (sizes[i] + a - 1) / a * a;  /* C23: size a multiple of alignment */
			void *p = aligned_alloc(a, n);
			assert_non_null(p);
			assert_true(is_aligned(p, a));
			memset(p, 2, n);
			fas(p, a, n);
		}
	}
	fs(NULL, 0);
	fas(NULL, 64, 0);
	/* The allocator is still consistent: reuse the freed classes. */
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		unsigned char *p = malloc(test_sizes[i]);
		assert_non_null(p);
		fill(p, test_sizes[i], 1);
		assert_int_equal(check_fill(p, test_sizes[i], 1), test_sizes[i]);
		free(p);
	}
}

/* ---------------------------------------------------------------- glibc extensions */

static void test_shim_mallinfo2_counts_live_bytes(void **state)
{
	(void)state;
	void *small[64];
	for (int i = 0; i < 64; i++) {
		small[i] = malloc(100);
		assert_non_null(small[i]);
	}
	struct mallinfo2 before = mallinfo2();
	assert_true(before.arena > 0);
	assert_true(before.uordblks > 0);
	unsigned char *big = malloc(MIB);
	assert_non_null(big);
	memset(big, 0x12, MIB);
	struct mallinfo2 after = mallinfo2();
	print_message("mallinfo2 arena %zu -> %zu, uordblks %zu -> %zu\n", before.arena,
	              after.arena, before.uordblks, after.uordblks);
	if (after.uordblks < before.uordblks + MIB)
		fail_msg("uordblks grew from %zu to %zu with a live 1 MiB block", before.uordblks,
		         after.uordblks);
	assert_true(after.arena > 0);
	free(big);
	for (int i = 0; i < 64; i++)
		free(small[i]);
}

static void test_shim_malloc_trim(void **state)
{
	(void)state;
	void *p[32];
	for (int i = 0; i < 32; i++) {
		p[i] = malloc(64 * KIB);
		assert_non_null(p[i]);
		memset(p[i], 1, 64 * KIB);
	}
	for (int i = 0; i < 32; i++)
		free(p[i]);
	int r = malloc_trim(0);
	assert_true(r == 0 || r == 1);
	r = malloc_trim(MIB);
	assert_true(r == 0 || r == 1);
	void *q = malloc(64 * KIB);  /* still usable after a trim */
	assert_non_null(q);
	memset(q, 2, 64 * KIB);
	free(q);
}

static void test_shim_mallopt(void **state)
{
	(void)state;
	assert_int_equal(mallopt(M_ARENA_MAX, 1), 1);
	/* tcm spec: an unknown parameter is refused (glibc 2.36 would return 1). */
	assert_int_equal(mallopt(12345, 1), 0);
	assert_int_equal(mallopt(-12345, 1), 0);
}

/* Reads what f holds from its start into buf (NUL-terminated, truncated to cap-1). */
static size_t slurp(FILE *f, char *buf, size_t cap)
{
	fflush(f);
	rewind(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	return n;
}

static void test_shim_malloc_stats_mentions_tcm(void **state)
{
	(void)state;
	void *p = malloc(1000);  /* something to report */
	assert_non_null(p);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	malloc_stats();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	static char buf[1 << 16];
	size_t n = slurp(tmp, buf, sizeof(buf));
	fclose(tmp);
	free(p);
	if (n == 0)
		fail_msg("malloc_stats wrote nothing to stderr");
	if (strstr(buf, "tcm") == NULL)
		fail_msg("malloc_stats output does not mention tcm:\n%.400s", buf);
}

static void test_shim_malloc_info(void **state)
{
	(void)state;
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	assert_int_equal(malloc_info(0, tmp), 0);
	static char buf[1 << 16];
	size_t n = slurp(tmp, buf, sizeof(buf));
	const char *start = buf;
	while (*start == ' ' || *start == '\n' || *start == '\t')
		start++;
	if (n == 0 || strncmp(start, "<malloc", 7) != 0)
		fail_msg("malloc_info(0) wrote %zu bytes not starting with <malloc: %.200s", n, buf);
	fclose(tmp);
	tmp = tmpfile();
	assert_non_null(tmp);
	errno = 0;
	int r = malloc_info(1, tmp);
	int e = errno;
	fclose(tmp);
	if (r != -1 || e != EINVAL)
		fail_msg("malloc_info(1, fp) = %d errno %d, expected -1 errno EINVAL (%d)", r, e, EINVAL);
}

/* ---------------------------------------------------------------- __libc_* aliases */

/* Every glibc entry point that hands out or describes heap memory is tcm's:
 * __libc_valloc and __libc_pvalloc left to glibc gave glibc memory to tcm's
 * free and realloc, and mallinfo described glibc's empty arena. */
static void test_shim_glibc_leftovers_are_interposed(void **state)
{
	(void)state;
	const char *lib = expected_lib_name();
	static const char *const names[] = { "mallinfo", "__libc_valloc", "__libc_pvalloc" };
	for (int i = 0; i < 3; i++) {
		const char *obj = defining_object(names[i]);
		if (!path_names_lib(obj, lib))
			fail_msg("%s resolves to %s, expected %s", names[i], obj, lib);
	}
	void *(*l_valloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_valloc");
	void *(*l_pvalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_pvalloc");
	void *v = l_valloc(100);
	void *pv = l_pvalloc(100);
	assert_non_null(v);
	assert_non_null(pv);
	assert_true(is_aligned(v, page_size()));
	assert_true(is_aligned(pv, page_size()));
	assert_true(malloc_usable_size(v) >= 100);           /* 0: not tcm's */
	assert_true(malloc_usable_size(pv) >= page_size());
	pv = realloc(pv, 3 * page_size());
	assert_non_null(pv);
	free(v);
	free(pv);
	unsigned char *big = malloc(4 * MIB);
	assert_non_null(big);
	memset(big, 1, 4 * MIB);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo narrow = mallinfo();
#pragma GCC diagnostic pop
	assert_true(narrow.uordblks >= (int)(4 * MIB));
	free(big);
}

static void test_shim_libc_aliases_interoperate(void **state)
{
	(void)state;
	void *(*l_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	void (*l_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
	void *(*l_calloc)(size_t, size_t) =
		(void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
	void *(*l_realloc)(void *, size_t) =
		(void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
	void *(*l_memalign)(size_t, size_t) =
		(void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
	assert_non_null(l_malloc);
	assert_non_null(l_free);
	assert_non_null(l_calloc);
	assert_non_null(l_realloc);
	assert_non_null(l_memalign);
	const char *lib = expected_lib_name();
	static const char *const names[] = { "__libc_malloc", "__libc_free", "__libc_calloc",
	                                     "__libc_realloc", "__libc_memalign" };
	for (int i = 0; i < 5; i++) {
		const char *obj = defining_object(names[i]);
		if (!path_names_lib(obj, lib))
			fail_msg("%s resolves to %s, expected %s", names[i], obj, lib);
	}
	for (size_t i = 0; i < N_TEST_SIZES; i++) {
		size_t n = test_sizes[i];
		/* __libc_malloc -> realloc -> __libc_free */
		unsigned char *p = l_malloc(n);
		assert_non_null(p);
		fill(p, n, 21);
		unsigned char *q = realloc(p, n + 100);
		assert_non_null(q);
		assert_int_equal(check_fill(q, n, 21), n);
		l_free(q);
		/* malloc -> __libc_realloc -> free */
		p = malloc(n);
		assert_non_null(p);
		fill(p, n, 22);
		q = l_realloc(p, n * 2);
		assert_non_null(q);
		assert_int_equal(check_fill(q, n, 22), n);
		free(q);
		/* __libc_calloc zeroes; its block goes to free */
		p = l_calloc(n, 1);
		assert_non_null(p);
		assert_int_equal(first_nonzero(p, n), n);
		assert_true(malloc_usable_size(p) >= n);
		free(p);
		/* __libc_memalign -> malloc_usable_size -> __libc_free */
		p = l_memalign(256, n);
		assert_non_null(p);
		assert_true(is_aligned(p, 256));
		assert_true(malloc_usable_size(p) >= n);
		memset(p, 3, n);
		l_free(p);
	}
	l_free(NULL);
	assert_null(l_realloc(l_malloc(10), 0));
	errno = 0;
	assert_null(l_malloc(size_max_v));
	assert_int_equal(errno, ENOMEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shim_malloc_served_by_tcm),
		cmocka_unit_test(test_shim_glibc_leftovers_are_interposed),
		cmocka_unit_test(test_shim_all_entry_points_served_by_tcm),
		cmocka_unit_test(test_shim_malloc_zero_is_unique_and_freeable),
		cmocka_unit_test(test_shim_malloc_alignment_16),
		cmocka_unit_test(test_shim_malloc_contents_survive),
		cmocka_unit_test(test_shim_malloc_huge_fails_enomem),
		cmocka_unit_test(test_shim_calloc_zeroes),
		cmocka_unit_test(test_shim_calloc_zeroes_reused_dirty_block),
		cmocka_unit_test(test_shim_calloc_overflow_enomem),
		cmocka_unit_test(test_shim_realloc_null_is_malloc),
		cmocka_unit_test(test_shim_realloc_zero_frees_returns_null),
		cmocka_unit_test(test_shim_realloc_preserves_contents_small_large),
		cmocka_unit_test(test_shim_realloc_huge_fails_keeps_block),
		cmocka_unit_test(test_shim_reallocarray),
		cmocka_unit_test(test_shim_posix_memalign_einval),
		cmocka_unit_test(test_shim_posix_memalign_succeeds_aligned),
		cmocka_unit_test(test_shim_posix_memalign_huge_enomem),
		cmocka_unit_test(test_shim_aligned_alloc),
		cmocka_unit_test(test_shim_aligned_alloc_bad_alignment),
		cmocka_unit_test(test_shim_memalign),
		cmocka_unit_test(test_shim_valloc_pvalloc),
		cmocka_unit_test(test_shim_malloc_usable_size),
		cmocka_unit_test(test_shim_free_sized_and_aligned_sized),
		cmocka_unit_test(test_shim_mallinfo2_counts_live_bytes),
		cmocka_unit_test(test_shim_malloc_trim),
		cmocka_unit_test(test_shim_mallopt),
		cmocka_unit_test(test_shim_malloc_stats_mentions_tcm),
		cmocka_unit_test(test_shim_malloc_info),
		cmocka_unit_test(test_shim_libc_aliases_interoperate),
	};
	return cmocka_run_group_tests_name("shim_api", tests, NULL, NULL) == 0 ? 0 : 1;
}
