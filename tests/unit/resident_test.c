/* tests/unit/resident_test.c - the resident-set policy (core/resident.h) on plain numbers: what
 * a span about to be faulted in makes tcm give back first, from the page heap's free committed
 * spans past the allowance and from inside spans in use. */
#include "unit.h"

#include "resident.h"

#define MIB ((uint64_t)1 << 20)
#define KIB ((uint64_t)1 << 10)

/* A 2 MiB large block faulted in with 22 MiB in use and 20 MiB of free committed spans. */
static struct tcm_resident_state large_block(void)
{
	return (struct tcm_resident_state){
		.fault_in_bytes = 2 * MIB,
		.is_normal = true,
		.in_use_bytes = 22 * MIB,
		.page_heap_free_bytes = 20 * MIB,
		.largest_large_bytes = 2 * MIB,
	};
}

/* A 64 KiB small-object span with 40 MiB in use and 16 MiB of free objects in central. */
static struct tcm_resident_state small_span(void)
{
	return (struct tcm_resident_state){
		.fault_in_bytes = 64 * KIB,
		.is_small_object_span = true,
		.is_normal = true,
		.in_use_bytes = 40 * MIB,
		.page_heap_free_bytes = 0,
		.central_free_bytes = 16 * MIB,
	};
}

static void page_heap_gives_back_past_a_quarter_of_the_memory_in_use(void **state)
{
	(void)state;
	/* The allowance is 5.5 MiB (a quarter of 22, more than room for two 2 MiB blocks): the
	 * excess is 14.5 MiB, and the span's own 2 MiB are given back. */
	struct tcm_resident_state input = large_block();
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 2 * MIB);
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);   /* a large block */
	/* Within the allowance: nothing. */
	input.page_heap_free_bytes = 5 * MIB + 512 * KIB;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 0);
	/* An excess smaller than the span: the excess. */
	input.page_heap_free_bytes = 6 * MIB + 512 * KIB;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 1 * MIB);
	/* An excess below one piece: nothing (a release step per sliver costs more than it saves). */
	input.page_heap_free_bytes = 5 * MIB + 512 * KIB + TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES - 8 * KIB;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 0);
	input.page_heap_free_bytes = 5 * MIB + 512 * KIB + TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES);
}

static void page_heap_keeps_room_for_two_of_the_largest_blocks_up_to_16_mib(void **state)
{
	(void)state;
	/* A program that asked for 8 MiB blocks keeps 16 MiB of holes to reuse. */
	struct tcm_resident_state input = large_block();
	input.in_use_bytes = 20 * MIB;
	input.largest_large_bytes = 8 * MIB;
	input.page_heap_free_bytes = 16 * MIB;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 0);
	input.page_heap_free_bytes = 17 * MIB;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 1 * MIB);
	/* One that asked for a 1 GiB block keeps 16 MiB, not 2 GiB. */
	input.largest_large_bytes = (uint64_t)1 << 30;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 1 * MIB);
	/* A quarter of a large heap beats the room. */
	input.in_use_bytes = 400 * MIB;
	input.page_heap_free_bytes = 101 * MIB;
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 1 * MIB);
}

static void small_span_gives_back_inside_spans_while_free_objects_abound(void **state)
{
	(void)state;
	struct tcm_resident_state input = small_span();
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 64 * KIB);
	assert_int_equal(tcm_resident_plan(&input).page_heap_bytes, 0);
	/* Free objects below 8 MiB, or below a quarter of the memory in use: nothing. */
	input.central_free_bytes = TCM_RESIDENT_INSIDE_MIN_FREE_BYTES - 8 * KIB;
	input.in_use_bytes = 8 * MIB;
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);
	input = small_span();
	input.in_use_bytes = 64 * MIB + 8 * KIB;
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);
	/* From DRAINING on the release worker does it, off the malloc path. */
	input = small_span();
	input.is_normal = false;
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);
	/* A large block never walks inside spans, however many free objects. */
	input = small_span();
	input.is_small_object_span = false;
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);
	/* Both sources at once: each gives back the span's bytes at most. */
	input = small_span();
	input.page_heap_free_bytes = 30 * MIB;
	struct tcm_resident_plan plan = tcm_resident_plan(&input);
	assert_int_equal(plan.page_heap_bytes, 64 * KIB);
	assert_int_equal(plan.inside_span_bytes, 64 * KIB);
}

static void fruitless_walk_waits_for_a_quarter_more_memory_in_use(void **state)
{
	(void)state;
	struct tcm_resident_state input = small_span();
	input.inside_quiet_until_bytes = tcm_resident_quiet_until(40 * MIB);
	assert_int_equal(input.inside_quiet_until_bytes, 50 * MIB);
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);
	input.in_use_bytes = 50 * MIB - 8 * KIB;
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 0);
	input.in_use_bytes = 50 * MIB;
	input.central_free_bytes = 50 * MIB / 4;
	assert_int_equal(tcm_resident_plan(&input).inside_span_bytes, 64 * KIB);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(page_heap_gives_back_past_a_quarter_of_the_memory_in_use),
	cmocka_unit_test(page_heap_keeps_room_for_two_of_the_largest_blocks_up_to_16_mib),
	cmocka_unit_test(small_span_gives_back_inside_spans_while_free_objects_abound),
	cmocka_unit_test(fruitless_walk_waits_for_a_quarter_more_memory_in_use),
};

UNIT_MAIN("resident", tests)
