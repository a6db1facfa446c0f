/* tests/unit/conf_fixture.h - doubles for the conf/ unit tests: a fake environment behind the
 * injectable getenv, an error sink that records messages, and temporary config files. */
#ifndef TCM_TESTS_UNIT_CONF_FIXTURE_H
#define TCM_TESTS_UNIT_CONF_FIXTURE_H

#include "unit.h"

#include <errno.h>
#include <stdlib.h>

#include "config.h"

#define FAKE_ENV_MAX 16
#define FAKE_ERRORS_MAX 32

struct fake_env_var {
	const char *name, *value;
};
static struct fake_env_var fake_env[FAKE_ENV_MAX];
static size_t              fake_env_count;
static char                fake_environ_text[FAKE_ENV_MAX][256];  /* "NAME=VALUE" */
static char               *fake_environ[FAKE_ENV_MAX + 1];        /* NULL-terminated */
static char                fake_errors[FAKE_ERRORS_MAX][1024];
static size_t              fake_error_count;
static char                fake_paths[8][64];  /* temporary files, removed by fake_reset */
static size_t              fake_path_count;

__attribute__((unused)) static void fake_setenv(const char *name, const char *value)
{
	assert_true(fake_env_count < FAKE_ENV_MAX);
	snprintf(fake_environ_text[fake_env_count], sizeof fake_environ_text[0], "%s=%s", name, value);
	fake_environ[fake_env_count] = fake_environ_text[fake_env_count];
	fake_environ[fake_env_count + 1] = NULL;
	fake_env[fake_env_count++] = (struct fake_env_var){ name, value };
}

static const char *fake_getenv(const char *name)
{
	for (size_t i = 0; i < fake_env_count; i++)
		if (fake_env[i].name != NULL && strcmp(fake_env[i].name, name) == 0)
			return fake_env[i].value;
	return NULL;
}

/* secure_getenv in a setuid or setgid program: nothing is set, whatever the environment says. */
__attribute__((unused)) static const char *fake_secure_getenv_setuid(const char *name)
{
	(void)name;
	return NULL;
}

static void fake_error(void *context, const char *message)
{
	assert_ptr_equal(context, &fake_error_count);
	assert_true(fake_error_count < FAKE_ERRORS_MAX);
	snprintf(fake_errors[fake_error_count++], sizeof fake_errors[0], "%s", message);
}

/* Sources as production builds them, but with the fakes and an /etc path that does not exist. */
static struct tcm_config_sources fake_sources(void)
{
	return (struct tcm_config_sources){
		.getenv        = fake_getenv,
		.etc_path      = "/nonexistent/tcm-unit-test/tcm.conf",
		.error         = fake_error,
		.error_context = &fake_error_count,
		.environment   = fake_environ,
	};
}

/* A temporary file holding text; the returned path lives until fake_reset. */
__attribute__((unused)) static const char *fake_file(const char *text)
{
	assert_true(fake_path_count < 8);
	char *path = fake_paths[fake_path_count++];
	snprintf(path, sizeof fake_paths[0], "/tmp/tcm-conf-test.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t len = strlen(text);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static int fake_reset(void **state)
{
	(void)state;
	for (size_t i = 0; i < fake_path_count; i++)
		unlink(fake_paths[i]);
	fake_path_count = fake_env_count = fake_error_count = 0;
	fake_environ[0] = NULL;
	return 0;
}

/* The recorded message i, after replacing the first occurrence of path with "FILE". */
__attribute__((unused)) static const char *fake_error_text(size_t i, const char *path)
{
	static char text[1024];
	assert_true(i < fake_error_count);
	const char *at = path != NULL ? strstr(fake_errors[i], path) : NULL;
	if (at == NULL)
		return fake_errors[i];
	snprintf(text, sizeof text, "%.*sFILE%s", (int)(at - fake_errors[i]), fake_errors[i],
		 at + strlen(path));
	return text;
}

#endif
