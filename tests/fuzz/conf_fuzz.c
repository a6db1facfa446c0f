/* tests/fuzz/conf_fuzz.c - libFuzzer target for the tcm.conf loader (clang
 * -fsanitize=fuzzer,address). Each input is a config file's text, handed to tcm_config_load
 * through a memfd path, so the production file path (fopen, libconfig, validation) runs;
 * the same bytes are also the value of one TCM_* variable, chosen by the first byte.
 * Beyond crashes and ASan reports it traps when the loaded config breaks an invariant of
 * conf/config.h: a value outside its schema range, margin >= deadline, or a bad JSON path. */
#define _GNU_SOURCE  /* memfd_create */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "schema.h"

static char        env_value[4096];
static const char *env_name;

static const char *fuzz_getenv(const char *name)
{
	return env_name != NULL && strcmp(name, env_name) == 0 ? env_value : NULL;
}

static void fuzz_error(void *context, const char *message)
{
	(void)context;
	if (strlen(message) == 0)
		__builtin_trap();  /* every error says something (and ASan checks the read) */
}

static void check_invariants(const struct tcm_config *config)
{
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++) {
		const struct tcm_schema_row *row = &tcm_schema[i];
		if (row->type != TCM_SCHEMA_INT)
			continue;
		int64_t value;
		memcpy(&value, (const char *)config + row->offset, sizeof value);
		if (value < row->min || value > row->max || value % row->multiple_of != 0)
			__builtin_trap();
	}
	if (config->exit.margin_ms >= config->exit.deadline_ms)
		__builtin_trap();
	const char *on_exit_path = tcm_config_path(config, TCM_CONFIG_PATH_STATS_ON_EXIT);
	size_t path_len = strnlen(on_exit_path, TCM_CONFIG_PATH_MAX);
	if (path_len == TCM_CONFIG_PATH_MAX)
		__builtin_trap();
	if ((config->stats.on_exit == TCM_CONFIG_STATS_TO_FILE) != (path_len > 0))
		__builtin_trap();
	const char *live_path = tcm_config_path(config, TCM_CONFIG_PATH_STATS_LIVE);
	size_t live_len = strnlen(live_path, TCM_CONFIG_PATH_MAX);
	if (live_len == TCM_CONFIG_PATH_MAX || (live_len > 0 && live_path[0] != '/'))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("tcm-conf-fuzz", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();

	size_t choice = size > 0 ? data[0] % (TCM_CONFIG_KEY_COUNT + 2) : 0;
	env_name = choice < TCM_CONFIG_KEY_COUNT ? tcm_schema[choice].env
		 : choice == TCM_CONFIG_KEY_COUNT ? "TCM_CONF" : NULL;
	size_t env_len = size < sizeof env_value - 1 ? size : sizeof env_value - 1;
	memcpy(env_value, data, env_len);
	env_value[env_len] = '\0';
	if (choice == TCM_CONFIG_KEY_COUNT)
		snprintf(env_value, sizeof env_value, "%s", path);  /* TCM_CONF: the same file by lookup */

	struct tcm_config config;
	const struct tcm_config_sources sources = {
		.getenv   = fuzz_getenv,
		.file     = choice == TCM_CONFIG_KEY_COUNT ? NULL : path,
		.etc_path = "/nonexistent/tcm.conf",
		.error    = fuzz_error,
	};
	tcm_config_load(&config, &sources);
	check_invariants(&config);
	return 0;
}
