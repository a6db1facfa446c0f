/* tools/dropin.c - tcmctl dropin: a systemd drop-in that runs a unit under libtcm.so and can only
 * lengthen its stop. A drop-in cannot say "at least", so it is worked out from the unit's own
 * settings (systemctl show, or a file of the same Key=Value lines) and sets a key only where
 * the unit's value falls short of what tcm needs:
 *   - LD_PRELOAD: libtcm.so's SONAME link (it outlives upgrades of the same ABI) first, then
 *     whatever the unit preloads already;
 *   - NotifyAccess=main only where the unit has none (Type=simple and the like): otherwise
 *     systemd drops tcm's STOPPING=1, STATUS= and EXTEND_TIMEOUT_USEC=; a unit with main, exec
 *     or all keeps its own (overriding all with main would drop its helpers' READY=1);
 *   - TimeoutStopSec only where the unit's is shorter than exit.deadline_ms plus EXIT_SLACK_MS.
 * Type=forking gets a note instead of NotifyAccess: tcm speaks only from SYSTEMD_EXEC_PID, the
 * process systemd started, which is the daemon's parent and exits. */
#define _GNU_SOURCE  /* popen's "e" */
#include "tcmctl.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tcmctl_paths.h"

/* After tcm's deadline the kernel still tears the process down: 0.25-0.4 s for a 2 GiB heap
 * (bench/EXIT_STORM.md, sigkill rows). */
#define EXIT_SLACK_MS 1000

#define TIMESPAN_INFINITY UINT64_MAX

struct unit_settings {
	char type[64];
	char notify_access[64];
	char timeout_stop[128];   /* as systemctl shows it: "1min 30s", "500ms", "infinity" */
	char environment[4096];   /* "A=1 B=2", quoted where a value has spaces */
};

static void copy_value(char *to, size_t size, const char *value)
{
	snprintf(to, size, "%.*s", (int)strcspn(value, "\n"), value);
}

/* Reads Key=Value lines (systemctl show's output); unknown keys are skipped. */
static void read_settings(FILE *from, struct unit_settings *out)
{
	char line[sizeof out->environment + 64];
	while (fgets(line, sizeof line, from) != NULL) {
		if (strncmp(line, "Type=", 5) == 0)
			copy_value(out->type, sizeof out->type, line + 5);
		else if (strncmp(line, "NotifyAccess=", 13) == 0)
			copy_value(out->notify_access, sizeof out->notify_access, line + 13);
		else if (strncmp(line, "TimeoutStopUSec=", 16) == 0)
			copy_value(out->timeout_stop, sizeof out->timeout_stop, line + 16);
		else if (strncmp(line, "Environment=", 12) == 0)
			copy_value(out->environment, sizeof out->environment, line + 12);
	}
}

/* A systemd time span ("1min 30s", "1h 2.5s", "500ms", "infinity") in milliseconds, rounded
 * down; TIMESPAN_INFINITY for infinity; false when the text is none. */
static bool parse_timespan_ms(const char *text, uint64_t *ms)
{
	static const struct { const char *unit; double ms; } units[] = {
		{ "usec", 0.001 }, { "us", 0.001 }, { "msec", 1 }, { "ms", 1 }, { "seconds", 1000 },
		{ "second", 1000 }, { "sec", 1000 }, { "s", 1000 }, { "minutes", 60000 }, { "minute", 60000 },
		{ "min", 60000 }, { "hours", 3600000 }, { "hour", 3600000 }, { "hr", 3600000 },
		{ "h", 3600000 }, { "days", 86400000 }, { "day", 86400000 }, { "d", 86400000 },
		{ "weeks", 604800000 }, { "week", 604800000 }, { "w", 604800000 },
	};
	if (strcmp(text, "infinity") == 0) {
		*ms = TIMESPAN_INFINITY;
		return true;
	}
	double total = 0;
	const char *at = text + strspn(text, " ");
	if (*at == '\0')
		return false;
	while (*at != '\0') {
		char *end;
		double number = strtod(at, &end);
		if (end == at || number < 0)
			return false;
		size_t unit_length = strspn(end, "abcdefghijklmnopqrstuvwxyz");
		const char *next = end + unit_length + strspn(end + unit_length, " ");
		double scale = unit_length == 0 ? 1000 : -1;   /* a bare number is seconds */
		for (size_t i = 0; i < sizeof units / sizeof units[0] && scale < 0; i++)
			if (strlen(units[i].unit) == unit_length && strncmp(end, units[i].unit, unit_length) == 0)
				scale = units[i].ms;
		if (scale < 0)
			return false;
		total += number * scale;
		at = next;
	}
	*ms = (uint64_t)total;
	return true;
}

/* The unit's own LD_PRELOAD from its Environment= ("A=1 LD_PRELOAD=/x.so B=2", a value with
 * spaces in double quotes) into preload; empty when it sets none. */
static void unit_preload(const char *environment, char *preload, size_t size)
{
	preload[0] = '\0';
	for (const char *at = environment; *at != '\0';) {
		at += strspn(at, " ");
		bool is_quoted = *at == '"';
		const char *start = at + is_quoted;
		const char *end = is_quoted ? strchr(start, '"') : start + strcspn(start, " ");
		if (end == NULL)
			end = start + strlen(start);
		if (strncmp(start, "LD_PRELOAD=", 11) == 0 && end >= start + 11)
			snprintf(preload, size, "%.*s", (int)(end - start - 11), start + 11);
		at = *end == '"' ? end + 1 : end;
	}
}

/* systemd's unit name characters; anything else could not be a unit, and is not passed to a
 * shell. */
static bool is_unit_name(const char *name)
{
	return name[0] != '\0' && name[0] != '-' &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.@\\") ==
		       strlen(name);
}

static int load_settings(const char *unit, const char *properties, struct unit_settings *settings)
{
	FILE *from;
	char command[512];
	if (properties != NULL) {
		from = fopen(properties, "re");
	} else {
		snprintf(command, sizeof command,
			 "systemctl show --property=Type,NotifyAccess,TimeoutStopUSec,Environment -- '%s'", unit);
		from = popen(command, "re");
	}
	if (from == NULL) {
		fprintf(stderr, "tcmctl: dropin: cannot read %s: %s\n", properties != NULL ? properties : command,
			strerror(errno));
		return 1;
	}
	read_settings(from, settings);
	int status = properties != NULL ? fclose(from) : pclose(from);
	if (properties == NULL && status != 0) {
		fprintf(stderr, "tcmctl: dropin: '%s' failed (exit status %d); on a machine where systemctl cannot "
			"reach systemd, give the unit's settings with --properties FILE\n", command,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return 1;
	}
	uint64_t ignored;
	if (settings->type[0] == '\0' || settings->notify_access[0] == '\0' ||
	    !parse_timespan_ms(settings->timeout_stop, &ignored)) {
		fprintf(stderr, "tcmctl: dropin: %s gave no Type, NotifyAccess or readable TimeoutStopUSec for %s\n",
			properties != NULL ? properties : "systemctl show", unit);
		return 1;
	}
	return 0;
}

/* The path a drop-in should name for the library at lib_path (resolved): the SONAME link
 * beside it when that leads to the same file, so that the drop-in outlives an upgrade within
 * the ABI (libtcm.so.0.1.0 -> 0.2.0); else lib_path itself. */
static void stable_lib_path(const char *lib_path, char *out, size_t size)
{
	const char *slash = strrchr(lib_path, '/');
	char candidate[PATH_MAX], resolved[PATH_MAX];
	snprintf(candidate, sizeof candidate, "%.*s/%s", (int)(slash - lib_path), lib_path, TCM_SONAME);
	bool is_same = realpath(candidate, resolved) != NULL && strcmp(resolved, lib_path) == 0;
	snprintf(out, size, "%s", is_same ? candidate : lib_path);
}

/* exit.deadline_ms as a process would read it (TCM_CONF, /etc/tcm.conf), or from conf. */
static int64_t deadline_ms(const char *conf)
{
	struct tcm_config config;
	tcmctl_load_config(conf, &config);
	return config.exit.deadline_ms;
}

int tcmctl_dropin(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "lib", required_argument, NULL, 'l' },
		{ "properties", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *values[4] = { NULL, NULL, NULL, NULL };
	int first;
	enum tcmctl_parsed parsed = tcmctl_parse_options(argc, argv, "+:hc:l:p:", options, values, &first);
	if (parsed != TCMCTL_PARSED_OK)
		return parsed == TCMCTL_PARSED_HELP ? tcmctl_usage(stdout, 0) : 2;
	if (first >= argc)
		return tcmctl_usage_error("dropin: no unit named");
	if (argc - first > 1)
		return tcmctl_usage_error("dropin: unexpected argument '%s'", argv[first + 1]);
	const char *unit = argv[first];
	if (!is_unit_name(unit))
		return tcmctl_usage_error("dropin: '%s' is not a unit name", unit);

	char resolved_lib[PATH_MAX], lib_path[PATH_MAX], conf_path[PATH_MAX];
	if (tcmctl_find_lib(values[1], resolved_lib) != 0)
		return 1;
	stable_lib_path(resolved_lib, lib_path, sizeof lib_path);
	if (values[0] != NULL && realpath(values[0], conf_path) == NULL) {
		fprintf(stderr, "tcmctl: cannot read %s: %s\n", values[0], strerror(errno));
		return 1;
	}
	struct unit_settings settings = { .type = "" };
	if (load_settings(unit, values[2], &settings) != 0)
		return 1;
	uint64_t stop_ms;
	parse_timespan_ms(settings.timeout_stop, &stop_ms);
	uint64_t needed_ms = (uint64_t)deadline_ms(values[0] != NULL ? conf_path : NULL) + EXIT_SLACK_MS;
	char preload[sizeof settings.environment];
	unit_preload(settings.environment, preload, sizeof preload);

	printf("# /etc/systemd/system/%s.d/tcm.conf: runs %s under tcm. Written by tcmctl dropin\n"
	       "# from the unit's settings (Type=%s, NotifyAccess=%s, TimeoutStopUSec=%s); it sets a key\n"
	       "# only where the unit's own value falls short, so it never shortens a stop. Write it\n"
	       "# again after changing the unit or exit.deadline_ms.\n"
	       "[Service]\n",
	       unit, unit, settings.type, settings.notify_access, settings.timeout_stop);
	if (preload[0] != '\0')
		printf("Environment=\"LD_PRELOAD=%s %s\"\n", lib_path, preload);
	else
		printf("Environment=LD_PRELOAD=%s\n", lib_path);
	if (values[0] != NULL)
		printf("Environment=TCM_CONF=%s\n", conf_path);
	if (strcmp(settings.type, "forking") == 0)
		printf("# Type=forking: tcm sends sd_notify messages only from the process systemd started,\n"
		       "# the daemon's parent, which exits; the daemon drains and releases without telling\n"
		       "# systemd, so its stop is bounded by TimeoutStopSec alone.\n");
	else if (strcmp(settings.notify_access, "none") == 0)
		printf("# systemd drops sd_notify messages from a unit with no NotifyAccess; main admits the\n"
		       "# service's main process, the one tcm sends STOPPING=1, STATUS= and\n"
		       "# EXTEND_TIMEOUT_USEC= from (EXTEND only ever lengthens the stop).\n"
		       "NotifyAccess=main\n");
	if (stop_ms < needed_ms)
		printf("# The unit's stop timeout is shorter than exit.deadline_ms plus %d ms for the kernel's\n"
		       "# teardown: lengthened to that.\n"
		       "TimeoutStopSec=%llums\n",
		       EXIT_SLACK_MS, (unsigned long long)needed_ms);
	return 0;
}
