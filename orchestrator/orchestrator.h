/* orchestrator/orchestrator.h - what shim/ calls: start at load, the
 * tcm_shutdown_begin API, and the shutdown timeline for stats (the interposed
 * signal calls are in sigterm.h). The orchestrator owns shutdown and background
 * release; it reaches core only through core/core.h. */
#ifndef TCM_ORCHESTRATOR_ORCHESTRATOR_H
#define TCM_ORCHESTRATOR_ORCHESTRATOR_H

#include "../conf/config.h"
#include "../include/tcm.h"

/* From the library constructor, once: arms the SIGTERM hook, registers the
 * exit hook and the fork handler, and starts the worker now if it is needed
 * from the start (a release rate, or notifications to send). */
void tcm_orchestrator_start(const struct tcm_config *config);

/* tcm_shutdown_begin(): T0 now, DRAINING, the worker drains. */
void tcm_orchestrator_shutdown_begin(void);

void tcm_orchestrator_shutdown_stats(struct tcm_shutdown_stats *out);

#endif
