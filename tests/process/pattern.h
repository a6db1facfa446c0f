/* tests/process/pattern.h - a byte pattern derived from a seed, written into a
 * block and checked later: the process tests' way to see that tcm handed out
 * memory nobody else wrote. */
#ifndef TCM_TESTS_PROCESS_PATTERN_H
#define TCM_TESTS_PROCESS_PATTERN_H

#include <stddef.h>

static inline void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 131u + (i >> 8));
}

/* Returns the first mismatching offset, or n if all bytes match. */
static inline size_t check_fill(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 131u + (i >> 8)))
			return i;
	return n;
}

#endif
