/* shim/shim.h - what the files of shim/ share: the export attribute and the
 * glibc argument rules they have in common. Private to shim/. */
#ifndef TCM_SHIM_SHIM_H
#define TCM_SHIM_SHIM_H

#include <stdbool.h>
#include <stddef.h>

/* Everything is hidden by default (-fvisibility=hidden); the exported ABI is
 * exactly the functions marked with this, and libtcm.map closes the list. */
#define TCM_EXPORT __attribute__((visibility("default")))

static inline bool tcm_is_power_of_two(size_t value)
{
	return value != 0 && (value & (value - 1)) == 0;
}

/* memalign's rule: an alignment that is not a power of two is rounded up to
 * the next one; 0 when that overflows. */
static inline size_t tcm_round_up_alignment(size_t alignment_bytes)
{
	if (tcm_is_power_of_two(alignment_bytes))
		return alignment_bytes;
	size_t power = 1;
	while (power != 0 && power < alignment_bytes)
		power <<= 1;
	return power;
}

#endif
