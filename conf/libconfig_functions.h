/* conf/libconfig_functions.h - the libconfig functions load.c calls, from libconfig's shared
 * library loaded with dlopen when there is a file to parse, so that a process with no tcm.conf
 * never maps it (its start-up pays for no library it does not use, as for libsystemd:
 * orchestrator/notify.c). libconfig.h's accessor macros (config_setting_type, _name,
 * _source_line, config_root_setting, config_error_*) read the structures directly and need
 * nothing from here.
 * Never: unload the library (settings it allocated may outlive a call); abort when it is
 * missing (the caller reports it and uses defaults). */
#ifndef TCM_CONF_LIBCONFIG_FUNCTIONS_H
#define TCM_CONF_LIBCONFIG_FUNCTIONS_H

#include <stddef.h>

#include <libconfig.h>

struct tcm_libconfig_functions {
	void (*init)(config_t *config);
	void (*destroy)(config_t *config);
	int (*read_string)(config_t *config, const char *text);
	int (*length)(const config_setting_t *setting);
	config_setting_t *(*get_elem)(const config_setting_t *setting, unsigned int index);
	long long (*get_int64)(const config_setting_t *setting);
	double (*get_float)(const config_setting_t *setting);
	int (*get_bool)(const config_setting_t *setting);
	const char *(*get_string)(const config_setting_t *setting);
};

/* The functions, loaded on the first call (thread-safe); NULL when the library or one of them
 * cannot be had, with the reason in why (why_size bytes). */
const struct tcm_libconfig_functions *tcm_libconfig_functions(char *why, size_t why_size);

#endif
