/* core/state.c - see state.h. Invariant: the value never decreases. */
#include "state.h"

_Atomic int tcm_state_value = TCM_STATE_NORMAL;

bool tcm_state_advance(enum tcm_state to_state)
{
	int current = atomic_load_explicit(&tcm_state_value, memory_order_acquire);
	while (current < (int)to_state) {
		if (atomic_compare_exchange_weak_explicit(&tcm_state_value, &current, (int)to_state,
				memory_order_acq_rel, memory_order_acquire))
			return true;
	}
	return false;
}
