/* conf/libconfig_functions.c - see libconfig_functions.h. TCM_LIBCONFIG_SONAME is the SONAME of
 * the libconfig the build found (conf/CMakeLists.txt reads it from the library), so the header
 * the structures come from and the library the functions come from are one version. */
#define _GNU_SOURCE
#include "libconfig_functions.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static struct tcm_libconfig_functions functions;
static const struct tcm_libconfig_functions *loaded;   /* written once, under once */
static char failure[256];                              /* why it could not be loaded */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *resolve(void *library, const char *name)
{
	void *address = dlsym(library, name);
	if (address == NULL && failure[0] == '\0')
		snprintf(failure, sizeof failure, "%s has no %s", TCM_LIBCONFIG_SONAME, name);
	return address;
}

static void load(void)
{
	void *library = dlopen(TCM_LIBCONFIG_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (library == NULL) {
		const char *error = dlerror();
		snprintf(failure, sizeof failure, "%s", error != NULL ? error : "dlopen " TCM_LIBCONFIG_SONAME " failed");
		return;
	}
	functions.init = (void (*)(config_t *))resolve(library, "config_init");
	functions.destroy = (void (*)(config_t *))resolve(library, "config_destroy");
	functions.read_string = (int (*)(config_t *, const char *))resolve(library, "config_read_string");
	functions.length = (int (*)(const config_setting_t *))resolve(library, "config_setting_length");
	functions.get_elem =
		(config_setting_t * (*)(const config_setting_t *, unsigned int)) resolve(library, "config_setting_get_elem");
	functions.get_int64 = (long long (*)(const config_setting_t *))resolve(library, "config_setting_get_int64");
	functions.get_float = (double (*)(const config_setting_t *))resolve(library, "config_setting_get_float");
	functions.get_bool = (int (*)(const config_setting_t *))resolve(library, "config_setting_get_bool");
	functions.get_string = (const char *(*)(const config_setting_t *))resolve(library, "config_setting_get_string");
	if (failure[0] == '\0')
		loaded = &functions;
}

const struct tcm_libconfig_functions *tcm_libconfig_functions(char *why, size_t why_size)
{
	pthread_once(&once, load);
	if (loaded == NULL)
		snprintf(why, why_size, "%s", failure);
	return loaded;
}
