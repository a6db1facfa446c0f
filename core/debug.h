/* core/debug.h - assertions and the fatal-error exit of the allocator.
 *
 * TCM_DEBUG (a compile definition, 0-3) sets how much is checked:
 *   1: cheap asserts (TCM_ASSERT);
 *   2: lock-order checks and "no lock held" on every entry to core/os.c;
 *   3: expensive heap checks (whole free lists walked).
 * Never: tcm_fatal is only for heap corruption and broken internal invariants;
 * configuration, bad arguments and ENOMEM never reach it (DESIGN invariant 6). */
#ifndef TCM_CORE_DEBUG_H
#define TCM_CORE_DEBUG_H

#include <stdbool.h>

#ifndef TCM_DEBUG
#define TCM_DEBUG 0
#endif

static const bool tcm_debug = TCM_DEBUG > 0;

#define TCM_LIKELY(x)   __builtin_expect(!!(x), 1)
#define TCM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Writes "tcm: fatal: <message>" to stderr and aborts. Allocates nothing. */
_Noreturn void tcm_fatal(const char *message);
_Noreturn void tcm_fatal_assert(const char *file, int line, const char *condition);

#define TCM_ASSERT_LEVEL(level, condition)                                    \
	do {                                                                   \
		if (TCM_DEBUG >= (level) && !(condition))                      \
			tcm_fatal_assert(__FILE__, __LINE__, #condition);      \
	} while (0)
#define TCM_ASSERT(condition)           TCM_ASSERT_LEVEL(1, condition)
#define TCM_ASSERT_EXPENSIVE(condition) TCM_ASSERT_LEVEL(3, condition)

#endif
