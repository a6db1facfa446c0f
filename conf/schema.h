/* conf/schema.h - the table of tcm.conf keys: the single source of every key's group, name,
 * environment variable, type, range, default, unit and documentation. The loader, the
 * environment overrides, tcmctl show/keys and the README table all read it.
 *
 * Invariants: tcm_schema[k].key_id == k for every enum tcm_config_key k; each default lies
 *             within its row's range; env is "TCM_" + upper(group) + "_" + upper(key). */
#ifndef TCM_CONF_SCHEMA_H
#define TCM_CONF_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum tcm_schema_type {
	TCM_SCHEMA_INT,          /* int64_t field; min..max, and a multiple of multiple_of */
	TCM_SCHEMA_BOOL,         /* bool field */
	TCM_SCHEMA_CHOICE,       /* enum field = index into choices */
	TCM_SCHEMA_STATS_OUTPUT, /* stats.on_exit: "off", "stderr" or an absolute path ending in .json or .prom */
	TCM_SCHEMA_PATH,         /* a path of the config (tcm_config_path): "" or an absolute path (%p: the pid) */
};

struct tcm_schema_row {
	enum tcm_config_key  key_id;
	const char          *group;        /* "exit" */
	const char          *key;          /* "deadline_ms" */
	const char          *name;         /* "exit.deadline_ms" */
	const char          *env;          /* "TCM_EXIT_DEADLINE_MS" */
	enum tcm_schema_type type;
	int64_t              min, max;     /* TCM_SCHEMA_INT only */
	int64_t              multiple_of;  /* TCM_SCHEMA_INT only; 1 = any */
	int64_t              default_value;/* INT: the value; BOOL: 0/1; CHOICE, STATS_OUTPUT: index */
	const char *const   *choices;      /* CHOICE, STATS_OUTPUT: NULL-terminated words */
	const char          *unit;         /* "milliseconds"; NULL when the type says it all */
	const char          *doc;          /* one sentence for operators */
	size_t               offset;       /* of the field in struct tcm_config; not TCM_SCHEMA_PATH */
	enum tcm_config_path path;         /* TCM_SCHEMA_PATH only: which of the config's paths */
};

extern const struct tcm_schema_row tcm_schema[TCM_CONFIG_KEY_COUNT];

/* The row named group.key, or NULL. */
const struct tcm_schema_row *tcm_schema_find(const char *group, const char *key);

/* True if some row has this group. */
bool tcm_schema_has_group(const char *group);

/* *out = every key at its default, origin DEFAULT, no file. */
void tcm_schema_defaults(struct tcm_config *out);

#endif
