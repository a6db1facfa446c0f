/* conf/load.c - tcm_config_load: the lookup order and the parsing of tcm.conf. The only file
 * that uses libconfig, through libconfig_functions.h: loaded only once a file has been read.
 *
 * Invariants: *out starts as the defaults and each step only replaces keys with checked
 *             values (validate.c), so whatever goes wrong the caller gets a valid config;
 *             a file that fails to parse contributes nothing.
 * Never: exit, abort, or leave libconfig memory behind (config_destroy on every path). */
#define _GNU_SOURCE  /* fopen's "e" (O_CLOEXEC) */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "env.h"
#include "libconfig_functions.h"
#include "schema.h"
#include "validate.h"

/* The file to read and whether its absence is an error: an explicit file or $TCM_CONF must
 * exist; the /etc file may be missing. NULL when there is nothing to read. */
static const char *pick_file(const struct tcm_config_sources *sources, bool *must_exist)
{
	*must_exist = true;
	if (sources->file != NULL)
		return sources->file;
	const char *env = sources->getenv("TCM_CONF");
	if (env != NULL && env[0] != '\0')
		return env;
	*must_exist = false;
	return sources->etc_path;
}

/* How a setting of the wrong type is shown after "got ". */
static void describe(const struct tcm_libconfig_functions *lc, const config_setting_t *setting, char *buf,
		     size_t size)
{
	switch (config_setting_type(setting)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, size, "%lld", (long long)lc->get_int64(setting));
		return;
	case CONFIG_TYPE_FLOAT: {
		int len = snprintf(buf, size, "%g", lc->get_float(setting));
		if (len > 0 && (size_t)len + 2 < size && strpbrk(buf, ".eni") == NULL)
			strcat(buf, ".0");  /* 1000.0 must not read as the integer 1000 */
		return;
	}
	case CONFIG_TYPE_STRING:
		snprintf(buf, size, "\"%.200s\"", lc->get_string(setting));
		return;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, size, "%s", lc->get_bool(setting) ? "true" : "false");
		return;
	case CONFIG_TYPE_GROUP:
		snprintf(buf, size, "a group");
		return;
	case CONFIG_TYPE_ARRAY:
		snprintf(buf, size, "an array");
		return;
	case CONFIG_TYPE_LIST:
		snprintf(buf, size, "a list");
		return;
	}
	snprintf(buf, size, "a value of unknown type");
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '*';
}

/* libconfig 1.5 wraps an integer past 32 bits written without an L (4294968296
 * reads as 1000, 9999999999999 as 1316134911) and clamps one past 64 bits with
 * an L. So an integer counts only if the literal as written in the file says
 * the same: it is looked for after the setting's name on the name's line (the
 * line libconfig records; the value may follow on later lines). Returns false,
 * the literal copied into written, when it says something else (or more than a
 * long long holds); true when they agree or there is no literal to read. */
static bool is_integer_as_written(const char *text, unsigned line, const char *name, long long parsed,
				  char *written, size_t size)
{
	const char *at = text;
	for (unsigned n = 1; n < line && at != NULL; n++)
		if ((at = strchr(at, '\n')) != NULL)
			at++;
	if (at == NULL)
		return true;
	const char *line_end = at + strcspn(at, "\n");
	size_t name_length = strlen(name);
	for (const char *p = at; p + name_length <= line_end; p++) {
		if (strncmp(p, name, name_length) != 0 || (p > text && is_name_char(p[-1])) ||
		    is_name_char(p[name_length]))
			continue;
		const char *value = p + name_length + strspn(p + name_length, " \t\r\n");
		if (*value != '=' && *value != ':')
			continue;
		value += 1 + strspn(value + 1, " \t\r\n");
		size_t length = strspn(value, "+-0123456789abcdefABCDEFxXL");
		if (length == 0)
			return true;
		if (length >= size) {
			snprintf(written, size, "%.*s...", (int)size - 4, value);
			return false;
		}
		snprintf(written, size, "%.*s", (int)length, value);
		char digits[64];
		snprintf(digits, sizeof digits, "%.*s", (int)strcspn(written, "L"), written);
		char *end;
		errno = 0;
		long long as_written = strtoll(digits, &end, 0);
		return errno == 0 && *end == '\0' && as_written == parsed;
	}
	return true;
}

/* Checks one known key's setting; stores it, or reports and leaves the default. 0 or 1 error.
 * text: the file's text, for the integers libconfig may have misread. */
static int apply_setting(const struct tcm_libconfig_functions *lc, struct tcm_config *out,
			 const struct tcm_schema_row *row, const config_setting_t *setting, const char *text,
			 const struct tcm_config_sources *sources)
{
	struct tcm_validate_value value;
	int err = EINVAL;
	int type = config_setting_type(setting);
	unsigned line = config_setting_source_line(setting);
	char written[64];
	bool is_misread = false;
	if (row->type == TCM_SCHEMA_INT && (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)) {
		is_misread = !is_integer_as_written(text, line, config_setting_name(setting),
						    lc->get_int64(setting), written, sizeof written);
		if (!is_misread)
			err = tcm_validate_int(row, lc->get_int64(setting), &value);
	} else if (row->type == TCM_SCHEMA_BOOL && type == CONFIG_TYPE_BOOL) {
		value.boolean = lc->get_bool(setting) != 0;
		err = 0;
	} else if ((row->type == TCM_SCHEMA_CHOICE || row->type == TCM_SCHEMA_STATS_OUTPUT) &&
		   type == CONFIG_TYPE_STRING) {
		err = tcm_validate_word(row, lc->get_string(setting), &value);
	} else if (row->type == TCM_SCHEMA_PATH && type == CONFIG_TYPE_STRING) {
		err = tcm_validate_path(row, lc->get_string(setting), &value);
	}

	if (err == 0) {
		tcm_validate_store(out, row, &value, (struct tcm_config_origin){ TCM_CONFIG_FROM_FILE, line });
		return 0;
	}
	char expected[256], got[256];
	tcm_validate_expected(row, expected, sizeof expected);
	if (is_misread)
		snprintf(got, sizeof got, "%s", written);
	else
		describe(lc, setting, got, sizeof got);
	tcm_validate_report(sources, "%s:%u: %s: expected %s, got %s",
			    tcm_config_path(out, TCM_CONFIG_PATH_FILE), line, row->name, expected, got);
	return 1;
}

static int report_unknown(const struct tcm_config *out, const config_setting_t *setting,
			  const char *name, const struct tcm_config_sources *sources)
{
	const struct tcm_schema_row *near = tcm_validate_suggest(name);
	unsigned line = config_setting_source_line(setting);
	const char *file = tcm_config_path(out, TCM_CONFIG_PATH_FILE);
	if (near != NULL)
		tcm_validate_report(sources, "%s:%u: unknown key %s (did you mean %s?)", file, line, name,
				    near->name);
	else
		tcm_validate_report(sources, "%s:%u: unknown key %s", file, line, name);
	return 1;
}

/* One top-level setting: a known group's keys, or errors for what is not a key of tcm. */
static int apply_top(const struct tcm_libconfig_functions *lc, struct tcm_config *out, const config_setting_t *top,
		     const char *text, const struct tcm_config_sources *sources)
{
	const char *group = config_setting_name(top);
	bool is_group = config_setting_is_group(top);
	int errors = 0;
	char name[256];
	if (!tcm_schema_has_group(group)) {
		/* each key of an unknown group gets its own did-you-mean ("exitt.deadline_ms") */
		int count = is_group ? lc->length(top) : 0;
		for (int i = 0; i < count; i++) {
			const config_setting_t *child = lc->get_elem(top, (unsigned)i);
			snprintf(name, sizeof name, "%s.%s", group, config_setting_name(child));
			errors += report_unknown(out, child, name, sources);
		}
		return count > 0 ? errors : report_unknown(out, top, group, sources);
	}
	if (!is_group) {
		char got[256];
		describe(lc, top, got, sizeof got);
		tcm_validate_report(sources, "%s:%u: %s: expected a group { ... }, got %s",
				    tcm_config_path(out, TCM_CONFIG_PATH_FILE), config_setting_source_line(top),
				    group, got);
		return 1;
	}
	for (int i = 0; i < lc->length(top); i++) {
		const config_setting_t *setting = lc->get_elem(top, (unsigned)i);
		const char *key = config_setting_name(setting);
		const struct tcm_schema_row *row = tcm_schema_find(group, key);
		if (row == NULL) {
			snprintf(name, sizeof name, "%s.%s", group, key);
			errors += report_unknown(out, setting, name, sources);
		} else if (config_setting_source_file(setting) != NULL) {
			/* config_read_string() leaves the main file unnamed, so a name means @include */
			tcm_validate_report(sources, "%s:%u: %s: set in an @include file, which tcm does not read",
					    config_setting_source_file(setting),
					    config_setting_source_line(setting), row->name);
			errors++;
		} else {
			errors += apply_setting(lc, out, row, setting, text, sources);
		}
	}
	return errors;
}

#define TEXT_MAX_BYTES     ((size_t)16 << 20)   /* a larger tcm.conf is refused */
#define INCLUDE_DEPTH_MAX  10                    /* libconfig 1.5's own limit */

/* The whole of stream as a NUL-terminated string (caller frees), or NULL with
 * *err set. libconfig parses it from memory: its flex scanner ends the process
 * (exit(2), "input in flex scanner failed") when a read from a file fails. */
static char *read_text(FILE *stream, int *err)
{
	size_t length = 0, capacity = 4096;
	char *text = malloc(capacity);
	while (text != NULL) {
		length += fread(text + length, 1, capacity - length - 1, stream);
		if (ferror(stream)) {
			*err = errno != 0 ? errno : EIO;
			free(text);
			return NULL;
		}
		if (feof(stream)) {
			text[length] = '\0';
			return text;
		}
		if (capacity >= TEXT_MAX_BYTES) {
			*err = EFBIG;
			free(text);
			return NULL;
		}
		char *larger = realloc(text, capacity * 2);
		if (larger == NULL)
			free(text);
		text = larger;
		capacity *= 2;
	}
	*err = ENOMEM;
	return NULL;
}

/* Opens path for reading; EISDIR for a directory (fopen takes one, and the first
 * read fails). Returns the stream or NULL with *err set. */
static FILE *open_readable(const char *path, int *err)
{
	FILE *stream = fopen(path, "re");
	struct stat st;
	*err = stream == NULL ? errno : fstat(fileno(stream), &st) != 0 ? errno
	       : S_ISDIR(st.st_mode) ? EISDIR : 0;
	if (*err != 0 && stream != NULL) {
		fclose(stream);
		stream = NULL;
	}
	return stream;
}

/* libconfig 1.5 opens the files @include names itself, at any depth, with no hook
 * to refuse one, and a failed read there ends the process as above (a directory
 * does it). tcm reads no setting from them, but each must be a file (not a
 * directory) that reads whole, or the file that names it is refused. Returns 0, or 1 once it has
 * reported the first that is not. */
static int check_includes(const char *text, const char *file, int depth,
			  const struct tcm_config_sources *sources)
{
	int line = 1;
	for (const char *at = text; *at != '\0'; line++) {
		const char *end = strchr(at, '\n');
		const char *next = end != NULL ? end + 1 : at + strlen(at);
		at += strspn(at, " \t");
		size_t skip = strncmp(at, "@include", 8) == 0 ? 8 + strspn(at + 8, " \t") : 0;
		if (skip > 8 && at[skip] == '"') {
			const char *name = at + skip + 1;
			const char *quote = memchr(name, '"', (size_t)(next - name));
			char path[4096];
			int err = 0;
			if (quote == NULL || (size_t)(quote - name) >= sizeof path)
				err = ENAMETOOLONG;
			else
				snprintf(path, sizeof path, "%.*s", (int)(quote - name), name);
			char *included = NULL;
			if (err == 0 && depth >= INCLUDE_DEPTH_MAX)
				err = ELOOP;
			FILE *stream = err == 0 ? open_readable(path, &err) : NULL;
			if (stream != NULL) {
				included = read_text(stream, &err);
				fclose(stream);
			}
			int failed = err != 0 ? 1 : check_includes(included, path, depth + 1, sources);
			free(included);
			if (err != 0)
				tcm_validate_report(sources, "%s:%d: %.*s: %s; the whole file is ignored", file,
						    line, (int)((end != NULL ? end : next) - at), at, strerror(err));
			if (failed)
				return 1;
		}
		at = next;
	}
	return 0;
}

/* Reads path into out. Returns the number of errors reported. */
static int load_file(struct tcm_config *out, const char *path, bool must_exist,
		     const struct tcm_config_sources *sources)
{
	/* The usual case, no /etc/tcm.conf, costs one system call and no malloc
	 * (fopen allocates its FILE before it opens): a process that allocates
	 * nothing else never has to set up the heap. */
	if (!must_exist && access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	int err;
	FILE *stream = open_readable(path, &err);
	char *text = stream != NULL ? read_text(stream, &err) : NULL;
	if (stream != NULL)
		fclose(stream);
	if (text == NULL) {
		if (err == ENOENT && !must_exist)
			return 0;
		tcm_validate_report(sources, "%s: cannot read: %s; using defaults", path, strerror(err));
		return 1;
	}
	if (check_includes(text, path, 0, sources) != 0) {
		free(text);
		return 1;
	}

	char why[256];
	const struct tcm_libconfig_functions *lc = tcm_libconfig_functions(why, sizeof why);
	if (lc == NULL) {
		tcm_validate_report(sources, "%s: cannot parse: %s; using defaults", path, why);
		free(text);
		return 1;
	}
	config_t parsed;
	lc->init(&parsed);
	int ok = lc->read_string(&parsed, text);
	int errors = 0;
	tcm_config_set_path(out, TCM_CONFIG_PATH_FILE, path);
	if (!ok) {
		const char *where = config_error_file(&parsed);
		tcm_validate_report(sources, "%s:%d: %s; the whole file is ignored",
				    where != NULL ? where : path, config_error_line(&parsed),
				    config_error_text(&parsed));
		tcm_config_set_path(out, TCM_CONFIG_PATH_FILE, "");
		errors = 1;
	} else {
		const config_setting_t *root = config_root_setting(&parsed);
		for (int i = 0; i < lc->length(root); i++)
			errors += apply_top(lc, out, lc->get_elem(root, (unsigned)i), text, sources);
	}
	lc->destroy(&parsed);
	free(text);
	return errors;
}

int tcm_config_load(struct tcm_config *out, const struct tcm_config_sources *sources)
{
	tcm_schema_defaults(out);
	bool must_exist;
	const char *path = pick_file(sources, &must_exist);
	int errors = path != NULL ? load_file(out, path, must_exist, sources) : 0;
	errors += tcm_env_apply(out, sources);
	errors += tcm_env_report_unknown(sources);
	errors += tcm_validate_cross_keys(out, sources);
	return errors;
}
