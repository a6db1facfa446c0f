/* conf/schema.c - one row per tcm.conf key (see schema.h). To add a key: a field in struct
 * tcm_config, an enum tcm_config_key entry, a row here, and the README table (a test compares
 * it with `tcmctl keys`).
 *
 * Ranges: exit.deadline_ms 1..600000 (systemd's stop timeout is minutes, not hours);
 *         release.chunk_kib a multiple of the 8 KiB allocator page; cache budgets from one
 *         batch of small objects (64 KiB) to 1 GiB per thread and 1 TiB in total. */
#define _POSIX_C_SOURCE 200809L  /* strnlen */
#include "schema.h"

#include <stddef.h>
#include <string.h>

/* CHOICE fields are enums written through an int (tcm_schema_defaults, tcm_validate_store). */
_Static_assert(sizeof(enum tcm_config_notify_ready) == sizeof(int), "enum is not int-sized");
_Static_assert(sizeof(enum tcm_config_stats_to) == sizeof(int), "enum is not int-sized");

_Static_assert(sizeof ((struct tcm_config *)0)->path_text - 1 <= UINT16_MAX, "a path slot's offset is a uint16_t");

static const char *const notify_ready_choices[] = { "off", "init", NULL };
static const char *const stats_on_exit_choices[] = { "off", "stderr", NULL };

#define INT_ROW(id, g, k, G, K, lo, hi, mult, def, u, d)                                \
	[id] = { .key_id = id, .group = #g, .key = #k, .name = #g "." #k,                \
		 .env = "TCM_" #G "_" #K, .type = TCM_SCHEMA_INT, .min = lo, .max = hi,  \
		 .multiple_of = mult, .default_value = def, .unit = u, .doc = d,         \
		 .offset = offsetof(struct tcm_config, g.k) }
#define BOOL_ROW(id, g, k, G, K, def, d)                                                \
	[id] = { .key_id = id, .group = #g, .key = #k, .name = #g "." #k,                \
		 .env = "TCM_" #G "_" #K, .type = TCM_SCHEMA_BOOL, .default_value = def, \
		 .doc = d, .offset = offsetof(struct tcm_config, g.k) }
#define CHOICE_ROW(id, g, k, G, K, type_, words, def, d)                                \
	[id] = { .key_id = id, .group = #g, .key = #k, .name = #g "." #k,                \
		 .env = "TCM_" #G "_" #K, .type = type_, .choices = words,               \
		 .default_value = def, .doc = d,                                         \
		 .offset = offsetof(struct tcm_config, g.k) }

const struct tcm_schema_row tcm_schema[TCM_CONFIG_KEY_COUNT] = {
	INT_ROW(TCM_CONFIG_EXIT_DEADLINE_MS, exit, deadline_ms, EXIT, DEADLINE_MS,
		1, 600000, 1, 1000, "milliseconds",
		"Budget for the whole graceful exit, from SIGTERM (or tcm_shutdown_begin) to the "
		"process's end; set systemd's TimeoutStopSec to at least this."),
	INT_ROW(TCM_CONFIG_EXIT_MARGIN_MS, exit, margin_ms, EXIT, MARGIN_MS,
		0, 599999, 1, 50, "milliseconds",
		"Memory release stops this long before the deadline; must be below exit.deadline_ms "
		"(when left unset it is at most half the deadline)."),
	BOOL_ROW(TCM_CONFIG_EXIT_RELEASE_ON_SHUTDOWN, exit, release_on_shutdown, EXIT,
		 RELEASE_ON_SHUTDOWN, 1,
		 "Return free memory to the kernel while the service drains after SIGTERM."),
	INT_ROW(TCM_CONFIG_RELEASE_RATE_MIB_S, release, rate_mib_s, RELEASE, RATE_MIB_S,
		0, 1048576, 1, 0, "MiB per second",
		"Background release of free memory while the service runs; 0 turns it off."),
	INT_ROW(TCM_CONFIG_RELEASE_CHUNK_KIB, release, chunk_kib, RELEASE, CHUNK_KIB,
		8, 1048576, 8, 2048, "KiB",
		"Most bytes one release step gives back, in one system call where the kernel batches; "
		"the deadline is checked between steps. "
		"A multiple of 8 (the allocator page)."),
	INT_ROW(TCM_CONFIG_RELEASE_WORKER_DUTY_PERCENT, release, worker_duty_percent, RELEASE,
		WORKER_DUTY_PERCENT, 1, 100, 1, 50, "percent",
		"Most of its time the release worker spends working: it runs at the service's own "
		"priority, in slices of about 1 ms, then sleeps, so it never takes a CPU for long."),
	INT_ROW(TCM_CONFIG_CACHE_THREAD_MAX_KIB, cache, thread_max_kib, CACHE, THREAD_MAX_KIB,
		64, 1048576, 1, 512, "KiB",
		"Most free memory one thread's cache keeps."),
	INT_ROW(TCM_CONFIG_CACHE_TOTAL_MAX_MIB, cache, total_max_mib, CACHE, TOTAL_MAX_MIB,
		1, 1048576, 1, 64, "MiB",
		"Most free memory all thread caches keep together; each thread gets a share."),
	CHOICE_ROW(TCM_CONFIG_NOTIFY_READY, notify, ready, NOTIFY, READY, TCM_SCHEMA_CHOICE,
		   notify_ready_choices, TCM_CONFIG_NOTIFY_READY_OFF,
		   "\"init\": tcm sends READY=1 to systemd (Type=notify) once it has started; "
		   "\"off\": the service sends it itself."),
	BOOL_ROW(TCM_CONFIG_NOTIFY_STOPPING, notify, stopping, NOTIFY, STOPPING, 1,
		 "Send STOPPING=1 and EXTEND_TIMEOUT_USEC to systemd when shutdown begins."),
	BOOL_ROW(TCM_CONFIG_NOTIFY_STATUS, notify, status, NOTIFY, STATUS, 1,
		 "Send STATUS= lines with release progress while draining."),
	CHOICE_ROW(TCM_CONFIG_STATS_ON_EXIT, stats, on_exit, STATS, ON_EXIT,
		   TCM_SCHEMA_STATS_OUTPUT, stats_on_exit_choices, TCM_CONFIG_STATS_TO_OFF,
		   "Statistics and the shutdown timeline at exit: \"off\", \"stderr\" (text), or an "
		   "absolute path ending in .json (written as JSON) or .prom (Prometheus text format, "
		   "for node_exporter's textfile collector)."),
	INT_ROW(TCM_CONFIG_STATS_INTERVAL_MS, stats, interval_ms, STATS, INTERVAL_MS,
		0, 3600000, 1, 0, "milliseconds",
		"How often the release worker rewrites the live statistics file stats.path; 0: never."),
	[TCM_CONFIG_STATS_PATH] = { .key_id = TCM_CONFIG_STATS_PATH, .group = "stats", .key = "path",
		.name = "stats.path", .env = "TCM_STATS_PATH", .type = TCM_SCHEMA_PATH,
		.doc = "The live statistics file, rewritten every stats.interval_ms (a new file renamed over "
		       "the old, so a reader never sees half of one): an absolute path, %p in it becomes the "
		       "process id; .json is JSON, .prom the Prometheus text format, anything else text.",
		.path = TCM_CONFIG_PATH_STATS_LIVE },
};

const struct tcm_schema_row *tcm_schema_find(const char *group, const char *key)
{
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++)
		if (strcmp(tcm_schema[i].group, group) == 0 && strcmp(tcm_schema[i].key, key) == 0)
			return &tcm_schema[i];
	return NULL;
}

bool tcm_schema_has_group(const char *group)
{
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++)
		if (strcmp(tcm_schema[i].group, group) == 0)
			return true;
	return false;
}

void tcm_schema_defaults(struct tcm_config *out)
{
	/* Field by field, not a memset of the whole: of the paths' 12 KiB a fresh configuration
	 * writes the one shared empty string (struct tcm_config). */
	out->path_text[0] = '\0';
	for (size_t path = 0; path < TCM_CONFIG_PATH_COUNT; path++)
		out->path_offset[path] = 0;
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++) {
		const struct tcm_schema_row *row = &tcm_schema[i];
		char *field = (char *)out + row->offset;
		switch (row->type) {
		case TCM_SCHEMA_INT:
			*(int64_t *)field = row->default_value;
			break;
		case TCM_SCHEMA_BOOL:
			*(bool *)field = row->default_value != 0;
			break;
		case TCM_SCHEMA_CHOICE:
		case TCM_SCHEMA_STATS_OUTPUT: {
			int index = (int)row->default_value;
			memcpy(field, &index, sizeof index);
			break;
		}
		case TCM_SCHEMA_PATH:
			break;     /* unset, above */
		}
		out->origin[i] = (struct tcm_config_origin){ TCM_CONFIG_FROM_DEFAULT, 0 };
	}
}

void tcm_config_set_path(struct tcm_config *config, enum tcm_config_path which, const char *path)
{
	if (path[0] == '\0') {
		config->path_offset[which] = 0;
		return;
	}
	uint16_t slot = (uint16_t)(1 + which * TCM_CONFIG_PATH_MAX);
	size_t length = strnlen(path, TCM_CONFIG_PATH_MAX - 1);
	memcpy(config->path_text + slot, path, length);
	config->path_text[slot + length] = '\0';
	config->path_offset[which] = slot;
}
