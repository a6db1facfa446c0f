/* conf/validate.h - value rules of tcm.conf keys and the wording of configuration errors,
 * shared by the file loader (load.c) and the environment overrides (env.c), so a value means
 * the same thing, and is refused with the same words, wherever it comes from. */
#ifndef TCM_CONF_VALIDATE_H
#define TCM_CONF_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "schema.h"

/* A checked value for one row; which member counts depends on the row's type. */
struct tcm_validate_value {
	int64_t     integer;  /* TCM_SCHEMA_INT */
	bool        boolean;  /* TCM_SCHEMA_BOOL */
	int         choice;   /* TCM_SCHEMA_CHOICE, TCM_SCHEMA_STATS_OUTPUT: index (TO_JSON for a path) */
	const char *path;     /* STATS_OUTPUT with TO_FILE, PATH: borrowed, copied by store */
};

/* Each returns 0 and fills *value when the input is valid for row, else EINVAL.
 * int: row must be TCM_SCHEMA_INT. word: row must be CHOICE or STATS_OUTPUT.
 * text: any row; the environment's spelling (decimal integers, true/false/1/0, words). */
int tcm_validate_int(const struct tcm_schema_row *row, int64_t integer, struct tcm_validate_value *value);
int tcm_validate_word(const struct tcm_schema_row *row, const char *word, struct tcm_validate_value *value);
int tcm_validate_text(const struct tcm_schema_row *row, const char *text, struct tcm_validate_value *value);
/* path: row must be TCM_SCHEMA_PATH. */
int tcm_validate_path(const struct tcm_schema_row *row, const char *word, struct tcm_validate_value *value);

/* Writes a valid value into config's field for row and records where it came from. */
void tcm_validate_store(struct tcm_config *config, const struct tcm_schema_row *row,
			const struct tcm_validate_value *value, struct tcm_config_origin origin);

/* What row accepts, for "expected <this>, got ...": e.g.
 * "an integer from 1 to 600000 (milliseconds)" or "\"off\" or \"init\"". */
void tcm_validate_expected(const struct tcm_schema_row *row, char *buf, size_t size);

/* The key an unknown name was probably meant to be ("exit.dedline_ms" -> exit.deadline_ms,
 * "deadline_ms" -> exit.deadline_ms), or NULL when none is close. */
const struct tcm_schema_row *tcm_validate_suggest(const char *name);

/* Rules between keys, run last: exit.margin_ms < exit.deadline_ms. When it fails the margin
 * becomes min(its default, deadline / 2): silently if the margin was left at its default, with
 * an error naming where it was set otherwise. Returns the number of errors reported. */
int tcm_validate_cross_keys(struct tcm_config *config, const struct tcm_config_sources *sources);

/* Formats one message (printf-style, no "tcm: " prefix, no newline) and hands it to
 * sources->error. Control characters become '?', so a message is one line; messages longer
 * than 1023 bytes are cut. */
void tcm_validate_report(const struct tcm_config_sources *sources, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#endif
