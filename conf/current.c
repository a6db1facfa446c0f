/* conf/current.c - the process's one configuration (tcm_config_current): loaded once, from the
 * production sources, with errors written to stderr as "tcm: <message>" lines.
 *
 * Invariants: after the first call returns, the object never changes; at most
 *             TCM_CONFIG_STDERR_LINES error lines plus one "more errors" line are written;
 *             a call that finds the load under way in another thread waits for it (yielding:
 *             the one caller is the library constructor, so nobody waits in practice). Not
 *             pthread_once: glibc's wakes waiters with a futex system call after every
 *             initialisation, a system call in every process's start-up (issue 12).
 * Never: abort; report through stdio (a host's stderr buffering is its own); make a system call
 *        itself (the error lines go out through core/os.c's tcm_os_write). */
#define _GNU_SOURCE  /* secure_getenv */
#include "config.h"

#include "../core/core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/auxv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum load_state { NOT_LOADED, LOADING, LOADED };

static struct tcm_config  current;       /* written by the one LOADING thread */
static _Atomic int        current_state = NOT_LOADED;
static unsigned           stderr_lines;  /* written by the one LOADING thread */

/* secure_getenv returns NULL for every name when the process is setuid or setgid (the kernel's
 * AT_SECURE), so such programs ignore TCM_CONF and TCM_* and read only /etc/tcm.conf. */
static const char *process_getenv(const char *name)
{
	return secure_getenv(name);
}

/* One write(2) per line, so lines from several processes sharing a stderr do not interleave. */
static void write_stderr_line(void *context, const char *message)
{
	(void)context;
	char line[1100];
	size_t len;
	if (stderr_lines < TCM_CONFIG_STDERR_LINES) {
		len = (size_t)snprintf(line, sizeof line, "tcm: %s\n", message);
	} else if (stderr_lines == TCM_CONFIG_STDERR_LINES) {
		len = (size_t)snprintf(line, sizeof line, "tcm: more configuration errors not shown\n");
	} else {
		return;
	}
	stderr_lines++;
	if (len >= sizeof line)
		len = sizeof line - 1;
	tcm_os_write(STDERR_FILENO, line, len);  /* nowhere to report a failed report */
}

static void load_current(void)
{
	/* Setuid and setgid programs read no variable, so none is reported either. */
	bool is_secure = getauxval(AT_SECURE) != 0;
	const struct tcm_config_sources sources = {
		.getenv      = process_getenv,
		.etc_path    = TCM_CONFIG_ETC_PATH,
		.error       = write_stderr_line,
		.environment = is_secure ? NULL : environ,
	};
	tcm_config_load(&current, &sources);
}

const struct tcm_config *tcm_config_current(void)
{
	int state = atomic_load_explicit(&current_state, memory_order_acquire);
	if (state == LOADED)
		return &current;
	if (state == NOT_LOADED && atomic_compare_exchange_strong(&current_state, &state, LOADING)) {
		load_current();
		atomic_store_explicit(&current_state, LOADED, memory_order_release);
		return &current;
	}
	while (atomic_load_explicit(&current_state, memory_order_acquire) != LOADED)
		tcm_os_yield();
	return &current;
}
