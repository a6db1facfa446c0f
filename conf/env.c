/* conf/env.c - TCM_<GROUP>_<KEY> overrides (see env.h). One getenv per schema row; the
 * variable names come from the schema, so no other spelling is read, and any other TCM_ name in
 * the environment is reported rather than silently without effect. */
#include "env.h"

#include "schema.h"
#include "validate.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int tcm_env_apply(struct tcm_config *config, const struct tcm_config_sources *sources)
{
	int errors = 0;
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++) {
		const struct tcm_schema_row *row = &tcm_schema[i];
		const char *text = sources->getenv(row->env);
		if (text == NULL)
			continue;
		struct tcm_validate_value value;
		if (tcm_validate_text(row, text, &value) == 0) {
			tcm_validate_store(config, row, &value,
					   (struct tcm_config_origin){ TCM_CONFIG_FROM_ENV, 0 });
			continue;
		}
		char expected[256];
		tcm_validate_expected(row, expected, sizeof expected);
		tcm_validate_report(sources, "%s: expected %s, got \"%.200s\"", row->env, expected, text);
		errors++;
	}
	return errors;
}

static bool is_name(const char *name, size_t length, const char *known)
{
	return strlen(known) == length && strncmp(name, known, length) == 0;
}

static bool is_tcm_variable(const char *name, size_t length)
{
	if (is_name(name, length, "TCM_CONF") || is_name(name, length, "TCM_LIB") ||
	    (length > 12 && strncmp(name, "TCM_TESTING_", 12) == 0))
		return true;
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++)
		if (is_name(name, length, tcm_schema[i].env))
			return true;
	return false;
}

int tcm_env_report_unknown(const struct tcm_config_sources *sources)
{
	if (sources->environment == NULL)
		return 0;
	int errors = 0;
	for (char *const *entry = sources->environment; *entry != NULL; entry++) {
		const char *name = *entry;
		size_t length = strcspn(name, "=");
		if (strncmp(name, "TCM_", 4) != 0 || is_tcm_variable(name, length))
			continue;
		/* TCM_EXIT_DEDLINE_MS is the key exit.dedline_ms: groups have no '_'. */
		char key[64];
		size_t key_length = 0;
		bool has_dot = false;
		for (size_t i = 4; i < length && key_length + 1 < sizeof key; i++) {
			char c = (char)tolower((unsigned char)name[i]);
			if (c == '_' && !has_dot && key_length != 0) {
				c = '.';
				has_dot = true;
			}
			key[key_length++] = c;
		}
		key[key_length] = '\0';
		const struct tcm_schema_row *near = length - 4 < sizeof key ? tcm_validate_suggest(key) : NULL;
		if (near != NULL)
			tcm_validate_report(sources, "%.*s: no such tcm variable, ignored (did you mean %s?)",
					    (int)length, name, near->env);
		else
			tcm_validate_report(sources, "%.*s: no such tcm variable, ignored", (int)length, name);
		errors++;
	}
	return errors;
}
