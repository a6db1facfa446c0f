/* core/resident.c - the resident-set policy (resident.h): plain arithmetic,
 * no state, no system call. */
#include "resident.h"

static uint64_t min_of(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_of(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t page_heap_bytes(const struct tcm_resident_state *state)
{
	uint64_t room = min_of(2 * state->largest_large_bytes, TCM_RESIDENT_ROOM_MAX_BYTES);
	uint64_t allowance = max_of(state->in_use_bytes / 4, room);
	if (state->page_heap_free_bytes <= allowance)
		return 0;
	uint64_t bytes = min_of(state->page_heap_free_bytes - allowance, state->fault_in_bytes);
	return bytes >= TCM_RESIDENT_PAGE_HEAP_MIN_PIECE_BYTES ? bytes : 0;
}

static uint64_t inside_span_bytes(const struct tcm_resident_state *state)
{
	if (!state->is_small_object_span || !state->is_normal)
		return 0;
	if (state->central_free_bytes < TCM_RESIDENT_INSIDE_MIN_FREE_BYTES ||
	    state->central_free_bytes < state->in_use_bytes / 4 ||
	    state->in_use_bytes < state->inside_quiet_until_bytes)
		return 0;
	return state->fault_in_bytes;
}

struct tcm_resident_plan tcm_resident_plan(const struct tcm_resident_state *state)
{
	return (struct tcm_resident_plan){
		.page_heap_bytes = page_heap_bytes(state),
		.inside_span_bytes = inside_span_bytes(state),
	};
}

uint64_t tcm_resident_quiet_until(uint64_t in_use_bytes)
{
	return in_use_bytes + in_use_bytes / 4;
}
