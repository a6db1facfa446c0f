/* conf/config.h - the configuration tcm runs with: struct tcm_config, filled once from tcm.conf,
 * TCM_<GROUP>_<KEY> environment overrides and the built-in defaults (conf/schema.c), then
 * validated. shim/ init and orchestrator/ read it; core/ never sees this header.
 *
 * Invariants: every field of a loaded struct tcm_config is within its schema range (a bad value
 *             was replaced before the caller sees it); exit.margin_ms < exit.deadline_ms;
 *             origin[k] says where key k's value came from.
 * Never: abort or exit the process over configuration (DESIGN invariant 6). */
#ifndef TCM_CONF_CONFIG_H
#define TCM_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TCM_CONFIG_PATH_MAX 4096           /* bytes, with the NUL, of any path kept in the config */
#define TCM_CONFIG_ETC_PATH "/etc/tcm.conf" /* the file read when TCM_CONF is not set */

/* One per key, in schema order: tcm_schema[key] describes key. */
enum tcm_config_key {
	TCM_CONFIG_EXIT_DEADLINE_MS,
	TCM_CONFIG_EXIT_MARGIN_MS,
	TCM_CONFIG_EXIT_RELEASE_ON_SHUTDOWN,
	TCM_CONFIG_RELEASE_RATE_MIB_S,
	TCM_CONFIG_RELEASE_CHUNK_KIB,
	TCM_CONFIG_RELEASE_WORKER_DUTY_PERCENT,
	TCM_CONFIG_CACHE_THREAD_MAX_KIB,
	TCM_CONFIG_CACHE_TOTAL_MAX_MIB,
	TCM_CONFIG_NOTIFY_READY,
	TCM_CONFIG_NOTIFY_STOPPING,
	TCM_CONFIG_NOTIFY_STATUS,
	TCM_CONFIG_STATS_ON_EXIT,
	TCM_CONFIG_STATS_INTERVAL_MS,
	TCM_CONFIG_STATS_PATH,
	TCM_CONFIG_KEY_COUNT
};

enum tcm_config_notify_ready {
	TCM_CONFIG_NOTIFY_READY_OFF,  /* never send READY=1 (the service does it) */
	TCM_CONFIG_NOTIFY_READY_INIT, /* send READY=1 when tcm has initialised */
};

enum tcm_config_stats_to {
	TCM_CONFIG_STATS_TO_OFF,    /* write nothing at exit */
	TCM_CONFIG_STATS_TO_STDERR, /* text report on fd 2 */
	TCM_CONFIG_STATS_TO_FILE,   /* to TCM_CONFIG_PATH_STATS_ON_EXIT: JSON (.json) or Prometheus text (.prom) */
};

enum tcm_config_source {
	TCM_CONFIG_FROM_DEFAULT, /* built-in default (conf/schema.c) */
	TCM_CONFIG_FROM_FILE,    /* the file (TCM_CONFIG_PATH_FILE), at origin.line */
	TCM_CONFIG_FROM_ENV,     /* the key's TCM_<GROUP>_<KEY> variable */
};

/* The paths a configuration keeps (tcm_config_path). */
enum tcm_config_path {
	TCM_CONFIG_PATH_STATS_ON_EXIT, /* stats.on_exit's file: absolute, ends in .json or .prom; "" unless TO_FILE */
	TCM_CONFIG_PATH_STATS_LIVE,    /* stats.path, the live file: absolute, %p = pid; "" = none */
	TCM_CONFIG_PATH_FILE,          /* the file the values came from; "" if none */
	TCM_CONFIG_PATH_COUNT
};

struct tcm_config_origin {
	enum tcm_config_source source;
	unsigned               line;   /* 1-based line in the file; 0 unless FROM_FILE */
};

/* Immutable once tcm_config_load returns. Units are in the names, as in tcm.conf. */
struct tcm_config {
	struct {
		int64_t deadline_ms;          /* whole exit budget from T0, 1..600000 */
		int64_t margin_ms;            /* release stops at deadline - margin; < deadline_ms */
		bool    release_on_shutdown;  /* release free memory while draining */
	} exit;
	struct {
		int64_t rate_mib_s;           /* background release rate; 0 = none */
		int64_t chunk_kib;            /* largest single madvise; multiple of 8 */
		int64_t worker_duty_percent;  /* most of its time the release worker works, 1..100 */
	} release;
	struct {
		int64_t thread_max_kib;       /* one thread cache's byte budget */
		int64_t total_max_mib;        /* all thread caches together */
	} cache;
	struct {
		enum tcm_config_notify_ready ready;
		bool                         stopping;  /* send STOPPING=1 and EXTEND_TIMEOUT_USEC */
		bool                         status;    /* send STATUS= progress lines */
	} notify;
	struct tcm_config_origin origin[TCM_CONFIG_KEY_COUNT];
	struct {
		enum tcm_config_stats_to on_exit;         /* TO_FILE: the path TCM_CONFIG_PATH_STATS_ON_EXIT */
		int64_t interval_ms;                      /* the live file's period; 0 = no live file */
	} stats;
	/* The paths, read with tcm_config_path and written with tcm_config_set_path: path k is
	 * path_text + path_offset[k]. An unset path's offset is 0, the one empty string all unset
	 * paths share; a set path has its own slot of TCM_CONFIG_PATH_MAX bytes after it. A fresh
	 * configuration (tcm_schema_defaults) writes the offsets and path_text[0], next to the
	 * values, and leaves the slots' 12 KiB untouched, out of every process's start-up. */
	uint16_t path_offset[TCM_CONFIG_PATH_COUNT];
	char     path_text[1 + TCM_CONFIG_PATH_COUNT * TCM_CONFIG_PATH_MAX];
};

/* Receives one error without the "tcm: " prefix, e.g.
 * "/etc/tcm.conf:12: exit.deadline_ms: expected an integer from 1 to 600000 (milliseconds), got \"abc\"". */
typedef void (*tcm_config_error_fn)(void *context, const char *message);
typedef const char *(*tcm_config_getenv_fn)(const char *name);

/* Where tcm_config_load looks. */
struct tcm_config_sources {
	tcm_config_getenv_fn getenv;    /* production: secure_getenv, NULL for all names in setuid and
	                                 * setgid programs, so TCM_CONF and TCM_* are ignored there */
	const char          *file;      /* when non-NULL: read this file and skip the lookup */
	const char          *etc_path;  /* read when TCM_CONF is unset or empty; a missing file is no error */
	tcm_config_error_fn  error;     /* called once per error; may be NULL */
	void                *error_context;
	char *const         *environment; /* "NAME=VALUE" strings, NULL-terminated, in which TCM_ names
	                                   * that are no variable of tcm's are reported; NULL: none
	                                   * (production: environ, NULL in setuid and setgid programs) */
};

/* Fills *out: defaults, then the file (sources->file, else $TCM_CONF, else sources->etc_path),
 * then TCM_<GROUP>_<KEY> overrides, then the cross-key rules; a TCM_ variable of
 * sources->environment that tcm does not read is an error too. Each problem is reported once
 * through sources->error: a bad value keeps the key's default (a bad override keeps the file's
 * value), an unknown key is skipped, a syntax error or unreadable file drops the whole file.
 * Returns the number of errors reported; *out is complete and valid either way. Allocates
 * (libconfig); not async-signal-safe; thread-safe for distinct *out. */
int tcm_config_load(struct tcm_config *out, const struct tcm_config_sources *sources);

/* Path which of config: "" when unset, else at most TCM_CONFIG_PATH_MAX - 1 bytes. */
static inline const char *tcm_config_path(const struct tcm_config *config, enum tcm_config_path which)
{
	return config->path_text + config->path_offset[which];
}

/* Sets path which of config to path ("" unsets it); path is cut at TCM_CONFIG_PATH_MAX - 1
 * bytes (the loader's checks keep every path it stores below that). */
void tcm_config_set_path(struct tcm_config *config, enum tcm_config_path which, const char *path);

/* Whether the configuration asks for a live statistics file: stats.interval_ms and
 * stats.path both set. */
bool tcm_config_has_live_stats(const struct tcm_config *config);

/* The file a stats.path or stats.on_exit path names for process pid, into path (size bytes):
 * %p becomes pid. Returns false when it does not fit (path then holds what did, cut short). */
bool tcm_config_stats_path_of(const char *pattern, uint64_t pid, char *path, size_t size);

/* The process's configuration, loaded on first call with secure_getenv, /etc/tcm.conf and an
 * error sink writing "tcm: <message>" lines to stderr (at most TCM_CONFIG_STDERR_LINES, then
 * one line saying more were dropped). Later calls return the same object. Thread-safe. */
#define TCM_CONFIG_STDERR_LINES 16
const struct tcm_config *tcm_config_current(void);

#endif
