/* tests/fault/bad_arguments.c - requests no allocator can serve, under libtcm.so,
 * compared with glibc: impossible alignments (0, 3, 24, 2^63), count * size
 * overflow, and sizes or alignments of 2^47 (the whole user address space) up
 * to SIZE_MAX through malloc, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc and pvalloc.
 *
 * Each call runs in a forked child (a crash or a hang is reported as such and
 * the other cases still run), which then checks that a realloc'd block was kept
 * and that malloc still works. The program runs itself again without the
 * preload (argument "reference") and every case must give glibc's answer:
 * NULL and the same errno, or posix_memalign's same return value with *memptr
 * untouched. tcm's own rule on top (shim/malloc.c): posix_memalign leaves
 * errno alone. The C++ new forms are in rlimit_as_new.cpp ("huge"). */
#include "fault_process.h"

#include <malloc.h>

#define TB(bits) ((size_t)1 << (bits))

enum kind { MALLOC, CALLOC, REALLOC_SMALL, REALLOC_LARGE, REALLOCARRAY, POSIX_MEMALIGN, ALIGNED_ALLOC,
	    MEMALIGN, VALLOC, PVALLOC };

struct bad_case {
	const char *name;
	enum kind   kind;
	size_t      a, b;   /* size; count, size; alignment, size */
};

static const struct bad_case cases[] = {
	{ "malloc(SIZE_MAX)", MALLOC, SIZE_MAX, 0 },
	{ "malloc(SIZE_MAX-4095)", MALLOC, SIZE_MAX - 4095, 0 },
	{ "malloc(PTRDIFF_MAX)", MALLOC, PTRDIFF_MAX, 0 },
	{ "malloc(PTRDIFF_MAX+1)", MALLOC, (size_t)PTRDIFF_MAX + 1, 0 },
	{ "malloc(2^47)", MALLOC, TB(47), 0 },
	{ "malloc(2^48)", MALLOC, TB(48), 0 },
	{ "malloc(2^53)", MALLOC, TB(53), 0 },
	{ "malloc(2^56)", MALLOC, TB(56), 0 },
	{ "malloc(2^62)", MALLOC, TB(62), 0 },
	{ "calloc(SIZE_MAX,2)", CALLOC, SIZE_MAX, 2 },
	{ "calloc(2^32,2^32)", CALLOC, TB(32), TB(32) },
	{ "calloc(2^28,2^28)", CALLOC, TB(28), TB(28) },
	{ "calloc(1,2^56)", CALLOC, 1, TB(56) },
	{ "calloc(2^40,2^20)", CALLOC, TB(40), TB(20) },
	{ "realloc(100 B,2^56)", REALLOC_SMALL, TB(56), 0 },
	{ "realloc(100 B,SIZE_MAX)", REALLOC_SMALL, SIZE_MAX, 0 },
	{ "realloc(100 B,PTRDIFF_MAX)", REALLOC_SMALL, PTRDIFF_MAX, 0 },
	{ "realloc(100 B,2^47)", REALLOC_SMALL, TB(47), 0 },
	{ "realloc(1 MiB,2^56)", REALLOC_LARGE, TB(56), 0 },
	{ "realloc(1 MiB,SIZE_MAX)", REALLOC_LARGE, SIZE_MAX, 0 },
	{ "realloc(1 MiB,2^47)", REALLOC_LARGE, TB(47), 0 },
	{ "reallocarray(100 B,2^32,2^32)", REALLOCARRAY, TB(32), TB(32) },
	{ "reallocarray(100 B,2^28,2^28)", REALLOCARRAY, TB(28), TB(28) },
	{ "posix_memalign(0,16)", POSIX_MEMALIGN, 0, 16 },
	{ "posix_memalign(3,16)", POSIX_MEMALIGN, 3, 16 },
	{ "posix_memalign(4,16)", POSIX_MEMALIGN, 4, 16 },
	{ "posix_memalign(24,16)", POSIX_MEMALIGN, 24, 16 },
	{ "posix_memalign(2^63,16)", POSIX_MEMALIGN, TB(63), 16 },
	{ "posix_memalign(2^63+8,16)", POSIX_MEMALIGN, TB(63) + 8, 16 },
	{ "posix_memalign(2^56,1)", POSIX_MEMALIGN, TB(56), 1 },
	{ "posix_memalign(2^47,1)", POSIX_MEMALIGN, TB(47), 1 },
	{ "posix_memalign(64,2^56)", POSIX_MEMALIGN, 64, TB(56) },
	{ "posix_memalign(64,SIZE_MAX)", POSIX_MEMALIGN, 64, SIZE_MAX },
	{ "posix_memalign(1MiB,PTRDIFF_MAX)", POSIX_MEMALIGN, TB(20), PTRDIFF_MAX },
	{ "aligned_alloc(2^56,1)", ALIGNED_ALLOC, TB(56), 1 },
	{ "aligned_alloc(2^63,1)", ALIGNED_ALLOC, TB(63), 1 },
	{ "aligned_alloc(2^47,1)", ALIGNED_ALLOC, TB(47), 1 },
	{ "aligned_alloc(64,2^56)", ALIGNED_ALLOC, 64, TB(56) },
	{ "aligned_alloc(4096,SIZE_MAX)", ALIGNED_ALLOC, 4096, SIZE_MAX },
	{ "memalign(2^56,1)", MEMALIGN, TB(56), 1 },
	{ "memalign(2^63,1)", MEMALIGN, TB(63), 1 },
	{ "memalign(2^63+1,1)", MEMALIGN, TB(63) + 1, 1 },
	{ "memalign(SIZE_MAX,1)", MEMALIGN, SIZE_MAX, 1 },
	{ "memalign(64,2^56)", MEMALIGN, 64, TB(56) },
	{ "memalign(64,SIZE_MAX)", MEMALIGN, 64, SIZE_MAX },
	{ "valloc(2^56)", VALLOC, TB(56), 0 },
	{ "valloc(2^47)", VALLOC, TB(47), 0 },
	{ "valloc(PTRDIFF_MAX)", VALLOC, PTRDIFF_MAX, 0 },
	{ "valloc(SIZE_MAX)", VALLOC, SIZE_MAX, 0 },
	{ "pvalloc(2^56)", PVALLOC, TB(56), 0 },
	{ "pvalloc(SIZE_MAX)", PVALLOC, SIZE_MAX, 0 },
	{ "pvalloc(SIZE_MAX-4095)", PVALLOC, SIZE_MAX - 4095, 0 },
};
#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

static const char *errno_name(int err, char *buffer, size_t size)
{
	if (err == ENOMEM)
		return "ENOMEM";
	if (err == EINVAL)
		return "EINVAL";
	snprintf(buffer, size, "%d", err);
	return buffer;
}

#define ERRNO_SENTINEL 4242
#define MEMPTR_SENTINEL ((void *)0x5a5a5a50)

/* The child: one call, then "result|extra" into line. result is compared
 * with glibc; extra holds what only tcm promises. */
static void run_case(const void *arg, char *line, size_t line_bytes)
{
	const struct bad_case *c = arg;
	char name[16];
	size_t old_bytes = c->kind == REALLOC_LARGE ? FAULT_MIB : 100;
	unsigned char *old = NULL;
	if (c->kind == REALLOC_SMALL || c->kind == REALLOC_LARGE || c->kind == REALLOCARRAY) {
		old = malloc(old_bytes);
		for (size_t i = 0; i < old_bytes; i++)
			old[i] = (unsigned char)(i * 7 + 1);
	}
	void *ptr = NULL;
	int ret = -1;
	void *memptr = MEMPTR_SENTINEL;
	errno = ERRNO_SENTINEL;
	switch (c->kind) {
	case MALLOC:         ptr = malloc(c->a); break;
	case CALLOC:         ptr = calloc(c->a, c->b); break;
	case REALLOC_SMALL:
	case REALLOC_LARGE:  ptr = realloc(old, c->a); break;
	case REALLOCARRAY:   ptr = reallocarray(old, c->a, c->b); break;
	case POSIX_MEMALIGN: ret = posix_memalign(&memptr, c->a, c->b); break;
	case ALIGNED_ALLOC:  ptr = aligned_alloc(c->a, c->b); break;
	case MEMALIGN:       ptr = memalign(c->a, c->b); break;
	case VALLOC:         ptr = valloc(c->a); break;
	case PVALLOC:        ptr = pvalloc(c->a); break;
	}
	int err = errno;
	size_t used;
	if (c->kind == POSIX_MEMALIGN) {
		used = (size_t)snprintf(line, line_bytes, "ret=%s memptr=%s",
					ret == 0 ? "0" : errno_name(ret, name, sizeof(name)),
					memptr == MEMPTR_SENTINEL ? "kept" : "written");
	} else if (ptr != NULL) {
		used = (size_t)snprintf(line, line_bytes, "returned a block");
	} else {
		used = (size_t)snprintf(line, line_bytes, "NULL errno=%s", errno_name(err, name, sizeof(name)));
	}
	if (old != NULL && ptr == NULL) {
		size_t bad = old_bytes;
		for (size_t i = 0; i < old_bytes && bad == old_bytes; i++)
			if (old[i] != (unsigned char)(i * 7 + 1))
				bad = i;
		used += (size_t)snprintf(line + used, line_bytes - used, " old=%s",
					 bad == old_bytes ? "kept" : "changed");
		free(old);
	}
	void *small = malloc(100), *large = malloc(3 * FAULT_MIB);
	used += (size_t)snprintf(line + used, line_bytes - used, small && large ? ", malloc works" : ", malloc broken");
	free(small);
	free(large);
	if (c->kind == POSIX_MEMALIGN)
		snprintf(line + used, line_bytes - used, "|errno=%s", err == ERRNO_SENTINEL ? "kept" : "changed");
}

/* "reference": one line per case, name TAB result, as glibc answers. */
static int print_reference(void)
{
	for (size_t i = 0; i < CASE_COUNT; i++) {
		char result[320];
		fault_run_in_child(run_case, &cases[i], result, sizeof(result));
		printf("%s\t%s\n", cases[i].name, result);
	}
	return 0;
}

static const char *reference_result(const char *reference, const char *name, char *out, size_t out_bytes)
{
	size_t length = strlen(name);
	for (const char *line = reference; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t line_length = end != NULL ? (size_t)(end - line) : strlen(line);
		if (line_length > length && strncmp(line, name, length) == 0 && line[length] == '\t') {
			size_t n = line_length - length - 1 < out_bytes - 1 ? line_length - length - 1 : out_bytes - 1;
			memcpy(out, line + length + 1, n);
			out[n] = '\0';
			return out;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "reference") == 0)
		return print_reference();
	if (!fault_malloc_is_tcm())
		return 1;
	char *reference = fault_run_reference("reference");
	if (reference == NULL)
		return 1;
	int failures = 0;
	for (size_t i = 0; i < CASE_COUNT; i++) {
		char result[320], expected[320];
		bool survived = fault_run_in_child(run_case, &cases[i], result, sizeof(result));
		char *extra = strchr(result, '|');
		if (extra != NULL)
			*extra++ = '\0';
		if (reference_result(reference, cases[i].name, expected, sizeof(expected)) == NULL) {
			fault_say("FAIL %-34s the reference run has no line for it\n", cases[i].name);
			failures++;
			continue;
		}
		char *expected_extra = strchr(expected, '|');
		if (expected_extra != NULL)
			*expected_extra = '\0';
		bool same = survived && strcmp(result, expected) == 0;
		bool extra_ok = extra == NULL || strcmp(extra, "errno=kept") == 0;
		if (same && extra_ok) {
			fault_say("ok   %-34s %s\n", cases[i].name, result);
			continue;
		}
		failures++;
		fault_say("FAIL %-34s tcm: %s%s%s; glibc: %s\n", cases[i].name, result, extra_ok ? "" : ", ",
			  extra_ok ? "" : extra, expected);
	}
	free(reference);
	fault_say("%d of %zu cases differ from glibc or crash\n", failures, CASE_COUNT);
	return failures == 0 ? 0 : 1;
}
