/* orchestrator/report.c - see report.h. A file report goes through
 * stats_file.h (%p, the format by suffix, a temporary file renamed over it). */
#define _GNU_SOURCE
#include "report.h"

#include "../core/core.h"
#include "clock.h"
#include "render.h"
#include "stats_file.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int format_timeline(char *buffer, size_t size, const struct tcm_shutdown_stats *shutdown)
{
	return snprintf(buffer, size,
		"tcm shutdown: trigger %s, T0 -> T1 %.1f ms, released %.1f MiB in %llu madvise calls, "
		"max lock hold %llu us, max lock wait %llu us since T0\n",
		tcm_render_trigger_name(shutdown->trigger),
		shutdown->t1_ns > shutdown->t0_ns ? (double)(shutdown->t1_ns - shutdown->t0_ns) / TCM_NS_PER_MS : 0.0,
		(double)shutdown->released_bytes / (1 << 20), (unsigned long long)shutdown->release_steps,
		(unsigned long long)(shutdown->lock_hold_ns_max / TCM_NS_PER_US),
		(unsigned long long)(shutdown->lock_wait_ns_max / TCM_NS_PER_US));
}

void tcm_report_at_exit(const struct tcm_config *config, const struct tcm_shutdown_stats *shutdown)
{
	char buffer[2048];
	if (config->stats.on_exit == TCM_CONFIG_STATS_TO_STDERR) {
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		stats.shutdown = *shutdown;
		tcm_stats_file_print_text(STDERR_FILENO, &stats);
		int length = format_timeline(buffer, sizeof(buffer), shutdown);
		tcm_os_write(STDERR_FILENO, buffer, (size_t)length < sizeof(buffer) ? (size_t)length : sizeof(buffer) - 1);
	} else if (config->stats.on_exit == TCM_CONFIG_STATS_TO_FILE) {
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		stats.shutdown = *shutdown;
		int err = tcm_stats_file_write(config->stats.on_exit_path, &stats,
					       (uint64_t)config->exit.deadline_ms * TCM_NS_PER_MS);
		if (err != 0) {
			int message_length = snprintf(buffer, sizeof(buffer), "tcm: stats.on_exit: cannot write %s: %s\n",
						      config->stats.on_exit_path, strerror(err));
			tcm_os_write(STDERR_FILENO, buffer, (size_t)message_length < sizeof(buffer) ? (size_t)message_length : sizeof(buffer) - 1);
		}
	}
}
