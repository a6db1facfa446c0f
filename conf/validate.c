/* conf/validate.c - value rules and error wording for tcm.conf keys (see validate.h).
 * Invariants: a value that passes a tcm_validate_* check is within its row's range, so
 *             tcm_validate_store never writes an invalid config; messages name the key and
 *             what was expected, are one line (control characters become '?') and never
 *             exceed 1023 bytes. */
#include "validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUGGEST_NAME_MAX 64  /* bytes; longer unknown names get no suggestion */

int tcm_validate_int(const struct tcm_schema_row *row, int64_t integer, struct tcm_validate_value *value)
{
	if (integer < row->min || integer > row->max || integer % row->multiple_of != 0)
		return EINVAL;
	value->integer = integer;
	return 0;
}

/* An absolute path of a file (a name before the suffix) ending in .json or .prom. */
static bool is_stats_path(const char *word)
{
	size_t len = strlen(word);
	bool has_suffix = len > 5 && (strcmp(word + len - 5, ".json") == 0 || strcmp(word + len - 5, ".prom") == 0);
	return word[0] == '/' && has_suffix && len > 6 && len < TCM_CONFIG_PATH_MAX && word[len - 6] != '/';
}

int tcm_validate_word(const struct tcm_schema_row *row, const char *word, struct tcm_validate_value *value)
{
	for (int i = 0; row->choices[i] != NULL; i++) {
		if (strcmp(word, row->choices[i]) == 0) {
			value->choice = i;
			value->path = NULL;
			return 0;
		}
	}
	if (row->type == TCM_SCHEMA_STATS_OUTPUT && is_stats_path(word)) {
		value->choice = TCM_CONFIG_STATS_TO_FILE;
		value->path = word;
		return 0;
	}
	return EINVAL;
}

/* Room a path keeps for what tcm adds to it: %p's expansion (a pid is at most 7 digits on
 * Linux, 2 of them paid by "%p"); orchestrator/stats_file.c keeps room for its temporary file. */
#define PATH_EXPANSION_BYTES 32

int tcm_validate_path(const struct tcm_schema_row *row, const char *word, struct tcm_validate_value *value)
{
	(void)row;
	size_t len = strlen(word);
	if (len == 0) {
		value->path = word;
		return 0;
	}
	if (word[0] != '/' || word[len - 1] == '/' || len + PATH_EXPANSION_BYTES >= TCM_CONFIG_PATH_MAX)
		return EINVAL;
	for (const char *percent = strchr(word, '%'); percent != NULL; percent = strchr(percent + 2, '%'))
		if (percent[1] != 'p' || strchr(percent + 2, '%') != NULL)
			return EINVAL;   /* %p, once: nothing else is expanded */
	value->path = word;
	return 0;
}

int tcm_validate_text(const struct tcm_schema_row *row, const char *text, struct tcm_validate_value *value)
{
	switch (row->type) {
	case TCM_SCHEMA_INT: {
		/* Decimal only, the whole string, no sign games: strtoll alone takes " 12", "+12", "12abc" prefixes. */
		if (text[0] == '\0' || !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
			return EINVAL;
		char *end;
		errno = 0;
		long long integer = strtoll(text, &end, 10);
		if (errno != 0 || *end != '\0')
			return EINVAL;
		return tcm_validate_int(row, integer, value);
	}
	case TCM_SCHEMA_BOOL:
		if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0)
			value->boolean = true;
		else if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0)
			value->boolean = false;
		else
			return EINVAL;
		return 0;
	case TCM_SCHEMA_CHOICE:
	case TCM_SCHEMA_STATS_OUTPUT:
		return tcm_validate_word(row, text, value);
	case TCM_SCHEMA_PATH:
		return tcm_validate_path(row, text, value);
	}
	return EINVAL;
}

void tcm_validate_store(struct tcm_config *config, const struct tcm_schema_row *row,
			const struct tcm_validate_value *value, struct tcm_config_origin origin)
{
	char *field = (char *)config + row->offset;
	switch (row->type) {
	case TCM_SCHEMA_INT:
		memcpy(field, &value->integer, sizeof value->integer);
		break;
	case TCM_SCHEMA_BOOL:
		memcpy(field, &value->boolean, sizeof value->boolean);
		break;
	case TCM_SCHEMA_CHOICE:
		memcpy(field, &value->choice, sizeof value->choice);
		break;
	case TCM_SCHEMA_STATS_OUTPUT:
		memcpy(field, &value->choice, sizeof value->choice);
		/* is_stats_path bounded the length below TCM_CONFIG_PATH_MAX */
		tcm_config_set_path(config, TCM_CONFIG_PATH_STATS_ON_EXIT,
				    value->choice == TCM_CONFIG_STATS_TO_FILE ? value->path : "");
		break;
	case TCM_SCHEMA_PATH:
		/* tcm_validate_path bounded the length below TCM_CONFIG_PATH_MAX */
		tcm_config_set_path(config, row->path, value->path);
		break;
	}
	config->origin[row->key_id] = origin;
}

void tcm_validate_expected(const struct tcm_schema_row *row, char *buf, size_t size)
{
	switch (row->type) {
	case TCM_SCHEMA_INT:
		if (row->multiple_of > 1)
			snprintf(buf, size, "a multiple of %lld from %lld to %lld (%s)",
				 (long long)row->multiple_of, (long long)row->min, (long long)row->max,
				 row->unit);
		else
			snprintf(buf, size, "an integer from %lld to %lld (%s)",
				 (long long)row->min, (long long)row->max, row->unit);
		return;
	case TCM_SCHEMA_BOOL:
		snprintf(buf, size, "true or false");
		return;
	case TCM_SCHEMA_CHOICE:
	case TCM_SCHEMA_STATS_OUTPUT: {
		size_t used = 0;
		buf[0] = '\0';
		for (int i = 0; row->choices[i] != NULL && used < size; i++) {
			bool last = row->choices[i + 1] == NULL && row->type == TCM_SCHEMA_CHOICE;
			used += (size_t)snprintf(buf + used, size - used, "%s\"%s\"",
						 i == 0 ? "" : last ? " or " : ", ", row->choices[i]);
		}
		if (row->type == TCM_SCHEMA_STATS_OUTPUT && used < size)
			snprintf(buf + used, size - used, " or an absolute path ending in .json or .prom");
		return;
	}
	case TCM_SCHEMA_PATH:
		snprintf(buf, size, "\"\" or an absolute path of a file (%%p, once, for the pid)");
		return;
	}
}

/* Edit distance (insert, delete, substitute) of two strings shorter than SUGGEST_NAME_MAX. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[SUGGEST_NAME_MAX + 1];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diagonal = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t above = row[j];
			size_t best = diagonal + (a[i - 1] != b[j - 1]);
			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diagonal = above;
		}
	}
	return row[lb];
}

const struct tcm_schema_row *tcm_validate_suggest(const char *name)
{
	size_t len = strlen(name);
	if (len >= SUGGEST_NAME_MAX)
		return NULL;
	const char *dot = strchr(name, '.');
	const struct tcm_schema_row *best = NULL;
	size_t best_distance = len / 3 > 2 ? len / 3 : 2;  /* further than this is no typo */
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++) {
		const struct tcm_schema_row *row = &tcm_schema[i];
		/* a bare key, or the right key in the wrong group, counts as one edit away */
		const char *bare = dot != NULL ? dot + 1 : name;
		size_t distance = strcmp(bare, row->key) == 0 ? 1 : edit_distance(name, row->name);
		if (dot == NULL) {
			size_t bare_distance = edit_distance(name, row->key) + 1;
			if (bare_distance < distance)
				distance = bare_distance;
		}
		if (distance <= best_distance && (best == NULL || distance < best_distance)) {
			best = row;
			best_distance = distance;
		}
	}
	return best;
}

int tcm_validate_cross_keys(struct tcm_config *config, const struct tcm_config_sources *sources)
{
	if (config->exit.margin_ms < config->exit.deadline_ms)
		return 0;
	const struct tcm_schema_row *row = &tcm_schema[TCM_CONFIG_EXIT_MARGIN_MS];
	struct tcm_config_origin origin = config->origin[TCM_CONFIG_EXIT_MARGIN_MS];
	int errors = 0;
	if (origin.source == TCM_CONFIG_FROM_FILE) {
		tcm_validate_report(sources, "%s:%u: %s: expected less than exit.deadline_ms (%lld), got %lld",
				    tcm_config_path(config, TCM_CONFIG_PATH_FILE), origin.line, row->name,
				    (long long)config->exit.deadline_ms, (long long)config->exit.margin_ms);
		errors = 1;
	} else if (origin.source == TCM_CONFIG_FROM_ENV) {
		tcm_validate_report(sources, "%s: expected less than exit.deadline_ms (%lld), got %lld",
				    row->env, (long long)config->exit.deadline_ms,
				    (long long)config->exit.margin_ms);
		errors = 1;
	}
	int64_t half_deadline_ms = config->exit.deadline_ms / 2;
	config->exit.margin_ms = row->default_value < half_deadline_ms ? row->default_value : half_deadline_ms;
	config->origin[TCM_CONFIG_EXIT_MARGIN_MS] = (struct tcm_config_origin){ TCM_CONFIG_FROM_DEFAULT, 0 };
	return errors;
}

void tcm_validate_report(const struct tcm_config_sources *sources, const char *format, ...)
{
	if (sources->error == NULL)
		return;
	char message[1024];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof message, format, args);
	va_end(args);
	/* one error, one line: values quoted from the file or the environment may hold
	 * newlines (libconfig's "\n") or terminal escapes */
	for (char *c = message; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	sources->error(sources->error_context, message);
}
