/* orchestrator/stats_file.h - a statistics report in a file: the exit report's stats.on_exit
 * path and the live file stats.path. %p in the path becomes the process id (so a forked child,
 * or several services, never overwrite each other's file); the suffix picks the format
 * (render.h); the report goes to a temporary file beside it, then is renamed over it, so a reader
 * polling the file sees the last report or the one before, never part of one.
 * Never: allocates (stack buffers, core/format.h), or holds a tcm lock across its system calls
 * (core/os.c's). */
#ifndef TCM_ORCHESTRATOR_STATS_FILE_H
#define TCM_ORCHESTRATOR_STATS_FILE_H

#include "../core/core.h"

/* Writes stats to the file pattern names (%p expanded), with the shutdown's timeline
 * (timeline.h; JSON only) when deadline_ns is not 0: the exit report's, which tcmctl stats
 * --plot draws with the deadline marked. Returns 0 or the errno of the step that failed
 * (EOVERFLOW: the report or the path does not fit its buffer). */
int tcm_stats_file_write(const char *pattern, const struct tcm_stats *stats, uint64_t deadline_ns);

/* Writes stats as text (render.h's, from the one table of figures) to fd: what malloc_stats,
 * tcm_stats_print and stats.on_exit = "stderr" print. */
void tcm_stats_file_print_text(int fd, const struct tcm_stats *stats);

#endif
