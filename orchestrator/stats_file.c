/* orchestrator/stats_file.c - see stats_file.h. */
#include "stats_file.h"

#include "../conf/config.h"
#include "../core/format.h"
#include "../core/os.h"
#include "render.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define REPORT_BYTES 32768          /* every figure and a full timeline, with room to spare */

/* Two writers of one path in one process (the live file and the exit report, if they name the
 * same file) each get a temporary file of their own. */
static _Atomic uint64_t temporary_files;
#define PATH_BYTES   (4096 + 64)    /* a configured path (conf/: under 4096) plus what is added */

void tcm_stats_file_print_text(int fd, const struct tcm_stats *stats)
{
	const struct tcm_render_input input = {
		.stats = stats,
		.version = TCM_VERSION_TEXT,
		.pid = (uint64_t)tcm_os_process_id(),
		.wall_clock_ns = tcm_os_wall_clock_ns(),
	};
	char report[REPORT_BYTES];
	size_t length = tcm_render(TCM_RENDER_TEXT, &input, report, sizeof report);
	tcm_os_write(fd, report, length);
}

int tcm_stats_file_write(const char *pattern, const struct tcm_stats *stats, uint64_t deadline_ns)
{
	uint64_t pid = (uint64_t)tcm_os_process_id();
	char path[PATH_BYTES], temporary[PATH_BYTES];
	if (!tcm_config_stats_path_of(pattern, pid, path, sizeof path))
		return EOVERFLOW;
	struct tcm_text text;
	tcm_text_init(&text, temporary, sizeof temporary);
	tcm_text_str(&text, path);
	tcm_text_str(&text, ".tmp.");
	tcm_text_u64(&text, pid);
	tcm_text_str(&text, ".");
	tcm_text_u64(&text, atomic_fetch_add_explicit(&temporary_files, 1, memory_order_relaxed));
	if (text.length + 1 >= sizeof temporary)
		return EOVERFLOW;
	struct tcm_timeline_sample samples[TCM_TIMELINE_SAMPLES_MAX];
	const struct tcm_render_input input = {
		.stats = stats,
		.version = TCM_VERSION_TEXT,   /* this library's: the report is about it */
		.pid = pid,
		.wall_clock_ns = tcm_os_wall_clock_ns(),
		.samples = samples,
		.sample_count = deadline_ns != 0 ? tcm_timeline_samples(samples) : 0,
		.deadline_ns = deadline_ns,
	};
	char report[REPORT_BYTES];
	size_t length = tcm_render(tcm_render_format_of(path), &input, report, sizeof report);
	if (length == 0)
		return EOVERFLOW;
	int fd;
	int err = tcm_os_open_for_writing(temporary, &fd);
	if (err != 0)
		return err;
	tcm_os_write(fd, report, length);
	tcm_os_close(fd);
	return tcm_os_rename(temporary, path);
}
