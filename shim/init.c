/* shim/init.c - the library constructor. Runs after core may already be in use
 * (the loader and other constructors can call malloc first: core bootstraps
 * itself lazily, DESIGN invariant 10); here go the steps that may allocate,
 * such as registering the fork handlers. */
#include "shim.h"

#include "../core/core.h"

__attribute__((constructor)) static void tcm_shim_init(void)
{
	tcm_core_install_fork_handlers();
}
