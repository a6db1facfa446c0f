/* orchestrator/report.c - see report.h. A file report goes through
 * stats_file.h (%p, the format by suffix, a temporary file renamed over it).
 * Lines are built with core/format.h: no printf-family function, no strerror. */
#include "report.h"

#include "../core/core.h"
#include "clock.h"
#include "render.h"
#include "stats_file.h"

#include <unistd.h>

/* The "tcm shutdown:" line, in one write(2). bench/exit_storm.sh and bench/busy_host.sh parse it
 * ("^tcm shutdown:", "max lock hold N us, max lock wait N us since T0"). */
static void write_timeline_line(const struct tcm_shutdown_stats *shutdown)
{
	char line[256];   /* the words, the trigger's name and five numbers of at most 20 digits */
	struct tcm_text text;
	tcm_text_init(&text, line, sizeof line);
	tcm_text_str(&text, "tcm shutdown: trigger ");
	tcm_text_str(&text, tcm_render_trigger_name(shutdown->trigger));
	tcm_text_str(&text, ", T0 -> T1 ");
	tcm_text_fixed1(&text, shutdown->t1_ns > shutdown->t0_ns ? shutdown->t1_ns - shutdown->t0_ns : 0,
			TCM_NS_PER_MS);
	tcm_text_str(&text, " ms, released ");
	tcm_text_fixed1(&text, shutdown->released_bytes, 1 << 20);
	tcm_text_str(&text, " MiB in ");
	tcm_text_u64(&text, shutdown->release_steps);
	tcm_text_str(&text, " madvise calls, max lock hold ");
	tcm_text_u64(&text, shutdown->lock_hold_ns_max / TCM_NS_PER_US);
	tcm_text_str(&text, " us, max lock wait ");
	tcm_text_u64(&text, shutdown->lock_wait_ns_max / TCM_NS_PER_US);
	tcm_text_str(&text, " us since T0\n");
	tcm_os_write(STDERR_FILENO, line, text.length);
}

void tcm_report_at_exit(const struct tcm_config *config, const struct tcm_shutdown_stats *shutdown)
{
	if (config->stats.on_exit == TCM_CONFIG_STATS_TO_STDERR) {
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		stats.shutdown = *shutdown;
		tcm_stats_file_print_text(STDERR_FILENO, &stats);
		write_timeline_line(shutdown);
	} else if (config->stats.on_exit == TCM_CONFIG_STATS_TO_FILE) {
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		stats.shutdown = *shutdown;
		const char *path = tcm_config_path(config, TCM_CONFIG_PATH_STATS_ON_EXIT);
		int err = tcm_stats_file_write(path, &stats, (uint64_t)config->exit.deadline_ms * TCM_NS_PER_MS);
		if (err != 0)
			tcm_stats_file_report_error("stats.on_exit", path, err);
	}
}
