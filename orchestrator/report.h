/* orchestrator/report.h - the exit report of stats.on_exit: the allocator's
 * statistics and the shutdown timeline, as text on stderr, or as JSON or the
 * Prometheus text format in a file (render.h).
 * Formats into stack buffers; allocates nothing (DESIGN invariant 7). */
#ifndef TCM_ORCHESTRATOR_REPORT_H
#define TCM_ORCHESTRATOR_REPORT_H

#include "../conf/config.h"
#include "../include/tcm.h"

/* Writes what config->stats.on_exit asks for (nothing for "off"). A file that
 * cannot be written gets one "tcm:" line on stderr. */
void tcm_report_at_exit(const struct tcm_config *config, const struct tcm_shutdown_stats *shutdown);

#endif
