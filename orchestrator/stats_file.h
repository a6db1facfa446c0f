/* orchestrator/stats_file.h - a statistics report built (render.h's formats, with the size
 * classes as they are now), printed to a descriptor, or written to a file: the exit report's
 * stats.on_exit path and the live file stats.path. %p in the path becomes the process id (so a
 * forked child, or several services, never overwrite each other's file); the suffix picks the
 * format; the report goes to a temporary file beside it, then is renamed over it, so a reader
 * polling the file sees the last report or the one before, never part of one.
 * Never: allocates from the heap or builds a report on the caller's stack (a report is built in
 * a mapping of its own: the exit path and malloc_info may run on a thread with a small stack), or
 * holds a tcm lock across its system calls (core/os.c's). */
#ifndef TCM_ORCHESTRATOR_STATS_FILE_H
#define TCM_ORCHESTRATOR_STATS_FILE_H

#include "../core/core.h"
#include "render.h"

struct tcm_stats_report {
	const char *text;     /* NUL-terminated */
	size_t      length;
	void       *space;    /* the mapping it lives in */
};

/* Builds the report of stats in format, with the shutdown's timeline (timeline.h; JSON only)
 * when deadline_ns is not 0: the exit report's, which tcmctl stats --plot draws with the
 * deadline marked. Returns 0, ENOMEM (no mapping to build it in) or EOVERFLOW (it does not
 * fit); on 0, *out holds it until tcm_stats_report_discard. */
int tcm_stats_report_build(enum tcm_render_format format, const struct tcm_stats *stats, uint64_t deadline_ns,
			   struct tcm_stats_report *out);
void tcm_stats_report_discard(struct tcm_stats_report *report);

/* Writes the report of stats to the file pattern names (%p expanded), in the format of its
 * suffix, with the timeline as tcm_stats_report_build. Returns 0 or the errno of the step that
 * failed (EOVERFLOW: the report or the path does not fit its buffer). */
int tcm_stats_file_write(const char *pattern, const struct tcm_stats *stats, uint64_t deadline_ns);

/* Writes stats as text to fd: what malloc_stats, tcm_stats_print and stats.on_exit = "stderr"
 * print. */
void tcm_stats_file_print_text(int fd, const struct tcm_stats *stats);

/* Writes "tcm: KEY: cannot write PATH: ENAME" (the errno's name, "errno N" for one glibc does
 * not name) to stderr in one write(2), so lines of processes sharing a stderr do not interleave:
 * key is the tcm.conf key that named the file, err tcm_stats_file_write's error. The line is
 * built on the stack, about 4 KiB (a path fits whole). */
void tcm_stats_file_report_error(const char *key, const char *path, int err);

#endif
