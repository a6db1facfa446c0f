/* conf/env.c - TCM_<GROUP>_<KEY> overrides (see env.h). One getenv per schema row; the
 * variable names come from the schema, so no other spelling is read. */
#include "env.h"

#include "schema.h"
#include "validate.h"

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
