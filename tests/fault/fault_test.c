/* tests/fault/fault_test.c - fault injection into core (issue 11): the os.c
 * hooks of the testing build fail every n-th tcm_os_map call, or every call
 * once some bytes have been mapped, while each entry point of core.h runs
 * (malloc of every size class, large sizes up to 3 GiB, zalloc, aligned
 * alloc with alignments of 64 B to 1 MiB, realloc).
 *
 * Checks, for each hook:
 *   - each call returns a usable block (aligned, writable, zeroed for zalloc,
 *     contents kept by realloc) or NULL with errno ENOMEM; a failed realloc
 *     leaves the old block intact, writable and freeable;
 *   - nothing leaks: once everything is freed the stats are back at the
 *     baseline, and every byte tcm mapped is in the page heap or in metadata
 *     (a mapping dropped on a failure path shows up as unaccounted bytes);
 *   - the same failing pattern repeated 100 times keeps every mapped byte
 *     accounted for after each round and stops adding address space;
 *   - with the hook off again the allocator serves every size class, large
 *     and aligned blocks.
 * Plus two deterministic cases of the growth path (heap mapped, page-map
 * metadata refused), and sizes or alignments too large for the address space
 * (2^47 .. PTRDIFF_MAX), each in a child process so that a crash is reported.
 *
 * Each CTest entry runs one test in a process of its own (tests/unit/unit.h),
 * named test_fault_<hook>_<check>. The test program itself uses glibc's
 * malloc; only core's entry points reach tcm. */
#include "unit.h"

#include "core.h"
#include "metadata.h"
#include "os.h"
#include "page_heap.h"
#include "size_class.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>

#define KIB ((size_t)1024)
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

/* Metadata regions are mapped 4 MiB at a time (core/metadata.c); the check
 * of mapped bytes allows the unused rest of one region, with room to spare. */
#define METADATA_SLACK_BYTES (8 * MIB)
#define TOUCH_BYTES          (64 * KIB)   /* written at each end of a block */
#define MAX_BLOCKS           512
#define REPEAT_ROUNDS        100
#define REPEAT_SETTLE_ROUNDS 50
#define REPEAT_GROWTH_BYTES  (64 * MIB)

/* ---- hooks ----------------------------------------------------------------------------------- */

struct hook {
	unsigned every_nth;     /* 0: the after_bytes hook instead */
	size_t   after_bytes;
	bool     refuses_all;   /* the first map already fails, so every call must */
};

static void arm(const struct hook *hook)
{
	if (hook->every_nth != 0)
		tcm_os_testing_fail_every_nth_map(hook->every_nth);
	else
		tcm_os_testing_fail_maps_after(hook->after_bytes);
}

static void disarm(void)
{
	tcm_os_testing_fail_every_nth_map(0);
	tcm_os_testing_fail_maps_after(SIZE_MAX);
}

/* ---- blocks and their patterns ----------------------------------------------------------------- */

struct block {
	void    *ptr;
	size_t   size_bytes;
	unsigned seed;
};

struct held {
	struct block blocks[MAX_BLOCKS];
	size_t       count;
	unsigned     next_seed;
};

static unsigned char pattern_byte(unsigned seed, size_t offset)
{
	return (unsigned char)(seed * 7u + offset * 31u + (offset >> 9));
}

/* The ranges written and checked: all of a small block, both ends of a big one
 * (a 3 GiB block stays mostly untouched, so the tests stay fast). */
static void touched_ranges(size_t size_bytes, size_t ranges[2][2])
{
	if (size_bytes <= 2 * TOUCH_BYTES) {
		ranges[0][0] = 0, ranges[0][1] = size_bytes;
		ranges[1][0] = ranges[1][1] = size_bytes;
	} else {
		ranges[0][0] = 0, ranges[0][1] = TOUCH_BYTES;
		ranges[1][0] = size_bytes - TOUCH_BYTES, ranges[1][1] = size_bytes;
	}
}

static void fill_range(void *ptr, size_t from, size_t to, unsigned seed)
{
	unsigned char *bytes = ptr;
	for (size_t i = from; i < to; i++)
		bytes[i] = pattern_byte(seed, i);
}

/* Returns the first offset in [from, to) that does not hold the pattern, or to. */
static size_t pattern_mismatch(const void *ptr, size_t from, size_t to, unsigned seed)
{
	const unsigned char *bytes = ptr;
	for (size_t i = from; i < to; i++)
		if (bytes[i] != pattern_byte(seed, i))
			return i;
	return to;
}

static void fill_block(const struct block *block)
{
	size_t ranges[2][2];
	touched_ranges(block->size_bytes, ranges);
	for (int r = 0; r < 2; r++)
		fill_range(block->ptr, ranges[r][0], ranges[r][1], block->seed);
}

static void check_block(const struct block *block, const char *when)
{
	size_t ranges[2][2];
	touched_ranges(block->size_bytes, ranges);
	for (int r = 0; r < 2; r++) {
		size_t bad = pattern_mismatch(block->ptr, ranges[r][0], ranges[r][1], block->seed);
		if (bad != ranges[r][1])
			fail_msg("%s: block %p of %zu bytes lost its contents at offset %zu", when, block->ptr,
				 block->size_bytes, bad);
	}
}

/* realloc moved block to ptr with new_bytes: what was written of the old
 * block, up to the new size, came along. */
static void check_moved(const struct block *block, const void *ptr, size_t new_bytes)
{
	size_t ranges[2][2];
	touched_ranges(block->size_bytes, ranges);
	for (int r = 0; r < 2; r++) {
		size_t to = ranges[r][1] < new_bytes ? ranges[r][1] : new_bytes;
		if (ranges[r][0] >= to)
			continue;
		size_t bad = pattern_mismatch(ptr, ranges[r][0], to, block->seed);
		if (bad != to)
			fail_msg("realloc(%zu -> %zu) lost the contents at offset %zu", block->size_bytes, new_bytes,
				 bad);
	}
}

static void hold(struct held *held, void *ptr, size_t size_bytes)
{
	assert_true(held->count < MAX_BLOCKS);
	struct block *block = &held->blocks[held->count++];
	*block = (struct block){ .ptr = ptr, .size_bytes = size_bytes, .seed = ++held->next_seed };
	fill_block(block);
}

static void free_all(struct held *held)
{
	for (size_t i = 0; i < held->count; i++) {
		check_block(&held->blocks[i], "before free");
		tcm_core_free(held->blocks[i].ptr);
	}
	held->count = 0;
}

/* ---- the calls -------------------------------------------------------------------------------- */

enum call { CALL_MALLOC, CALL_ZALLOC, CALL_ALIGNED, CALL_REALLOC };

struct request {
	enum call call;
	size_t    size_bytes;
	size_t    alignment_bytes;   /* CALL_ALIGNED */
	size_t    old_bytes;         /* CALL_REALLOC: size of the block reallocated */
};

struct outcome {
	unsigned succeeded;
	unsigned failed;
};

static const char *call_name(enum call call)
{
	static const char *const names[] = { "malloc", "zalloc", "aligned_alloc", "realloc" };
	return names[call];
}

/* Every size class (each class's first span has to be mapped when the heap
 * is empty), large blocks up to 3 GiB, zeroed and aligned blocks, realloc
 * growth and a realloc that moves to a smaller block. */
static size_t build_requests(struct request *out, size_t max)
{
	size_t n = 0;
#define ADD(...) do { assert_true(n < max); out[n++] = (struct request){ __VA_ARGS__ }; } while (0)
	tcm_core_bootstrap();
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		ADD(.call = CALL_MALLOC, .size_bytes = tcm_size_classes[size_class].object_bytes);
	static const size_t large[] = { TCM_SMALL_MAX_BYTES + 1, MIB, 17 * MIB, 3 * GIB };
	for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++)
		ADD(.call = CALL_MALLOC, .size_bytes = large[i]);
	static const size_t zeroed[] = { 16, 1000, 200 * KIB, 300 * KIB, 5 * MIB };
	for (size_t i = 0; i < sizeof(zeroed) / sizeof(zeroed[0]); i++)
		ADD(.call = CALL_ZALLOC, .size_bytes = zeroed[i]);
	static const size_t alignments[] = { 64, 512, 4 * KIB, 8 * KIB, 64 * KIB, MIB };
	static const size_t aligned_sizes[] = { 24, 5000, 300 * KIB, 3 * MIB };
	for (size_t a = 0; a < sizeof(alignments) / sizeof(alignments[0]); a++)
		for (size_t s = 0; s < sizeof(aligned_sizes) / sizeof(aligned_sizes[0]); s++)
			ADD(.call = CALL_ALIGNED, .size_bytes = aligned_sizes[s], .alignment_bytes = alignments[a]);
	static const size_t reallocs[][2] = { { 100, 200 * KIB }, { 100, 3 * MIB }, { 300 * KIB, 20 * MIB },
					      { 4 * MIB, 3 * GIB }, { MIB, 64 * KIB }, { 3 * MIB, GIB } };
	for (size_t i = 0; i < sizeof(reallocs) / sizeof(reallocs[0]); i++)
		ADD(.call = CALL_REALLOC, .old_bytes = reallocs[i][0], .size_bytes = reallocs[i][1]);
#undef ADD
	return n;
}

/* A NULL result must come with ENOMEM; anything else must be a usable block. */
static bool accept_result(const struct request *request, void *ptr, int err, struct outcome *outcome)
{
	if (ptr == NULL) {
		if (err != ENOMEM)
			fail_msg("%s(%zu, alignment %zu) returned NULL with errno %d, not ENOMEM",
				 call_name(request->call), request->size_bytes, request->alignment_bytes, err);
		outcome->failed++;
		return false;
	}
	size_t alignment = request->alignment_bytes > TCM_MIN_ALIGN_BYTES ? request->alignment_bytes
									  : TCM_MIN_ALIGN_BYTES;
	if ((uintptr_t)ptr % alignment != 0)
		fail_msg("%s(%zu) = %p, not aligned to %zu", call_name(request->call), request->size_bytes, ptr,
			 alignment);
	if (tcm_core_usable_size(ptr) < request->size_bytes)
		fail_msg("%s(%zu) = %p with only %zu usable bytes", call_name(request->call), request->size_bytes,
			 ptr, tcm_core_usable_size(ptr));
	outcome->succeeded++;
	return true;
}

static void check_zeroed(const struct request *request, const void *ptr)
{
	size_t ranges[2][2];
	touched_ranges(request->size_bytes, ranges);
	const unsigned char *bytes = ptr;
	for (int r = 0; r < 2; r++)
		for (size_t i = ranges[r][0]; i < ranges[r][1]; i++)
			if (bytes[i] != 0)
				fail_msg("zalloc(%zu) = %p: byte %zu is %#x", request->size_bytes, ptr, i, bytes[i]);
}

/* realloc of a block made for the purpose (itself a malloc that may fail). */
static void run_realloc(const struct request *request, struct held *held, struct outcome *outcome)
{
	struct request first = { .call = CALL_MALLOC, .size_bytes = request->old_bytes };
	errno = 0;
	void *old = tcm_core_malloc(request->old_bytes);
	if (!accept_result(&first, old, errno, outcome))
		return;
	hold(held, old, request->old_bytes);
	struct block *block = &held->blocks[held->count - 1];
	size_t old_usable = tcm_core_usable_size(old);
	errno = 0;
	void *moved = tcm_core_realloc(old, request->size_bytes);
	if (!accept_result(request, moved, errno, outcome)) {
		/* The old block is as it was, and still the program's. */
		assert_int_equal(tcm_core_usable_size(old), old_usable);
		check_block(block, "after a failed realloc");
		return;
	}
	check_moved(block, moved, request->size_bytes);
	*block = (struct block){ .ptr = moved, .size_bytes = request->size_bytes, .seed = ++held->next_seed };
	fill_block(block);
}

static void run_request(const struct request *request, struct held *held, struct outcome *outcome)
{
	void *ptr = NULL;
	errno = 0;
	switch (request->call) {
	case CALL_MALLOC:
		ptr = tcm_core_malloc(request->size_bytes);
		break;
	case CALL_ZALLOC:
		ptr = tcm_core_zalloc(request->size_bytes);
		break;
	case CALL_ALIGNED:
		ptr = tcm_core_aligned_alloc(request->alignment_bytes, request->size_bytes);
		break;
	case CALL_REALLOC:
		run_realloc(request, held, outcome);
		return;
	}
	if (!accept_result(request, ptr, errno, outcome))
		return;
	if (request->call == CALL_ZALLOC)
		check_zeroed(request, ptr);
	hold(held, ptr, request->size_bytes);
}

static struct outcome run_requests(struct held *held)
{
	static struct request requests[256];
	size_t count = build_requests(requests, sizeof(requests) / sizeof(requests[0]));
	struct outcome outcome = { 0, 0 };
	for (size_t i = 0; i < count; i++)
		run_request(&requests[i], held, &outcome);
	return outcome;
}

/* ---- nothing leaks, everything works ------------------------------------------------------------ */

/* Every byte core mapped is in the page heap or in metadata. Metadata is
 * mapped in regions and a region's unused rest (less than the request that
 * did not fit) is left behind, so at most twice what metadata handed out,
 * plus the rest of the current region. A mapping that a failure path dropped
 * is counted nowhere and exceeds that. */
static void assert_mapping_accounted(const char *when)
{
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	uint64_t heap_bytes = heap.in_use_bytes + heap.free_committed_bytes + heap.free_released_bytes;
	uint64_t metadata_bytes = tcm_metadata_bytes();
	uint64_t mapped_bytes = tcm_os_mapped_bytes();
	if (mapped_bytes < heap_bytes + metadata_bytes)
		fail_msg("%s: %" PRIu64 " bytes mapped, fewer than the page heap (%" PRIu64 ") and metadata (%" PRIu64
			 ") hold", when, mapped_bytes, heap_bytes, metadata_bytes);
	uint64_t unaccounted = mapped_bytes - heap_bytes - metadata_bytes;
	if (unaccounted > metadata_bytes + METADATA_SLACK_BYTES)
		fail_msg("%s: %" PRIu64 " bytes mapped, page heap %" PRIu64 ", metadata %" PRIu64 ": %" PRIu64
			 " bytes (%" PRIu64 " MiB) belong to nothing, a mapping lost on a failure path", when,
			 mapped_bytes, heap_bytes, metadata_bytes, unaccounted, unaccounted / MIB);
}

/* The allocated bytes once caches are flushed and free memory is released:
 * what assert_all_back compares with. */
static uint64_t settled_allocated_bytes(void)
{
	tcm_core_release_free_memory(SIZE_MAX);
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	return stats.allocated_bytes;
}

/* Everything is freed: the stats are back at the baseline and the heap is sound. */
static void assert_all_back(uint64_t baseline_bytes, const char *when)
{
	tcm_core_release_free_memory(SIZE_MAX);
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	if (stats.allocated_bytes != baseline_bytes || stats.large_allocated_bytes != 0)
		fail_msg("%s: %" PRIu64 " bytes allocated (%" PRIu64 " in large spans) after freeing everything, "
			 "baseline %" PRIu64, when, stats.allocated_bytes, stats.large_allocated_bytes, baseline_bytes);
	assert_int_equal(tcm_page_heap_check(), 0);
	assert_mapping_accounted(when);
}

/* With no hook armed: three objects of every size class, large, zeroed and
 * aligned blocks, all written, checked and freed. */
static void assert_fully_usable(uint64_t baseline_bytes)
{
	disarm();
	static struct held held;
	held.count = 0;
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		for (int k = 0; k < 3; k++) {
			size_t size = tcm_size_classes[size_class].object_bytes;
			void *ptr = tcm_core_malloc(size);
			if (ptr == NULL)
				fail_msg("malloc(%zu) failed with the hook off", size);
			hold(&held, ptr, size);
		}
	static const size_t large[] = { TCM_SMALL_MAX_BYTES + 1, MIB + 5, 10 * MIB, 100 * MIB };
	for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++) {
		void *ptr = tcm_core_malloc(large[i]);
		if (ptr == NULL)
			fail_msg("malloc(%zu) failed with the hook off", large[i]);
		hold(&held, ptr, large[i]);
	}
	void *zeroed = tcm_core_zalloc(5 * MIB);
	assert_non_null(zeroed);
	check_zeroed(&(struct request){ .call = CALL_ZALLOC, .size_bytes = 5 * MIB }, zeroed);
	hold(&held, zeroed, 5 * MIB);
	for (size_t alignment = 64; alignment <= MIB; alignment *= 4) {
		static const size_t sizes[] = { 100, 300 * KIB };
		for (size_t s = 0; s < 2; s++) {
			void *ptr = tcm_core_aligned_alloc(alignment, sizes[s]);
			if (ptr == NULL || (uintptr_t)ptr % alignment != 0)
				fail_msg("aligned_alloc(%zu, %zu) = %p with the hook off", alignment, sizes[s], ptr);
			hold(&held, ptr, sizes[s]);
		}
	}
	/* No two blocks overlap: each still holds its own pattern. */
	for (size_t i = 0; i < held.count; i++)
		check_block(&held.blocks[i], "after allocating everything");
	free_all(&held);
	assert_all_back(baseline_bytes, "after the usability check");
}

/* ---- the tests, run once per hook ------------------------------------------------------------- */

/* The hook armed before the first allocation: every call, the first span of
 * each size class included, needs memory mapped under the hook. */
static void from_empty_heap(void **state)
{
	const struct hook *hook = *state;
	tcm_core_bootstrap();
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	assert_int_equal(heap.in_use_bytes + heap.free_committed_bytes + heap.free_released_bytes, 0);
	uint64_t baseline = 0;   /* nothing allocated yet */
	static struct held held;
	arm(hook);
	struct outcome outcome = run_requests(&held);
	disarm();
	print_message("%u calls succeeded, %u failed; %" PRIu64 " of %" PRIu64 " maps refused\n",
		      outcome.succeeded, outcome.failed, tcm_os_testing_maps_refused(), tcm_os_testing_map_calls());
	assert_true(tcm_os_testing_maps_refused() > 0);
	/* Under n >= 2 a call that retries after a refused map may get the next
	 * one; under the other hooks a 3 GiB call cannot succeed. */
	if (hook->refuses_all || hook->every_nth == 0)
		assert_true(outcome.failed > 0);
	if (hook->refuses_all)
		assert_int_equal(outcome.succeeded, 0);
	assert_mapping_accounted("after the calls, blocks still held");
	free_all(&held);
	assert_all_back(baseline, "after freeing what the calls returned");
	assert_fully_usable(baseline);
}

/* Blocks made with the hook off, then all reallocated under one arming of
 * the hook to sizes the heap cannot hold without mapping: a failure keeps the
 * old block, which stays writable, grows once the hook is off, and is freed. */
static void realloc_keeps_old_block(void **state)
{
	const struct hook *hook = *state;
	static const size_t old_sizes[] = { 100, 4000, 200 * KIB, TCM_SMALL_MAX_BYTES + 1, 3 * MIB };
	static const size_t new_sizes[] = { 64 * MIB, 3 * GIB, 600 * MIB };
	enum { OLD = sizeof(old_sizes) / sizeof(old_sizes[0]), NEW = sizeof(new_sizes) / sizeof(new_sizes[0]) };
	uint64_t baseline = settled_allocated_bytes();
	static struct held held;
	for (size_t n = 0; n < NEW; n++)
		for (size_t o = 0; o < OLD; o++) {
			void *old = tcm_core_malloc(old_sizes[o]);
			assert_non_null(old);
			hold(&held, old, old_sizes[o]);
		}
	bool failed[OLD * NEW] = { false };
	unsigned failures = 0;
	arm(hook);
	for (size_t i = 0; i < held.count; i++) {
		struct block *block = &held.blocks[i];
		size_t new_bytes = new_sizes[i / OLD];
		size_t usable = tcm_core_usable_size(block->ptr);
		errno = 0;
		void *moved = tcm_core_realloc(block->ptr, new_bytes);
		int err = errno;
		if (moved != NULL) {
			check_moved(block, moved, new_bytes);
			*block = (struct block){ .ptr = moved, .size_bytes = new_bytes, .seed = ++held.next_seed };
			fill_block(block);
			continue;
		}
		failed[i] = true;
		failures++;
		if (err != ENOMEM)
			fail_msg("realloc(%zu -> %zu) returned NULL with errno %d", block->size_bytes, new_bytes, err);
		assert_int_equal(tcm_core_usable_size(block->ptr), usable);
		check_block(block, "after a failed realloc");
		/* Still the program's: all of it written again. */
		block->size_bytes = usable;
		block->seed = ++held.next_seed;
		fill_range(block->ptr, 0, usable, block->seed);
	}
	disarm();
	print_message("%u of %d reallocs failed\n", failures, OLD * NEW);
	/* Under n >= 2 a realloc whose two attempts (room to grow, then the
	 * exact size) each map once gets the second map: it may not fail. */
	if (hook->refuses_all || hook->every_nth == 0)
		assert_true(failures > 0);
	if (hook->refuses_all)
		assert_int_equal(failures, OLD * NEW);
	assert_mapping_accounted("after the reallocs, blocks still held");
	/* With the hook off, each block a failed realloc kept grows as asked. */
	for (size_t i = 0; i < held.count; i++) {
		if (!failed[i])
			continue;
		struct block *block = &held.blocks[i];
		size_t new_bytes = new_sizes[i / OLD];
		void *grown = tcm_core_realloc(block->ptr, new_bytes);
		if (grown == NULL)
			fail_msg("realloc(%zu -> %zu) failed with the hook off", block->size_bytes, new_bytes);
		size_t bad = pattern_mismatch(grown, 0, block->size_bytes, block->seed);
		if (bad != block->size_bytes)
			fail_msg("realloc(%zu -> %zu) after a failed one lost the contents at %zu", block->size_bytes,
				 new_bytes, bad);
		*block = (struct block){ .ptr = grown, .size_bytes = new_bytes, .seed = ++held.next_seed };
		fill_block(block);
	}
	free_all(&held);
	assert_all_back(baseline, "after freeing the reallocated blocks");
	assert_fully_usable(baseline);
}

/* The same calls under the same freshly armed hook, REPEAT_ROUNDS times, all
 * freed each time (and free memory released every tenth round): every mapped
 * byte stays accounted for after each round, and once the heap holds what the
 * successful calls need (a release can cost one more growth, as the spans are
 * carved differently), the address space stops growing; a failure path that
 * keeps a mapping grows it every round. Under the after-bytes hooks and n = 1
 * the 3 GiB calls fail in every round; under n >= 2 a round fails only while
 * it still maps n times or more. */
static void repeated_failures_keep_address_space(void **state)
{
	const struct hook *hook = *state;
	uint64_t baseline = settled_allocated_bytes();
	static struct held held;
	uint64_t settled_bytes = 0;
	unsigned failed = 0;
	for (int round = 1; round <= REPEAT_ROUNDS; round++) {
		arm(hook);
		struct outcome outcome = run_requests(&held);
		disarm();
		failed += outcome.failed;
		if (hook->refuses_all || hook->every_nth == 0)
			assert_true(outcome.failed > 0);   /* the 3 GiB calls never get their map */
		free_all(&held);
		assert_mapping_accounted("after a round of failing calls");
		if (round % 10 == 0)
			tcm_core_release_free_memory(SIZE_MAX);
		if (round == REPEAT_SETTLE_ROUNDS)
			settled_bytes = tcm_os_mapped_bytes();
	}
	uint64_t final_bytes = tcm_os_mapped_bytes();
	print_message("%u calls failed in %d rounds; mapped %" PRIu64 " MiB after round %d, %" PRIu64
		      " MiB after round %d\n", failed, REPEAT_ROUNDS, settled_bytes / MIB, REPEAT_SETTLE_ROUNDS,
		      final_bytes / MIB, REPEAT_ROUNDS);
	if (final_bytes - settled_bytes > REPEAT_GROWTH_BYTES)
		fail_msg("the address space grew by %" PRIu64 " MiB over rounds %d..%d of the same failing calls",
			 (final_bytes - settled_bytes) / MIB, REPEAT_SETTLE_ROUNDS, REPEAT_ROUNDS);
	assert_all_back(baseline, "after the repeated rounds");
	assert_fully_usable(baseline);
}

/* ---- the growth path, deterministically ------------------------------------------------------- */

/* After a warm-up the page map has its first leaf and the metadata region
 * too little room for a second one. A 3 GiB block spans at least two 2 GiB
 * page-map leaves, so its growth maps the heap memory and then needs a
 * metadata region for a new leaf: the hook refuses that second map. The
 * heap memory mapped first must not be lost (page_heap.c grow()). */
static void grow_with_metadata_refused(const struct hook *hook, int attempts)
{
	void *warm = tcm_core_malloc(100);
	assert_non_null(warm);
	tcm_core_free(warm);
	uint64_t baseline = settled_allocated_bytes();
	assert_mapping_accounted("after the warm-up");
	uint64_t start_bytes = tcm_os_mapped_bytes();
	for (int attempt = 0; attempt < attempts; attempt++) {
		arm(hook);
		errno = 0;
		void *big = tcm_core_malloc(3 * GIB);
		int err = errno;
		disarm();
		if (big == NULL) {
			assert_int_equal(err, ENOMEM);
		} else {
			memset(big, 1, 4096);
			tcm_core_free(big);
		}
		assert_mapping_accounted(big == NULL ? "after a failed 3 GiB malloc" : "after a 3 GiB malloc");
	}
	print_message("mapped %" PRIu64 " MiB before, %" PRIu64 " MiB after %d attempts; %" PRIu64
		      " maps refused\n", start_bytes / MIB, tcm_os_mapped_bytes() / MIB, attempts,
		      tcm_os_testing_maps_refused());
	assert_true(tcm_os_testing_maps_refused() > 0);
	assert_all_back(baseline, "after the 3 GiB attempts");
	assert_fully_usable(baseline);
}

static void grow_keeps_no_mapping_when_leaf_map_fails_every_2nd(void **state)
{
	(void)state;
	grow_with_metadata_refused(&(struct hook){ .every_nth = 2 }, 20);
}

static void grow_keeps_no_mapping_when_leaf_map_fails_after_bytes(void **state)
{
	(void)state;
	/* The 3 GiB of heap fit under the limit, the next 4 MiB region does not. */
	grow_with_metadata_refused(&(struct hook){ .after_bytes = 3 * GIB + MIB }, 1);
}

/* ---- sizes beyond the address space ------------------------------------------------------------ */

/* Runs one call in a child process with default signal actions; returns
 * "ok" or a description of what went wrong. */
static const char *huge_call(int which, size_t size_bytes, char *why, size_t why_bytes)
{
	void *keep = which == 3 ? tcm_core_malloc(100) : NULL;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE };
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], SIG_DFL);
		alarm(20);
		errno = 0;
		void *ptr = which == 0 ? tcm_core_malloc(size_bytes)
			  : which == 1 ? tcm_core_zalloc(size_bytes)
			  : which == 2 ? tcm_core_aligned_alloc(size_bytes, 1)
				       : tcm_core_realloc(keep, size_bytes);
		if (ptr != NULL)
			_exit(10);
		if (errno != ENOMEM)
			_exit(11);
		if (which == 3 && tcm_core_usable_size(keep) < 100)
			_exit(12);
		void *after = tcm_core_malloc(3 * MIB);
		_exit(after == NULL ? 13 : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	tcm_core_free(keep);
	if (WIFSIGNALED(status)) {
		snprintf(why, why_bytes, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
		return why;
	}
	switch (WEXITSTATUS(status)) {
	case 0: return "ok";
	case 10: return "returned a block";
	case 11: return "returned NULL without ENOMEM";
	case 12: return "failed and lost the old block";
	case 13: return "failed, and malloc(3 MiB) failed afterwards";
	default: return "exited oddly";
	}
}

/* Sizes and alignments from 2^47 up to PTRDIFF_MAX: NULL with
 * ENOMEM, the old block kept by realloc, malloc fine afterwards. Each call
 * runs in a child, so one crash does not hide the others. */
static void huge_sizes_fail_with_enomem(void **state)
{
	(void)state;
	static const char *const names[] = { "malloc", "zalloc", "aligned_alloc(size, 1)", "realloc(100 B ->)" };
	unsigned bad = 0;
	for (int which = 0; which < 4; which++)
		for (unsigned bits = 47; bits <= 64; bits++) {
			/* 2^47 and up: more than the 47-bit user address space. */
			size_t size = bits < 64 ? (size_t)1 << bits : (size_t)PTRDIFF_MAX;
			if (which == 2 && bits == 64)
				continue;   /* alignments are powers of two */
			char why[96];
			const char *result = huge_call(which, size, why, sizeof(why));
			if (strcmp(result, "ok") != 0) {
				print_error("%s(%#zx): %s\n", names[which], size, result);
				bad++;
			}
		}
	if (bad != 0)
		fail_msg("%u huge requests did not fail cleanly with ENOMEM", bad);
}

/* ---- the table ------------------------------------------------------------------------------------ */

static struct hook every_1st = { .every_nth = 1, .refuses_all = true };
static struct hook every_2nd = { .every_nth = 2 };
static struct hook every_3rd = { .every_nth = 3 };
static struct hook every_7th = { .every_nth = 7 };
static struct hook after_0 = { .after_bytes = 0, .refuses_all = true };
static struct hook after_1_mib = { .after_bytes = MIB, .refuses_all = true };        /* the metadata region */
static struct hook after_6_mib = { .after_bytes = 6 * MIB };                         /* the first heap growth */
static struct hook after_24_mib = { .after_bytes = 24 * MIB };                       /* 17 MiB blocks */
static struct hook after_200_mib = { .after_bytes = 200 * MIB };                     /* the GiB blocks */

#define HOOK_TESTS(name)                                                                          \
	{ #name "_from_empty_heap", from_empty_heap, NULL, NULL, &name },                         \
	{ #name "_realloc_keeps_old_block", realloc_keeps_old_block, NULL, NULL, &name },         \
	{ #name "_repeated_failures_keep_address_space", repeated_failures_keep_address_space,    \
	  NULL, NULL, &name }

static const struct CMUnitTest tests[] = {
	HOOK_TESTS(every_1st),
	HOOK_TESTS(every_2nd),
	HOOK_TESTS(every_3rd),
	HOOK_TESTS(every_7th),
	HOOK_TESTS(after_0),
	HOOK_TESTS(after_1_mib),
	HOOK_TESTS(after_6_mib),
	HOOK_TESTS(after_24_mib),
	HOOK_TESTS(after_200_mib),
	cmocka_unit_test(grow_keeps_no_mapping_when_leaf_map_fails_every_2nd),
	cmocka_unit_test(grow_keeps_no_mapping_when_leaf_map_fails_after_bytes),
	cmocka_unit_test(huge_sizes_fail_with_enomem),
};

UNIT_MAIN("fault", tests)
