/* conf/env.h - TCM_<GROUP>_<KEY> environment overrides, read through the injectable getenv of
 * struct tcm_config_sources (secure_getenv in production: nothing in setuid/setgid programs). */
#ifndef TCM_CONF_ENV_H
#define TCM_CONF_ENV_H

#include "config.h"

/* For every key whose variable is set: a valid value replaces the key's value (origin ENV); an
 * invalid one is reported ("TCM_EXIT_DEADLINE_MS: expected ..., got \"abc\"") and ignored, so
 * the key keeps its value from the file or default. Returns the number of errors reported. */
int tcm_env_apply(struct tcm_config *config, const struct tcm_config_sources *sources);

/* Reports each variable of sources->environment whose name starts with TCM_ but that tcm does
 * not read ("TCM_EXIT_DEDLINE_MS: no such tcm variable, ignored (did you mean
 * TCM_EXIT_DEADLINE_MS?)"): a misspelt override would otherwise be silently without effect.
 * tcm's variables are the keys' TCM_<GROUP>_<KEY>, TCM_CONF, TCM_LIB (tcmctl run) and the test
 * suites' TCM_TESTING_*. Returns the number of errors reported. */
int tcm_env_report_unknown(const struct tcm_config_sources *sources);

#endif
