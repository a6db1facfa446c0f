/* shim/api.c - the tcm_* functions of tcm.h that are not aliases of the malloc
 * family (those live beside their targets in malloc.c): the version, release,
 * stats (core's counters plus the orchestrator's shutdown timeline) and
 * tcm_shutdown_begin. */
#include "shim.h"

#include "../core/core.h"
#include "../orchestrator/orchestrator.h"
#include "../orchestrator/stats_file.h"

TCM_EXPORT const char *tcm_version(void)
{
	return TCM_VERSION_TEXT;
}

TCM_EXPORT size_t tcm_release_free_memory(size_t max_bytes)
{
	return tcm_core_release_free_memory(max_bytes);
}

TCM_EXPORT void tcm_stats(struct tcm_stats *out)
{
	tcm_core_stats(out);
	tcm_orchestrator_shutdown_stats(&out->shutdown);
}

TCM_EXPORT size_t tcm_size_class_stats(struct tcm_size_class_stats *out, size_t capacity)
{
	return tcm_core_size_class_stats(out, capacity);
}

TCM_EXPORT void tcm_stats_print(int fd)
{
	struct tcm_stats stats;
	tcm_stats(&stats);
	tcm_stats_file_print_text(fd, &stats);
}

TCM_EXPORT void tcm_shutdown_begin(void)
{
	tcm_orchestrator_shutdown_begin();
}
