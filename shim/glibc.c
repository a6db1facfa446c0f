/* shim/glibc.c - glibc's malloc introspection and tuning calls, answered from
 * tcm's own counters: mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt,
 * malloc_trim. Every one glibc exports is answered here: one left to glibc
 * would describe glibc's arena, not tcm's heap. malloc_info's XML is drawn from
 * the one table of figures, as the JSON and Prometheus reports are
 * (orchestrator/render.h).
 *
 * mallopt accepts every parameter glibc documents and returns 1 without
 * effect (tcm's tuning is tcm.conf); an unknown parameter returns 0, as glibc
 * does. mallinfo2 maps tcm's layers onto glibc's fields (see below). */
#include "shim.h"

#include "../core/core.h"
#include "../orchestrator/render.h"
#include "../orchestrator/stats_file.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

TCM_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	uint64_t free_bytes = stats.page_heap_free_bytes + stats.central_cached_bytes + stats.thread_cached_bytes;
	return (struct mallinfo2){
		.arena = stats.mapped_bytes - stats.large_allocated_bytes,  /* address space for small objects */
		.hblks = 0,
		.hblkhd = stats.large_allocated_bytes,       /* blocks in spans of their own */
		.uordblks = stats.allocated_bytes,           /* in use by the program */
		.fordblks = free_bytes,                      /* free but resident */
		.keepcost = stats.page_heap_free_bytes,      /* what malloc_trim can release */
	};
}

static int saturated_int(size_t value)
{
	return value > INT_MAX ? INT_MAX : (int)value;
}

/* The pre-2.33 form with int fields (deprecated by glibc, still called):
 * the same figures, each capped at INT_MAX rather than wrapped. */
TCM_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 wide = mallinfo2();
	return (struct mallinfo){
		.arena = saturated_int(wide.arena),
		.hblkhd = saturated_int(wide.hblkhd),
		.uordblks = saturated_int(wide.uordblks),
		.fordblks = saturated_int(wide.fordblks),
		.keepcost = saturated_int(wide.keepcost),
	};
}

TCM_EXPORT void malloc_stats(void)
{
	struct tcm_stats stats;
	tcm_stats(&stats);
	tcm_stats_file_print_text(STDERR_FILENO, &stats);
}

TCM_EXPORT int malloc_info(int options, FILE *stream)
{
	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	struct tcm_stats stats;
	tcm_stats(&stats);
	struct tcm_stats_report report;
	int err = tcm_stats_report_build(TCM_RENDER_XML, &stats, 0, &report);
	if (err != 0) {
		errno = err;
		return -1;
	}
	int result = fputs(report.text, stream) == EOF ? -1 : 0;
	tcm_stats_report_discard(&report);
	return result;
}

TCM_EXPORT int mallopt(int parameter, int value)
{
	(void)value;
	switch (parameter) {
	case M_MXFAST: case M_TRIM_THRESHOLD: case M_TOP_PAD: case M_MMAP_THRESHOLD:
	case M_MMAP_MAX: case M_CHECK_ACTION: case M_PERTURB: case M_ARENA_TEST: case M_ARENA_MAX:
		return 1;
	default:
		return 0;
	}
}

/* glibc returns 1 when memory was released, 0 otherwise; pad is ignored. */
TCM_EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	return tcm_core_release_free_memory(SIZE_MAX) > 0 ? 1 : 0;
}
