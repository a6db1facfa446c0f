/* orchestrator/stats_file.c - see stats_file.h. */
#define _GNU_SOURCE   /* strerrorname_np */
#include "stats_file.h"

#include "../conf/config.h"
#include "../core/core.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SIZE_CLASSES_MAX   64           /* tcm_size_class_stats reports 52 */
#define REPORT_TEXT_BYTES  (128 * 1024) /* every figure, every class and a full timeline: about 48 KiB */
#define PATH_BYTES         (4096 + 64)  /* a configured path (conf/: under 4096) plus what is added */

/* What a report is built in. */
struct report_space {
	struct tcm_size_class_stats size_classes[SIZE_CLASSES_MAX];
	struct tcm_timeline_sample  samples[TCM_TIMELINE_SAMPLES_MAX];
	char                        path[PATH_BYTES], temporary[PATH_BYTES];   /* a file's */
	char                        text[REPORT_TEXT_BYTES];
};

/* Two writers of one path in one process (the live file and the exit report, if they name the
 * same file) each get a temporary file of their own. */
static _Atomic uint64_t temporary_files;

/* Builds the report in space, which the caller mapped. */
static int build_in(struct report_space *space, enum tcm_render_format format, const struct tcm_stats *stats,
		    uint64_t deadline_ns, struct tcm_stats_report *out)
{
	size_t class_count = tcm_core_size_class_stats(space->size_classes, SIZE_CLASSES_MAX);
	const struct tcm_render_input input = {
		.stats = stats,
		.size_classes = space->size_classes,
		.size_class_count = class_count < SIZE_CLASSES_MAX ? class_count : SIZE_CLASSES_MAX,
		.version = TCM_VERSION_TEXT,   /* this library's: the report is about it */
		.pid = (uint64_t)tcm_os_process_id(),
		.wall_clock_ns = tcm_os_wall_clock_ns(),
		.samples = space->samples,
		.sample_count = deadline_ns != 0 ? tcm_timeline_samples(space->samples) : 0,
		.deadline_ns = deadline_ns,
	};
	size_t length = tcm_render(format, &input, space->text, sizeof space->text);
	if (length == 0)
		return EOVERFLOW;
	*out = (struct tcm_stats_report){ .text = space->text, .length = length, .space = space };
	return 0;
}

int tcm_stats_report_build(enum tcm_render_format format, const struct tcm_stats *stats, uint64_t deadline_ns,
			   struct tcm_stats_report *out)
{
	struct report_space *space = tcm_os_map_scratch(sizeof *space);
	if (space == NULL)
		return ENOMEM;
	int err = build_in(space, format, stats, deadline_ns, out);
	if (err != 0)
		tcm_os_unmap_scratch(space, sizeof *space);
	return err;
}

void tcm_stats_report_discard(struct tcm_stats_report *report)
{
	tcm_os_unmap_scratch(report->space, sizeof(struct report_space));
	*report = (struct tcm_stats_report){ .text = NULL };
}

void tcm_stats_file_print_text(int fd, const struct tcm_stats *stats)
{
	struct tcm_stats_report report;
	if (tcm_stats_report_build(TCM_RENDER_TEXT, stats, 0, &report) != 0)
		return;
	tcm_os_write(fd, report.text, report.length);
	tcm_stats_report_discard(&report);
}

/* The file's path (%p expanded) and a temporary one beside it, in space. */
static bool paths_of(const char *pattern, uint64_t pid, struct report_space *space)
{
	if (!tcm_config_stats_path_of(pattern, pid, space->path, sizeof space->path))
		return false;
	struct tcm_text text;
	tcm_text_init(&text, space->temporary, sizeof space->temporary);
	tcm_text_str(&text, space->path);
	tcm_text_str(&text, ".tmp.");
	tcm_text_u64(&text, pid);
	tcm_text_str(&text, ".");
	tcm_text_u64(&text, atomic_fetch_add_explicit(&temporary_files, 1, memory_order_relaxed));
	return text.length + 1 < sizeof space->temporary;
}

int tcm_stats_file_write(const char *pattern, const struct tcm_stats *stats, uint64_t deadline_ns)
{
	struct report_space *space = tcm_os_map_scratch(sizeof *space);
	if (space == NULL)
		return ENOMEM;
	struct tcm_stats_report report;
	int err = paths_of(pattern, (uint64_t)tcm_os_process_id(), space) ? 0 : EOVERFLOW;
	if (err == 0)
		err = build_in(space, tcm_render_format_of(space->path), stats, deadline_ns, &report);
	int fd;
	if (err == 0)
		err = tcm_os_open_for_writing(space->temporary, &fd);
	if (err == 0) {
		tcm_os_write(fd, report.text, report.length);
		tcm_os_close(fd);
		err = tcm_os_rename(space->temporary, space->path);
	}
	tcm_os_unmap_scratch(space, sizeof *space);
	return err;
}

void tcm_stats_file_report_error(const char *key, const char *path, int err)
{
	char line[PATH_BYTES + 128];
	struct tcm_text text;
	tcm_text_init(&text, line, sizeof line);
	tcm_text_str(&text, "tcm: ");
	tcm_text_str(&text, key);
	tcm_text_str(&text, ": cannot write ");
	tcm_text_str(&text, path);
	tcm_text_str(&text, ": ");
	/* strerrorname_np (glibc 2.32) returns a static string; strerror may translate, which can
	 * allocate. */
	const char *name = strerrorname_np(err);
	if (name != NULL) {
		tcm_text_str(&text, name);
	} else {
		tcm_text_str(&text, "errno ");
		tcm_text_u64(&text, (uint64_t)err);
	}
	tcm_text_str(&text, "\n");
	tcm_os_write(STDERR_FILENO, line, text.length);
}
