/* shim/init.c - the library constructor. Runs after core may already be in use
 * (the loader and other constructors can call malloc first: core bootstraps
 * itself lazily, DESIGN invariant 10); here go the steps that may allocate:
 * registering the fork handlers, then reading tcm.conf (libconfig mallocs from
 * core, which is ready, so there is no recursion), applying it to core, and
 * starting the orchestrator (SIGTERM hook, exit hook, worker when needed).
 * Never: abort over the configuration (conf/ reports and uses defaults,
 * invariant 6). */
#include "shim.h"

#include "../conf/config.h"
#include "../core/core.h"
#include "../orchestrator/orchestrator.h"

__attribute__((constructor)) static void tcm_shim_init(void)
{
	tcm_core_install_fork_handlers();
	const struct tcm_config *config = tcm_config_current();
	tcm_core_set_thread_cache_budget((size_t)config->cache.thread_max_kib << 10,
					 (size_t)config->cache.total_max_mib << 20);
	tcm_orchestrator_start(config);
}
