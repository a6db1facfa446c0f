/* orchestrator/report.c - see report.h. The JSON keys follow the stats naming
 * of STYLE.md: <layer>.<object>.<quantity>_<unit>, flattened with dots. The
 * report is written with core/os.c's calls (tcm_os_open_for_writing,
 * tcm_os_write, tcm_os_close). */
#define _GNU_SOURCE
#include "report.h"

#include "../core/core.h"
#include "../core/os.h"
#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *trigger_name(uint32_t trigger)
{
	switch (trigger) {
	case TCM_SHUTDOWN_SIGTERM: return "sigterm";
	case TCM_SHUTDOWN_API:     return "api";
	case TCM_SHUTDOWN_EXIT:    return "exit";
	default:                   return "none";
	}
}

static int format_timeline(char *buffer, size_t size, const struct tcm_shutdown_stats *shutdown)
{
	return snprintf(buffer, size,
		"tcm shutdown: trigger %s, T0 -> T1 %.1f ms, released %.1f MiB in %llu madvise calls, "
		"max lock hold %llu us, max lock wait %llu us since T0\n",
		trigger_name(shutdown->trigger),
		shutdown->t1_ns > shutdown->t0_ns ? (double)(shutdown->t1_ns - shutdown->t0_ns) / TCM_NS_PER_MS : 0.0,
		(double)shutdown->released_bytes / (1 << 20), (unsigned long long)shutdown->release_steps,
		(unsigned long long)(shutdown->lock_hold_ns_max / TCM_NS_PER_US),
		(unsigned long long)(shutdown->lock_wait_ns_max / TCM_NS_PER_US));
}

static int format_json(char *buffer, size_t size, const struct tcm_stats *stats,
		       const struct tcm_shutdown_stats *shutdown)
{
	return snprintf(buffer, size,
		"{\n"
		"  \"heap.allocated_bytes\": %llu,\n"
		"  \"heap.large_allocated_bytes\": %llu,\n"
		"  \"thread_cache.cached_bytes\": %llu,\n"
		"  \"central.cached_bytes\": %llu,\n"
		"  \"page_heap.free_bytes\": %llu,\n"
		"  \"page_heap.released_bytes\": %llu,\n"
		"  \"metadata.bytes\": %llu,\n"
		"  \"os.mapped_bytes\": %llu,\n"
		"  \"release.total_bytes\": %llu,\n"
		"  \"release.calls\": %llu,\n"
		"  \"lock.page_heap.hold_ns_max\": %llu,\n"
		"  \"lock.page_heap.wait_ns_max\": %llu,\n"
		"  \"lock.central.hold_ns_max\": %llu,\n"
		"  \"lock.central.wait_ns_max\": %llu,\n"
		"  \"lock.page_heap.hold_ns_max_since_t0\": %llu,\n"
		"  \"lock.page_heap.wait_ns_max_since_t0\": %llu,\n"
		"  \"lock.central.hold_ns_max_since_t0\": %llu,\n"
		"  \"lock.central.wait_ns_max_since_t0\": %llu,\n"
		"  \"shutdown.trigger\": \"%s\",\n"
		"  \"shutdown.t0_ns\": %llu,\n"
		"  \"shutdown.t1_ns\": %llu,\n"
		"  \"shutdown.released_bytes\": %llu,\n"
		"  \"shutdown.release_steps\": %llu,\n"
		"  \"shutdown.lock_hold_ns_max\": %llu,\n"
		"  \"shutdown.lock_wait_ns_max\": %llu\n"
		"}\n",
		(unsigned long long)stats->allocated_bytes, (unsigned long long)stats->large_allocated_bytes,
		(unsigned long long)stats->thread_cached_bytes, (unsigned long long)stats->central_cached_bytes,
		(unsigned long long)stats->page_heap_free_bytes, (unsigned long long)stats->page_heap_released_bytes,
		(unsigned long long)stats->metadata_bytes, (unsigned long long)stats->mapped_bytes,
		(unsigned long long)stats->released_total_bytes, (unsigned long long)stats->release_calls,
		(unsigned long long)stats->page_heap_lock.hold_ns_max, (unsigned long long)stats->page_heap_lock.wait_ns_max,
		(unsigned long long)stats->central_lock.hold_ns_max, (unsigned long long)stats->central_lock.wait_ns_max,
		(unsigned long long)stats->page_heap_lock.hold_ns_max_since_t0,
		(unsigned long long)stats->page_heap_lock.wait_ns_max_since_t0,
		(unsigned long long)stats->central_lock.hold_ns_max_since_t0,
		(unsigned long long)stats->central_lock.wait_ns_max_since_t0,
		trigger_name(shutdown->trigger), (unsigned long long)shutdown->t0_ns, (unsigned long long)shutdown->t1_ns,
		(unsigned long long)shutdown->released_bytes, (unsigned long long)shutdown->release_steps,
		(unsigned long long)shutdown->lock_hold_ns_max, (unsigned long long)shutdown->lock_wait_ns_max);
}

void tcm_report_at_exit(const struct tcm_config *config, const struct tcm_shutdown_stats *shutdown)
{
	char buffer[2048];
	if (config->stats.on_exit == TCM_CONFIG_STATS_TO_STDERR) {
		tcm_core_stats_print(STDERR_FILENO);
		int length = format_timeline(buffer, sizeof(buffer), shutdown);
		tcm_os_write(STDERR_FILENO, buffer, (size_t)length < sizeof(buffer) ? (size_t)length : sizeof(buffer) - 1);
	} else if (config->stats.on_exit == TCM_CONFIG_STATS_TO_JSON) {
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		int length = format_json(buffer, sizeof(buffer), &stats, shutdown);
		int fd;
		int err = tcm_os_open_for_writing(config->stats.json_path, &fd);
		if (err != 0) {
			int message_length = snprintf(buffer, sizeof(buffer), "tcm: stats.on_exit: cannot write %s: %s\n",
						      config->stats.json_path, strerror(err));
			tcm_os_write(STDERR_FILENO, buffer, (size_t)message_length < sizeof(buffer) ? (size_t)message_length : sizeof(buffer) - 1);
			return;
		}
		tcm_os_write(fd, buffer, (size_t)length < sizeof(buffer) ? (size_t)length : sizeof(buffer) - 1);
		tcm_os_close(fd);
	}
}
