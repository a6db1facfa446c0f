/* tests/unit/alloc_test.c - the core entry points: malloc, zalloc, realloc
 * (large blocks grown and shrunk in place, room to grow after a move),
 * aligned_alloc, usable_size and free across the small/large boundary
 * (256 KiB, 256 KiB + 1), pointers tcm never handed out, release of free
 * memory with its stats, ENOMEM through the os.c fault hook, memory that
 * all comes back after cross-thread frees and thread exits, and the size
 * classes' counts, which account for every object once.
 *
 * Each test runs in a fresh process (see unit.h); the test program itself
 * uses glibc's malloc (cmocka does), never tcm's. */
#include "unit.h"

#include "core.h"
#include "os.h"
#include "page_heap.h"
#include "page_map.h"
#include "size_class.h"
#include "thread_cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIB ((size_t)1024)
#define MIB ((size_t)1 << 20)

static void fill(void *ptr, size_t size, unsigned seed)
{
	unsigned char *bytes = ptr;
	for (size_t i = 0; i < size; i++)
		bytes[i] = (unsigned char)(seed + i * 31);
}

static bool has_fill(const void *ptr, size_t size, unsigned seed)
{
	const unsigned char *bytes = ptr;
	for (size_t i = 0; i < size; i++)
		if (bytes[i] != (unsigned char)(seed + i * 31))
			return false;
	return true;
}

static bool is_all_zero(const void *ptr, size_t size)
{
	const unsigned char *bytes = ptr;
	for (size_t i = 0; i < size; i++)
		if (bytes[i] != 0)
			return false;
	return true;
}

static struct tcm_stats core_stats(void)
{
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	return stats;
}

/* Runs body with fd 2 sent to a temporary file; returns what was written
 * (caller frees; glibc memory). */
static char *capture_stderr(void (*body)(void *), void *arg)
{
	FILE *file = tmpfile();
	assert_non_null(file);
	fflush(stderr);
	int saved = dup(2);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(file), 2) >= 0);
	body(arg);
	fflush(stderr);
	assert_true(dup2(saved, 2) >= 0);
	close(saved);
	/* tcm writes with write(2): the length is the file's, not stdio's. */
	off_t length = lseek(fileno(file), 0, SEEK_END);
	assert_true(length >= 0);
	char *text = calloc((size_t)length + 1, 1);
	assert_non_null(text);
	assert_int_equal(pread(fileno(file), text, (size_t)length, 0), length);
	fclose(file);
	return text;
}

static size_t count_lines(const char *text)
{
	size_t lines = 0;
	for (; *text != '\0'; text++)
		lines += *text == '\n';
	return lines;
}

/* ---- malloc / free / usable_size -------------------------------------------------------- */

static void small_large_boundary(void **state)
{
	(void)state;
	void *small = tcm_core_malloc(TCM_SMALL_MAX_BYTES);
	assert_non_null(small);
	assert_int_equal(tcm_page_map_size_class(small), 52);
	assert_int_equal(tcm_core_usable_size(small), TCM_SMALL_MAX_BYTES);
	fill(small, TCM_SMALL_MAX_BYTES, 1);

	void *large = tcm_core_malloc(TCM_SMALL_MAX_BYTES + 1);
	assert_non_null(large);
	assert_int_equal(tcm_page_map_size_class(large), 0);
	assert_int_equal((uintptr_t)large % TCM_PAGE_BYTES, 0);
	assert_ptr_equal((void *)tcm_page_heap_large_span_of(large)->start, large);
	/* A large block is whole pages. */
	assert_int_equal(tcm_core_usable_size(large), TCM_SMALL_MAX_BYTES + TCM_PAGE_BYTES);
	fill(large, tcm_core_usable_size(large), 2);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), TCM_SMALL_MAX_BYTES + TCM_PAGE_BYTES);

	assert_true(has_fill(small, TCM_SMALL_MAX_BYTES, 1));
	tcm_core_free(small);
	tcm_core_free(large);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 0);
}

static void usable_size_covers_request(void **state)
{
	(void)state;
	enum { MAX = 200 };
	void *ptrs[MAX];
	size_t sizes[MAX];
	size_t n = 0;
	sizes[n++] = 0;
	for (size_t power = 1; power <= 4 * MIB && n + 3 <= MAX; power *= 2) {
		sizes[n++] = power - 1;
		sizes[n++] = power;
		sizes[n++] = power + 1;
	}
	for (size_t i = 0; i < n; i++) {
		ptrs[i] = tcm_core_malloc(sizes[i]);
		assert_non_null(ptrs[i]);
		assert_int_equal((uintptr_t)ptrs[i] % TCM_MIN_ALIGN_BYTES, 0);
		size_t usable = tcm_core_usable_size(ptrs[i]);
		if (usable < sizes[i] || usable == 0)
			fail_msg("malloc(%zu): usable size %zu", sizes[i], usable);
		if (sizes[i] <= TCM_SMALL_MAX_BYTES) {
			unsigned size_class = tcm_size_class_of(sizes[i]);
			assert_int_equal(tcm_page_map_size_class(ptrs[i]), size_class);
			assert_int_equal(usable, tcm_size_classes[size_class].object_bytes);
		}
		fill(ptrs[i], usable, (unsigned)i);
	}
	for (size_t i = 0; i < n; i++) {
		assert_true(has_fill(ptrs[i], tcm_core_usable_size(ptrs[i]), (unsigned)i));
		tcm_core_free(ptrs[i]);
	}
	assert_int_equal(tcm_core_usable_size(NULL), 0);
	tcm_core_free(NULL);
}

static void malloc_zero_is_unique(void **state)
{
	(void)state;
	void *a = tcm_core_malloc(0), *b = tcm_core_malloc(0);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_true(tcm_core_usable_size(a) >= 1);
	tcm_core_free(a);
	tcm_core_free(b);
}

static void huge_request_fails_with_enomem(void **state)
{
	(void)state;
	errno = 0;
	assert_null(tcm_core_malloc(SIZE_MAX));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_malloc(SIZE_MAX - TCM_PAGE_BYTES));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_zalloc((size_t)PTRDIFF_MAX + 1));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_aligned_alloc(64, SIZE_MAX - 10));
	assert_int_equal(errno, ENOMEM);
	void *ok = tcm_core_malloc(100);
	assert_non_null(ok);
	tcm_core_free(ok);
}

/* Requests past the address range a span can have (2^53, 2^56 bytes) crashed
 * in the page heap's free-set lookup, some only once a free committed span
 * existed: each fails with ENOMEM, realloc keeps the block, and the heap
 * serves normally afterwards. */
static void huge_requests_of_every_kind_fail_with_enomem(void **state)
{
	(void)state;
	tcm_core_free(tcm_core_malloc(TCM_SMALL_MAX_BYTES + 1));   /* a free committed span */
	static const size_t huge[] = { (size_t)1 << 47 | 1, (size_t)1 << 53, (size_t)1 << 56, (size_t)PTRDIFF_MAX };
	char *block = tcm_core_malloc(TCM_SMALL_MAX_BYTES * 2);
	char *small = tcm_core_malloc(100);
	assert_non_null(block);
	assert_non_null(small);
	fill(block, TCM_SMALL_MAX_BYTES * 2, 7);
	fill(small, 100, 8);
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		errno = 0;
		assert_null(tcm_core_malloc(huge[i]));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(tcm_core_zalloc(huge[i]));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(tcm_core_aligned_alloc(64, huge[i]));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(tcm_core_realloc(block, huge[i]));
		assert_int_equal(errno, ENOMEM);
		errno = 0;
		assert_null(tcm_core_realloc(small, huge[i]));
		assert_int_equal(errno, ENOMEM);
	}
	static const size_t huge_alignments[] = { (size_t)1 << 48, (size_t)1 << 53, (size_t)1 << 56, (size_t)1 << 63 };
	for (size_t i = 0; i < sizeof(huge_alignments) / sizeof(huge_alignments[0]); i++) {
		errno = 0;
		assert_null(tcm_core_aligned_alloc(huge_alignments[i], 1));
		assert_int_equal(errno, ENOMEM);
	}
	assert_true(has_fill(block, TCM_SMALL_MAX_BYTES * 2, 7));
	assert_true(has_fill(small, 100, 8));
	assert_int_equal(tcm_core_usable_size(block), TCM_SMALL_MAX_BYTES * 2);
	tcm_core_free(block);
	tcm_core_free(small);
	void *after = tcm_core_malloc(TCM_SMALL_MAX_BYTES * 3);
	assert_non_null(after);
	tcm_core_free(after);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- zalloc ------------------------------------------------------------------------------ */

static void zalloc_is_zero_after_dirty_free(void **state)
{
	(void)state;
	static const size_t sizes[] = { 1, 16, 100, 4096, 100 * KIB, TCM_SMALL_MAX_BYTES,
					TCM_SMALL_MAX_BYTES + 1, 3 * MIB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* Dirty blocks of the size, freed, so zalloc is likely to reuse one. */
		void *dirty[4];
		for (int k = 0; k < 4; k++) {
			dirty[k] = tcm_core_malloc(sizes[i]);
			assert_non_null(dirty[k]);
			memset(dirty[k], 0xee, tcm_core_usable_size(dirty[k]));
		}
		for (int k = 0; k < 4; k++)
			tcm_core_free(dirty[k]);
		for (int k = 0; k < 4; k++) {
			void *zeroed = tcm_core_zalloc(sizes[i]);
			assert_non_null(zeroed);
			if (!is_all_zero(zeroed, sizes[i]))
				fail_msg("zalloc(%zu) returned non-zero bytes", sizes[i]);
			dirty[k] = zeroed;
		}
		for (int k = 0; k < 4; k++)
			tcm_core_free(dirty[k]);
	}
}

/* ---- realloc ----------------------------------------------------------------------------- */

static void realloc_preserves_contents(void **state)
{
	(void)state;
	/* A walk through sizes that crosses the small/large boundary both ways. */
	static const size_t steps[] = { 1, 16, 17, 100, 1000, 8192, 100 * KIB, TCM_SMALL_MAX_BYTES,
					TCM_SMALL_MAX_BYTES + 1, 1 * MIB, 5 * MIB, 300 * KIB,
					TCM_SMALL_MAX_BYTES, 200 * KIB, 1000, 30, 16, 1 };
	size_t current = 1;
	unsigned char *ptr = tcm_core_malloc(current);
	assert_non_null(ptr);
	fill(ptr, current, 7);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t next = steps[i];
		unsigned char *moved = tcm_core_realloc(ptr, next);
		assert_non_null(moved);
		assert_true(tcm_core_usable_size(moved) >= next);
		size_t kept = current < next ? current : next;
		if (!has_fill(moved, kept, 7))
			fail_msg("realloc %zu -> %zu lost contents", current, next);
		fill(moved, next, 7);
		ptr = moved;
		current = next;
	}
	tcm_core_free(ptr);
}

static void realloc_in_place_when_it_fits(void **state)
{
	(void)state;
	void *ptr = tcm_core_malloc(100);
	size_t usable = tcm_core_usable_size(ptr);
	assert_true(usable > 100);
	fill(ptr, 100, 3);
	/* Growing within the usable size keeps the block. */
	assert_ptr_equal(tcm_core_realloc(ptr, usable), ptr);
	assert_true(has_fill(ptr, 100, 3));
	/* A large block grown within its last page too. */
	void *large = tcm_core_malloc(TCM_SMALL_MAX_BYTES + 1);
	size_t large_usable = tcm_core_usable_size(large);
	assert_ptr_equal(tcm_core_realloc(large, large_usable), large);
	tcm_core_free(large);
	/* Growing past it moves. */
	void *moved = tcm_core_realloc(ptr, usable + 1);
	assert_non_null(moved);
	assert_true(has_fill(moved, 100, 3));
	tcm_core_free(moved);
}

/* In a fresh process the first large block is carved from the front of the
 * heap's first region: the pages after it are free. */
static void realloc_grows_large_block_in_place(void **state)
{
	(void)state;
	size_t size = 300 * KIB;
	unsigned char *ptr = tcm_core_malloc(size);
	assert_non_null(ptr);
	fill(ptr, size, 8);
	/* Small steps, as a growing buffer takes them: never a move. */
	for (size_t next = size + 1; next <= 2 * MIB; next += next / 8) {
		unsigned char *grown = tcm_core_realloc(ptr, next);
		if (grown != ptr)
			fail_msg("realloc %zu -> %zu moved the block from %p to %p", size, next, (void *)ptr,
				 (void *)grown);
		assert_int_equal(tcm_core_usable_size(ptr), (next + TCM_PAGE_BYTES - 1) / TCM_PAGE_BYTES * TCM_PAGE_BYTES);
		assert_int_equal(tcm_alloc_large_allocated_bytes(), tcm_core_usable_size(ptr));
		if (!has_fill(ptr, size, 8))
			fail_msg("realloc %zu -> %zu lost contents", size, next);
		fill(ptr, next, 8);
		size = next;
	}
	assert_int_equal(tcm_page_heap_check(), 0);

	/* A block right after it stops the growth: the next realloc moves. */
	size_t usable = tcm_core_usable_size(ptr);
	void *next_block = tcm_core_malloc(300 * KIB);
	assert_ptr_equal(next_block, ptr + usable);
	unsigned char *moved = tcm_core_realloc(ptr, usable + 1);
	assert_non_null(moved);
	assert_ptr_not_equal(moved, ptr);
	assert_true(has_fill(moved, size, 8));
	assert_int_equal(tcm_page_heap_check(), 0);
	tcm_core_free(next_block);
	tcm_core_free(moved);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 0);
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	assert_int_equal(heap.in_use_bytes, 0);
}

static void realloc_shrinks_large_block_in_place(void **state)
{
	(void)state;
	unsigned char *ptr = tcm_core_malloc(2 * MIB);
	assert_non_null(ptr);
	fill(ptr, 2 * MIB, 9);
	assert_ptr_equal(tcm_core_realloc(ptr, 300 * KIB), ptr);
	assert_int_equal(tcm_core_usable_size(ptr), 304 * KIB);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 304 * KIB);
	assert_true(has_fill(ptr, 300 * KIB, 9));
	assert_int_equal(tcm_page_heap_check(), 0);
	/* The tail is free memory again: the next large block is carved from it. */
	void *next_block = tcm_core_malloc(MIB);
	assert_ptr_equal(next_block, ptr + 304 * KIB);
	/* Shrinking to a small size still moves to a size class. */
	unsigned char *small = tcm_core_realloc(ptr, 100 * KIB);
	assert_ptr_not_equal(small, ptr);
	assert_int_not_equal(tcm_page_map_size_class(small), 0);
	assert_true(has_fill(small, 100 * KIB, 9));
	tcm_core_free(small);
	tcm_core_free(next_block);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* A block that realloc moves to grow past its pages, or past the largest size
 * class, gets pages to grow into: up to a quarter more. */
static void realloc_growth_that_moves_leaves_room(void **state)
{
	(void)state;
	unsigned char *small = tcm_core_malloc(200 * KIB);
	assert_non_null(small);
	fill(small, 200 * KIB, 10);
	/* 260 KiB is 33 pages; the room rounds it to 40. */
	unsigned char *large = tcm_core_realloc(small, 260 * KIB);
	assert_non_null(large);
	assert_int_equal(tcm_core_usable_size(large), 40 * TCM_PAGE_BYTES);
	assert_true(has_fill(large, 200 * KIB, 10));
	fill(large, 260 * KIB, 10);
	assert_ptr_equal(tcm_core_realloc(large, 40 * TCM_PAGE_BYTES), large);

	/* Fenced in by a block right after it, it moves to 51 pages rounded to 56. */
	void *fence = tcm_core_malloc(300 * KIB);
	assert_ptr_equal(fence, large + 40 * TCM_PAGE_BYTES);
	unsigned char *moved = tcm_core_realloc(large, 50 * TCM_PAGE_BYTES + 1);
	assert_non_null(moved);
	assert_ptr_not_equal(moved, large);
	assert_int_equal(tcm_core_usable_size(moved), 56 * TCM_PAGE_BYTES);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 56 * TCM_PAGE_BYTES + tcm_core_usable_size(fence));
	assert_true(has_fill(moved, 260 * KIB, 10));
	tcm_core_free(moved);
	tcm_core_free(fence);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- aligned_alloc ------------------------------------------------------------------------ */

static void aligned_alloc_alignments(void **state)
{
	(void)state;
	enum { MAX = 256 };
	void *ptrs[MAX];
	size_t n = 0;
	for (size_t alignment = 1; alignment <= MIB; alignment *= 2) {
		size_t sizes[] = { 1, 100, alignment, 3 * alignment + 5, 300 * KIB };
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			void *ptr = tcm_core_aligned_alloc(alignment, sizes[s]);
			assert_non_null(ptr);
			if ((uintptr_t)ptr % alignment != 0 || (uintptr_t)ptr % TCM_MIN_ALIGN_BYTES != 0)
				fail_msg("aligned_alloc(%zu, %zu) = %p", alignment, sizes[s], ptr);
			assert_true(tcm_core_usable_size(ptr) >= sizes[s]);
			memset(ptr, 0x42, sizes[s]);
			assert_true(n < MAX);
			ptrs[n++] = ptr;
		}
	}
	/* No two blocks overlap. */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++) {
			uintptr_t a = (uintptr_t)ptrs[i], b = (uintptr_t)ptrs[j];
			assert_true(a + tcm_core_usable_size(ptrs[i]) <= b || b + tcm_core_usable_size(ptrs[j]) <= a);
		}
	for (size_t i = 0; i < n; i++)
		tcm_core_free(ptrs[i]);
	assert_int_equal(tcm_alloc_large_allocated_bytes(), 0);
}

/* ---- foreign pointers ------------------------------------------------------------------------ */

struct foreign_args {
	void *ptr;
};

static void free_foreign(void *arg)
{
	tcm_core_free(((struct foreign_args *)arg)->ptr);
}

static void free_of_foreign_pointer_is_reported_and_ignored(void **state)
{
	(void)state;
	/* A live large block, so interior pointers of tcm memory exist too. */
	char *large = tcm_core_malloc(2 * MIB);
	assert_non_null(large);
	fill(large, 2 * MIB, 5);
	char *glibc_block = malloc(64);
	int on_stack[4];
	void *foreign[] = { on_stack, glibc_block, large + TCM_PAGE_BYTES, large + 16 };
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		assert_int_equal(tcm_core_usable_size(foreign[i]), 0);
		struct foreign_args args = { foreign[i] };
		char *text = capture_stderr(free_foreign, &args);
		assert_int_equal(count_lines(text), 1);
		assert_non_null(strstr(text, "was not allocated by tcm"));
		free(text);
	}
	/* Nothing was disturbed: the block is intact and allocation goes on. */
	assert_true(has_fill(large, 2 * MIB, 5));
	assert_int_equal(tcm_core_usable_size(large), 2 * MIB);
	void *more = tcm_core_malloc(2 * MIB);
	assert_non_null(more);
	assert_true((char *)more >= large + 2 * MIB || (char *)more + 2 * MIB <= large);
	tcm_core_free(more);
	tcm_core_free(large);
	void *small = tcm_core_malloc(64);
	assert_non_null(small);
	tcm_core_free(small);
	free(glibc_block);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void free_of_interior_pointer_after_reuse_is_ignored(void **state)
{
	(void)state;
	/* One span of 1 KiB objects (4 pages), all freed and given back to the heap. */
	enum { OBJECTS = 32 };
	void *objects[OBJECTS];
	for (int i = 0; i < OBJECTS; i++)
		objects[i] = tcm_core_malloc(1000);
	uintptr_t small_start = (uintptr_t)objects[0];
	for (int i = 0; i < OBJECTS; i++)
		tcm_core_free(objects[i]);
	tcm_core_release_free_memory(SIZE_MAX);
	assert_int_equal(core_stats().central_cached_bytes, 0);
	/* A large block over the same pages. */
	char *large = tcm_core_malloc(TCM_SMALL_MAX_BYTES + 1);
	assert_non_null(large);
	assert_true((uintptr_t)large <= small_start && small_start + 4 * TCM_PAGE_BYTES <= (uintptr_t)large + 33 * TCM_PAGE_BYTES);
	fill(large, TCM_SMALL_MAX_BYTES + 1, 4);
	char *interior = large + TCM_PAGE_BYTES;
	/* Not a block tcm handed out: usable size 0, and free reports and ignores it. */
	assert_int_equal(tcm_core_usable_size(interior), 0);
	struct foreign_args args = { interior };
	char *text = capture_stderr(free_foreign, &args);
	assert_int_equal(count_lines(text), 1);
	free(text);
	/* It must not have reached a free list: no 1 KiB malloc lands in the block. */
	for (int i = 0; i < OBJECTS; i++) {
		objects[i] = tcm_core_malloc(1000);
		if ((char *)objects[i] >= large && (char *)objects[i] < large + TCM_SMALL_MAX_BYTES + 1)
			fail_msg("malloc(1000) returned %p inside the live large block %p", objects[i], (void *)large);
	}
	assert_true(has_fill(large, TCM_SMALL_MAX_BYTES + 1, 4));
	for (int i = 0; i < OBJECTS; i++)
		tcm_core_free(objects[i]);
	tcm_core_free(large);
}

/* Frees ptr with stderr captured; returns the one line tcm reported (the caller frees it). */
static char *free_reporting_one_line(void *ptr)
{
	struct foreign_args args = { ptr };
	char *text = capture_stderr(free_foreign, &args);
	if (count_lines(text) != 1)
		fail_msg("free(%p) reported %zu lines, not 1: '%s'", ptr, count_lines(text), text);
	return text;
}

/* Mallocs count blocks of size_bytes into out[] and fails if any of them
 * overlaps [start, start + length) or is not 16-byte aligned. */
static void malloc_avoiding(void **out, size_t count, size_t size_bytes, const char *start, size_t length)
{
	for (size_t i = 0; i < count; i++) {
		char *block = tcm_core_malloc(size_bytes);
		assert_non_null(block);
		if ((uintptr_t)block % TCM_MIN_ALIGN_BYTES != 0)
			fail_msg("malloc(%zu) returned the misaligned %p", size_bytes, (void *)block);
		if (block < start + length && block + size_bytes > start)
			fail_msg("malloc(%zu) returned %p, inside the live block %p", size_bytes, (void *)block,
				 (void *)start);
		out[i] = block;
	}
}

/* Issue 11, defect 7: free(p + 16) made a later malloc return p + 16, free(p + 3)
 * a misaligned block. A pointer inside a small object is reported and ignored. */
static void free_inside_small_object_is_reported_and_ignored(void **state)
{
	(void)state;
	enum { ROUNDS = 64 };
	char *block = tcm_core_malloc(48);
	assert_non_null(block);
	fill(block, 48, 7);
	size_t offsets[] = { 16, 3, 47, 32 };
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		assert_int_equal(tcm_core_usable_size(block + offsets[i]), 0);
		char *text = free_reporting_one_line(block + offsets[i]);
		assert_non_null(strstr(text, "points inside a block"));
		free(text);
	}
	/* None of them reached a list: mallocs of the class never land in the block. */
	void *others[ROUNDS];
	malloc_avoiding(others, ROUNDS, 48, block, 48);
	assert_true(has_fill(block, 48, 7));
	assert_int_equal(tcm_core_usable_size(block), 48);
	for (int i = 0; i < ROUNDS; i++)
		tcm_core_free(others[i]);
	tcm_core_free(block);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* The bytes of a span that fit no whole object (first_object_offset, at its
 * start) and a pointer inside its last object are no object starts either. */
static void free_inside_span_slack_or_last_object_is_ignored(void **state)
{
	(void)state;
	tcm_core_free(tcm_core_malloc(1));   /* bootstrap: the class table */
	unsigned size_class = 0;   /* the first class with a slack */
	for (unsigned c = 1; c < TCM_SIZE_CLASS_COUNT && size_class == 0; c++)
		if (tcm_size_classes[c].first_object_offset >= 16)
			size_class = c;
	const struct tcm_size_class_info *info = &tcm_size_classes[size_class];
	assert_true(info->first_object_offset >= 16);
	char *block = tcm_core_malloc(info->object_bytes);
	assert_non_null(block);
	uintptr_t span_start = tcm_page_map_get((uintptr_t)block >> TCM_PAGE_SHIFT)->start;
	uintptr_t span_end = span_start + (size_t)info->span_pages * TCM_PAGE_BYTES;
	char *slack = (char *)span_start;
	char *inside_last = (char *)span_end - info->object_bytes + 16;
	char *text = free_reporting_one_line(slack);
	assert_non_null(strstr(text, "points inside a block"));
	free(text);
	text = free_reporting_one_line(inside_last);
	assert_non_null(strstr(text, "points inside a block"));
	free(text);
	/* The whole span's objects, and none starts in the slack or off the grid. */
	void **objects = calloc(info->objects_per_span, sizeof(void *));
	assert_non_null(objects);
	malloc_avoiding(objects, info->objects_per_span, info->object_bytes, slack, info->first_object_offset);
	for (uint32_t i = 0; i < info->objects_per_span; i++)
		if ((uintptr_t)objects[i] >= span_start && (uintptr_t)objects[i] < span_end &&
		    (span_end - (uintptr_t)objects[i]) % info->object_bytes != 0)
			fail_msg("object %p is off its span's grid", objects[i]);
	for (uint32_t i = 0; i < info->objects_per_span; i++)
		tcm_core_free(objects[i]);
	free(objects);
	tcm_core_free(block);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* Issue 11, defect 7: a double free made two mallocs return the same block. The
 * second free of a block still on the thread's list is reported and ignored. */
static void double_free_of_small_object_is_reported_and_ignored(void **state)
{
	(void)state;
	size_t sizes[] = { 16, 48, 1000, 4096 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *block = tcm_core_malloc(sizes[i]);
		void *neighbour = tcm_core_malloc(sizes[i]);
		assert_non_null(block);
		tcm_core_free(block);
		tcm_core_free(neighbour);   /* block is no longer the list's head */
		char *text = free_reporting_one_line(block);
		assert_non_null(strstr(text, "double free"));
		free(text);
		void *first = tcm_core_malloc(sizes[i]);
		void *second = tcm_core_malloc(sizes[i]);
		void *third = tcm_core_malloc(sizes[i]);
		if (first == second || second == third || first == third)
			fail_msg("malloc(%zu) returned one block twice: %p %p %p", sizes[i], first, second, third);
		tcm_core_free(first);
		tcm_core_free(second);
		tcm_core_free(third);
	}
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* The mark is a hint, proven by a walk: a block the program wrote its list's
 * address into, as data, frees normally and comes back. */
static void block_holding_the_mark_as_data_frees_normally(void **state)
{
	(void)state;
	void **block = tcm_core_malloc(64);
	assert_non_null(block);
	unsigned size_class = tcm_page_map_size_class(block);
	block[1] = &tcm_thread_cache_self.lists[size_class];
	struct foreign_args args = { block };
	char *text = capture_stderr(free_foreign, &args);
	assert_int_equal(count_lines(text), 0);
	free(text);
	assert_ptr_equal(tcm_core_malloc(64), block);
	assert_null(block[1]);   /* malloc cleared the mark word */
	tcm_core_free(block);
}

/* realloc of a pointer inside a block never moves data from the wrong place:
 * it is refused (NULL, ENOMEM) and reported. */
static void realloc_inside_small_object_is_refused(void **state)
{
	(void)state;
	char *block = tcm_core_malloc(48);
	assert_non_null(block);
	fill(block, 48, 3);
	errno = 0;
	void *result = tcm_core_realloc(block + 16, 100);
	assert_null(result);
	assert_int_equal(errno, ENOMEM);
	assert_true(has_fill(block, 48, 3));
	tcm_core_free(block);
}

/* ---- release ----------------------------------------------------------------------------------- */

static void release_free_memory_after_large_free(void **state)
{
	(void)state;
	void *block = tcm_core_malloc(8 * MIB);
	assert_non_null(block);
	memset(block, 1, 8 * MIB);
	tcm_core_free(block);
	struct tcm_stats before = core_stats();
	assert_true(before.page_heap_free_bytes >= 8 * MIB);

	size_t released = tcm_core_release_free_memory(SIZE_MAX);
	assert_true(released >= 8 * MIB);
	struct tcm_stats after = core_stats();
	assert_int_equal(after.page_heap_released_bytes, before.page_heap_released_bytes + released);
	assert_int_equal(after.page_heap_free_bytes, 0);
	assert_int_equal(after.released_total_bytes, before.released_total_bytes + released);
	/* One madvise per chunk of at most TCM_CORE_RELEASE_CHUNK_BYTES. */
	assert_true(after.release_calls - before.release_calls >= released / TCM_CORE_RELEASE_CHUNK_BYTES);
	/* Nothing left to release. */
	assert_int_equal(tcm_core_release_free_memory(SIZE_MAX), 0);
}

static void release_free_memory_stops_at_max(void **state)
{
	(void)state;
	void *block = tcm_core_malloc(8 * MIB);
	assert_non_null(block);
	memset(block, 1, 8 * MIB);
	tcm_core_free(block);
	size_t released = tcm_core_release_free_memory(3 * MIB);
	assert_true(released > 0);
	assert_true(released <= 3 * MIB);
	assert_int_equal(tcm_core_release_free_memory(0), 0);
	assert_true(core_stats().page_heap_free_bytes >= 5 * MIB);
}

static void release_returns_small_objects_too(void **state)
{
	(void)state;
	enum { N = 4000 };
	void **objects = calloc(N, sizeof(void *));
	assert_non_null(objects);
	for (int i = 0; i < N; i++) {
		objects[i] = tcm_core_malloc(1000);
		assert_non_null(objects[i]);
		memset(objects[i], 3, 1000);
	}
	for (int i = 0; i < N; i++)
		tcm_core_free(objects[i]);
	free(objects);
	/* The thread cache, then the central lists, then the spans: all goes back. */
	size_t released = tcm_core_release_free_memory(SIZE_MAX);
	assert_true(released >= (size_t)N * 1000 / 2);
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	assert_int_equal(heap.in_use_bytes, 0);
	assert_int_equal(heap.free_committed_bytes, 0);
	assert_int_equal(core_stats().thread_cached_bytes, 0);
	assert_int_equal(core_stats().central_cached_bytes, 0);
}

/* ---- ENOMEM ------------------------------------------------------------------------------------- */

static void enomem_from_fault_hook(void **state)
{
	(void)state;
	tcm_os_testing_fail_maps_after(0);
	errno = 0;
	assert_null(tcm_core_malloc(64 * MIB));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_malloc(TCM_SMALL_MAX_BYTES + 1));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_zalloc(64 * MIB));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_aligned_alloc(MIB, 4 * MIB));
	assert_int_equal(errno, ENOMEM);
	/* The heap is empty, so small requests cannot be served either. */
	errno = 0;
	assert_null(tcm_core_malloc(100));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_aligned_alloc(64, 100));
	assert_int_equal(errno, ENOMEM);
	void *ptr = tcm_core_malloc(16);
	assert_null(ptr);
	tcm_core_free(ptr);   /* free(NULL) after a failure is fine */
	assert_int_equal(tcm_core_release_free_memory(SIZE_MAX), 0);

	tcm_os_testing_fail_maps_after(SIZE_MAX);
	void *small = tcm_core_malloc(100);
	void *large = tcm_core_malloc(64 * MIB);
	assert_non_null(small);
	assert_non_null(large);
	memset(large, 9, 64 * MIB);
	tcm_core_free(large);
	tcm_core_free(small);
	assert_int_equal(tcm_page_heap_check(), 0);
}

static void enomem_keeps_serving_what_is_cached(void **state)
{
	(void)state;
	/* Fill the heap a little, then refuse every new mapping. */
	void *warm = tcm_core_malloc(4 * MIB);
	assert_non_null(warm);
	tcm_core_free(warm);
	void *small = tcm_core_malloc(200);
	assert_non_null(small);
	tcm_core_free(small);
	tcm_os_testing_fail_maps_after(0);
	/* Served from the thread cache and from free pages: no mapping needed. */
	void *again = tcm_core_malloc(200);
	assert_non_null(again);
	void *from_free = tcm_core_malloc(2 * MIB);
	assert_non_null(from_free);
	/* Past what the heap holds: ENOMEM, and nothing breaks. */
	errno = 0;
	assert_null(tcm_core_malloc(512 * MIB));
	assert_int_equal(errno, ENOMEM);
	errno = 0;
	assert_null(tcm_core_realloc(from_free, 512 * MIB));
	assert_int_equal(errno, ENOMEM);
	/* A failed realloc leaves the block as it was. */
	assert_int_equal(tcm_core_usable_size(from_free), 2 * MIB);
	tcm_os_testing_fail_maps_after(SIZE_MAX);
	tcm_core_free(from_free);
	tcm_core_free(again);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- threads: everything comes back -------------------------------------------------------------- */

#define HANDOFF_THREADS 4
#define HANDOFF_OBJECTS 3000

static void *handoff_blocks[HANDOFF_THREADS][HANDOFF_OBJECTS];

static void *handoff_worker(void *arg)
{
	intptr_t me = (intptr_t)arg;
	void *own[500];
	for (int i = 0; i < HANDOFF_OBJECTS; i++) {
		size_t size = (size_t)((i * 37 + me * 11) % 5000) + 1;
		if (i % 500 == 0)
			size = TCM_SMALL_MAX_BYTES + (size_t)i;
		handoff_blocks[me][i] = tcm_core_malloc(size);
		UNIT_THREAD_CHECK(handoff_blocks[me][i] != NULL);
		memset(handoff_blocks[me][i], (int)me, size < 64 ? size : 64);
	}
	/* Some churn of the thread's own, left in its cache at exit. */
	for (int i = 0; i < 500; i++)
		own[i] = tcm_core_malloc((size_t)i * 8);
	for (int i = 0; i < 500; i++)
		tcm_core_free(own[i]);
	return NULL;
}

static void all_memory_comes_back(void **state)
{
	(void)state;
	pthread_t threads[HANDOFF_THREADS];
	for (intptr_t i = 0; i < HANDOFF_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, handoff_worker, (void *)i), 0);
	for (int i = 0; i < HANDOFF_THREADS; i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	/* The main thread frees what the dead threads allocated. */
	for (int t = 0; t < HANDOFF_THREADS; t++)
		for (int i = 0; i < HANDOFF_OBJECTS; i++) {
			unsigned char *block = handoff_blocks[t][i];
			assert_int_equal(block[0], (unsigned char)t);
			tcm_core_free(block);
		}
	tcm_core_release_free_memory(SIZE_MAX);
	struct tcm_stats stats = core_stats();
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	assert_int_equal(heap.in_use_bytes, 0);
	assert_int_equal(stats.allocated_bytes, 0);
	assert_int_equal(stats.large_allocated_bytes, 0);
	assert_int_equal(stats.central_cached_bytes, 0);
	assert_int_equal(stats.thread_cached_bytes, 0);
	assert_int_equal(stats.page_heap_free_bytes, 0);
	assert_int_equal(tcm_page_heap_check(), 0);
}

/* ---- the size classes' counts ------------------------------------------------------------------ */

#define CLASS_THREADS 4
#define CLASS_THREAD_OBJECTS 700
#define CLASS_SMALL_BYTES 100
#define CLASS_LARGER_BYTES 1000

static void *class_objects[CLASS_THREADS][CLASS_THREAD_OBJECTS];

static void *class_worker(void *arg)
{
	intptr_t me = (intptr_t)arg;
	for (int i = 0; i < CLASS_THREAD_OBJECTS; i++) {
		class_objects[me][i] = tcm_core_malloc(CLASS_LARGER_BYTES);
		UNIT_THREAD_CHECK(class_objects[me][i] != NULL);
	}
	/* Churn left in its cache, which goes to the central stack at exit. */
	void *churn[300];
	for (int i = 0; i < 300; i++)
		churn[i] = tcm_core_malloc(CLASS_LARGER_BYTES);
	for (int i = 0; i < 300; i++)
		tcm_core_free(churn[i]);
	return NULL;
}

/* Every object of every class is somewhere, once: with no other thread running, the spans'
 * objects are exactly those in use, in thread caches, on the stacks and free in the spans. */
static void assert_every_object_accounted_for(void)
{
	struct tcm_size_class_stats classes[TCM_SIZE_CLASS_COUNT];
	size_t count = tcm_core_size_class_stats(classes, TCM_SIZE_CLASS_COUNT);
	for (size_t c = 0; c < count; c++) {
		const struct tcm_size_class_info *info = &tcm_size_classes[c + 1];
		assert_int_equal(classes[c].object_bytes, info->object_bytes);
		assert_int_equal(classes[c].span_bytes, info->span_pages * TCM_PAGE_BYTES);
		assert_int_equal(classes[c].spans * info->objects_per_span,
				 classes[c].in_use_objects + classes[c].thread_cache_objects +
				 classes[c].central_objects + classes[c].span_free_objects);
	}
}

static struct tcm_size_class_stats class_stats_of(size_t size_bytes)
{
	struct tcm_size_class_stats classes[TCM_SIZE_CLASS_COUNT];
	tcm_core_size_class_stats(classes, TCM_SIZE_CLASS_COUNT);
	return classes[tcm_size_class_of(size_bytes) - 1];
}

static void size_class_stats_account_for_every_object(void **state)
{
	(void)state;
	struct tcm_size_class_stats classes[4];
	memset(classes, 0xa5, sizeof classes);
	assert_int_equal(tcm_core_size_class_stats(NULL, 0), TCM_SIZE_CLASS_COUNT - 1);
	assert_int_equal(tcm_core_size_class_stats(classes, 3), TCM_SIZE_CLASS_COUNT - 1);
	assert_int_equal(classes[0].object_bytes, 16);
	assert_int_equal(classes[3].object_bytes, 0xa5a5a5a5a5a5a5a5ull);   /* beyond capacity: untouched */

	/* The calling thread's own objects, exactly. */
	void *small[1000];
	for (int i = 0; i < 1000; i++)
		assert_non_null(small[i] = tcm_core_malloc(CLASS_SMALL_BYTES));
	assert_int_equal(class_stats_of(CLASS_SMALL_BYTES).in_use_objects, 1000);
	assert_true(class_stats_of(CLASS_SMALL_BYTES).spans > 0);
	assert_every_object_accounted_for();

	/* Other threads' objects, and the caches they left at exit. */
	pthread_t threads[CLASS_THREADS];
	for (intptr_t i = 0; i < CLASS_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, class_worker, (void *)i), 0);
	for (int i = 0; i < CLASS_THREADS; i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	struct tcm_size_class_stats larger = class_stats_of(CLASS_LARGER_BYTES);
	assert_int_equal(larger.in_use_objects, CLASS_THREADS * CLASS_THREAD_OBJECTS);
	assert_int_equal(larger.thread_cache_objects, 0);   /* their caches went to central at exit */
	assert_every_object_accounted_for();

	/* Freed, by another thread than allocated most of them: none in use. */
	for (int i = 0; i < 1000; i++)
		tcm_core_free(small[i]);
	for (int t = 0; t < CLASS_THREADS; t++)
		for (int i = 0; i < CLASS_THREAD_OBJECTS; i++)
			tcm_core_free(class_objects[t][i]);
	assert_int_equal(class_stats_of(CLASS_SMALL_BYTES).in_use_objects, 0);
	assert_int_equal(class_stats_of(CLASS_LARGER_BYTES).in_use_objects, 0);
	assert_every_object_accounted_for();

	/* Released: the spans go back to the page heap, and the class holds none. */
	tcm_core_release_free_memory(SIZE_MAX);
	assert_int_equal(class_stats_of(CLASS_SMALL_BYTES).spans, 0);
	assert_int_equal(class_stats_of(CLASS_LARGER_BYTES).spans, 0);
	assert_every_object_accounted_for();
}

/* A thread whose list of a class was refilled (reported to the class's gauge) and then emptied
 * by mallocs alone (no slow path reports that) hands its cache back at exit: the gauge must drop
 * to what the list holds, nothing, though there was nothing to hand back for that class. */
#define DRAINED_BYTES 2048
#define DRAINED_OBJECTS_MAX 64

static void *drain_own_list_then_exit(void *arg)
{
	void **objects = arg;
	objects[0] = tcm_core_malloc(DRAINED_BYTES);   /* a refill: the rest of the batch is cached */
	unsigned size_class = tcm_size_class_of(DRAINED_BYTES);
	uint32_t cached = tcm_thread_cache_list_count(&tcm_thread_cache_self.lists[size_class]);
	UNIT_THREAD_CHECK(cached > 0 && cached + 2 <= DRAINED_OBJECTS_MAX);   /* one batch: 64 KiB at most */
	for (uint32_t i = 1; i <= cached; i++)
		objects[i] = tcm_core_malloc(DRAINED_BYTES);   /* fast path only */
	UNIT_THREAD_CHECK(tcm_thread_cache_list_count(&tcm_thread_cache_self.lists[size_class]) == 0);
	objects[cached + 1] = NULL;
	return NULL;
}

static void thread_exit_clears_a_drained_list_from_the_class_gauge(void **state)
{
	(void)state;
	static void *objects[DRAINED_OBJECTS_MAX];
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, drain_own_list_then_exit, objects), 0);
	pthread_join(thread, NULL);
	assert_int_equal(atomic_load(&unit_thread_failures), 0);
	assert_int_equal(class_stats_of(DRAINED_BYTES).thread_cache_objects, 0);
	assert_every_object_accounted_for();
	for (size_t i = 0; objects[i] != NULL; i++)
		tcm_core_free(objects[i]);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(small_large_boundary),
	cmocka_unit_test(usable_size_covers_request),
	cmocka_unit_test(malloc_zero_is_unique),
	cmocka_unit_test(huge_request_fails_with_enomem),
	cmocka_unit_test(huge_requests_of_every_kind_fail_with_enomem),
	cmocka_unit_test(zalloc_is_zero_after_dirty_free),
	cmocka_unit_test(realloc_preserves_contents),
	cmocka_unit_test(realloc_in_place_when_it_fits),
	cmocka_unit_test(realloc_grows_large_block_in_place),
	cmocka_unit_test(realloc_shrinks_large_block_in_place),
	cmocka_unit_test(realloc_growth_that_moves_leaves_room),
	cmocka_unit_test(aligned_alloc_alignments),
	cmocka_unit_test(free_of_foreign_pointer_is_reported_and_ignored),
	cmocka_unit_test(free_of_interior_pointer_after_reuse_is_ignored),
	cmocka_unit_test(free_inside_small_object_is_reported_and_ignored),
	cmocka_unit_test(free_inside_span_slack_or_last_object_is_ignored),
	cmocka_unit_test(double_free_of_small_object_is_reported_and_ignored),
	cmocka_unit_test(block_holding_the_mark_as_data_frees_normally),
	cmocka_unit_test(realloc_inside_small_object_is_refused),
	cmocka_unit_test(release_free_memory_after_large_free),
	cmocka_unit_test(release_free_memory_stops_at_max),
	cmocka_unit_test(release_returns_small_objects_too),
	cmocka_unit_test(enomem_from_fault_hook),
	cmocka_unit_test(enomem_keeps_serving_what_is_cached),
	cmocka_unit_test(all_memory_comes_back),
	cmocka_unit_test(size_class_stats_account_for_every_object),
	cmocka_unit_test(thread_exit_clears_a_drained_list_from_the_class_gauge),
};

UNIT_MAIN("alloc", tests)
