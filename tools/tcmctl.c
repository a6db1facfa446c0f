/* tools/tcmctl.c - the operator's command for tcm: check a tcm.conf, show the effective
 * configuration, list the keys, run a program under libtcm.so. Reads the configuration with
 * conf/ (the code the shim runs), so its verdict is the one a process would reach.
 * Exit status: 0 success, 1 invalid configuration or failed action, 2 usage error; run
 * becomes the program (127 when it cannot be executed). */
#define _GNU_SOURCE  /* secure_getenv, realpath, setenv */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "schema.h"
#include "tcmctl_paths.h"

static const char usage_text[] =
	"NAME\n"
	"    tcmctl - check tcm.conf, show tcm's configuration, run a program under tcm\n"
	"\n"
	"SYNOPSIS\n"
	"    tcmctl check [FILE]\n"
	"    tcmctl show\n"
	"    tcmctl keys\n"
	"    tcmctl run [-c FILE] [--lib PATH] -- PROGRAM [ARGS...]\n"
	"    tcmctl --help\n"
	"\n"
	"DESCRIPTION\n"
	"    check  Reads FILE (default: the file a process would read, $TCM_CONF or else\n"
	"           /etc/tcm.conf) and the TCM_<GROUP>_<KEY> overrides as libtcm.so does, prints\n"
	"           each error as FILE:LINE: MESSAGE on stderr and the effective configuration\n"
	"           on stdout. Exits 0 when there is no error, 1 otherwise.\n"
	"    show   Prints the effective configuration from all sources as tcm.conf text, each\n"
	"           key commented with where its value came from: default, FILE:LINE, or the\n"
	"           environment variable. Errors go to stderr; the exit status is 0.\n"
	"    keys   Prints the table of keys (markdown): type, default, range, unit, variable\n"
	"           and meaning.\n"
	"    run    Executes PROGRAM with LD_PRELOAD=libtcm.so (placed before any LD_PRELOAD\n"
	"           already set) and, with -c FILE, TCM_CONF=FILE made absolute. libtcm.so is\n"
	"           --lib PATH, else $TCM_LIB, else the installed one,\n"
	"           <directory of tcmctl>/" TCMCTL_LIB_FROM_BINDIR "/libtcm.so.\n"
	"\n"
	"ENVIRONMENT\n"
	"    TCM_CONF             the configuration file (instead of /etc/tcm.conf)\n"
	"    TCM_<GROUP>_<KEY>    overrides one key, e.g. TCM_EXIT_DEADLINE_MS=1500\n"
	"    TCM_LIB              libtcm.so for tcmctl run\n"
	"    setuid and setgid programs ignore TCM_CONF and TCM_<GROUP>_<KEY>.\n"
	"\n"
	"EXIT STATUS\n"
	"    0 success; 1 invalid configuration, or run could not prepare the program;\n"
	"    2 usage error; run: the program's own status, 127 if it cannot be executed.\n"
	"\n"
	"FILES\n"
	"    " TCM_CONFIG_ETC_PATH "\n";

static int usage(FILE *to, int status)
{
	fputs(usage_text, to);
	return status;
}

static const char *tcmctl_getenv(const char *name)
{
	return secure_getenv(name);
}

static void print_error(void *context, const char *message)
{
	(void)context;
	fprintf(stderr, "%s\n", message);
}

/* A value as tcm.conf text; strings quoted with " and \ escaped. */
static void print_value(const struct tcm_config *config, const struct tcm_schema_row *row)
{
	const char *field = (const char *)config + row->offset;
	int index;
	switch (row->type) {
	case TCM_SCHEMA_INT:
		printf("%lld", (long long)*(const int64_t *)field);
		return;
	case TCM_SCHEMA_BOOL:
		printf("%s", *(const bool *)field ? "true" : "false");
		return;
	case TCM_SCHEMA_CHOICE:
	case TCM_SCHEMA_STATS_OUTPUT:
		memcpy(&index, field, sizeof index);
		const char *word = row->type == TCM_SCHEMA_STATS_OUTPUT && index == TCM_CONFIG_STATS_TO_JSON
				   ? config->stats.json_path : row->choices[index];
		putchar('"');
		for (const char *c = word; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				putchar('\\');
			putchar(*c);
		}
		putchar('"');
		return;
	}
}

static void print_config(const struct tcm_config *config, const char *file_role)
{
	if (config->file_path[0] != '\0')
		printf("# effective tcm configuration; file %s (%s)\n", config->file_path, file_role);
	else
		printf("# effective tcm configuration; no file read\n");
	printf("# precedence: TCM_<GROUP>_<KEY> variable, then file, then default\n");
	const char *group = NULL;
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++) {
		const struct tcm_schema_row *row = &tcm_schema[i];
		if (group == NULL || strcmp(group, row->group) != 0) {
			printf("%s%s: {\n", group == NULL ? "" : "};\n", row->group);
			group = row->group;
		}
		printf("  %s = ", row->key);
		print_value(config, row);
		struct tcm_config_origin origin = config->origin[i];
		if (origin.source == TCM_CONFIG_FROM_FILE)
			printf(";  # %s:%u\n", config->file_path, origin.line);
		else if (origin.source == TCM_CONFIG_FROM_ENV)
			printf(";  # %s\n", row->env);
		else
			printf(";  # default\n");
	}
	printf("};\n");
}

/* check and show: load as a process would (file given explicitly for check FILE). */
static int load_and_print(const char *file)
{
	struct tcm_config config;
	const struct tcm_config_sources sources = {
		.getenv   = tcmctl_getenv,
		.file     = file,
		.etc_path = TCM_CONFIG_ETC_PATH,
		.error    = print_error,
	};
	int errors = tcm_config_load(&config, &sources);
	const char *tcm_conf = tcmctl_getenv("TCM_CONF");
	print_config(&config, file != NULL ? "named on the command line"
			      : tcm_conf != NULL && tcm_conf[0] != '\0' ? "from TCM_CONF"
			      : "the system file");
	return errors;
}

static int print_keys(void)
{
	printf("| key | type | default | range | unit | variable | meaning |\n");
	printf("|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < TCM_CONFIG_KEY_COUNT; i++) {
		const struct tcm_schema_row *row = &tcm_schema[i];
		printf("| `%s` | ", row->name);
		switch (row->type) {
		case TCM_SCHEMA_INT:
			printf("integer | %lld | %lld..%lld", (long long)row->default_value,
			       (long long)row->min, (long long)row->max);
			if (row->multiple_of > 1)
				printf(", multiple of %lld", (long long)row->multiple_of);
			printf(" | %s", row->unit);
			break;
		case TCM_SCHEMA_BOOL:
			printf("boolean | %s | true, false | -", row->default_value ? "true" : "false");
			break;
		case TCM_SCHEMA_CHOICE:
		case TCM_SCHEMA_STATS_OUTPUT:
			printf("string | \"%s\" | ", row->choices[row->default_value]);
			for (int c = 0; row->choices[c] != NULL; c++)
				printf("%s\"%s\"", c == 0 ? "" : ", ", row->choices[c]);
			if (row->type == TCM_SCHEMA_STATS_OUTPUT)
				printf(", /absolute/path.json");
			printf(" | -");
			break;
		}
		printf(" | `%s` | %s |\n", row->env, row->doc);
	}
	return 0;
}

static int run(int argc, char **argv)
{
	const char *conf = NULL;
	const char *lib = NULL;
	int i = 0;
	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc)
			lib = argv[++i];
		else
			return usage(stderr, 2);
	}
	if (i + 1 >= argc)  /* no "--", or nothing after it */
		return usage(stderr, 2);
	char **program = argv + i + 1;

	if (lib == NULL)
		lib = getenv("TCM_LIB");
	char installed[PATH_MAX], lib_path[PATH_MAX], conf_path[PATH_MAX];
	if (lib == NULL || lib[0] == '\0') {
		/* the install tree's layout, wherever it was installed (cmake --install --prefix) */
		ssize_t len = readlink("/proc/self/exe", installed, sizeof installed - 1);
		installed[len > 0 ? len : 0] = '\0';
		char *slash = strrchr(installed, '/');
		if (slash != NULL)
			snprintf(slash, sizeof installed - (size_t)(slash - installed),
				 "/%s/libtcm.so", TCMCTL_LIB_FROM_BINDIR);
		lib = installed;
	}
	/* absolute paths: the program may change directory before it execs others */
	if (realpath(lib, lib_path) == NULL || access(lib_path, R_OK) != 0) {
		fprintf(stderr, "tcmctl: cannot read libtcm.so at %s: %s (use --lib PATH or TCM_LIB)\n",
			lib, strerror(errno));
		return 1;
	}
	if (conf != NULL && realpath(conf, conf_path) == NULL) {
		fprintf(stderr, "tcmctl: cannot read %s: %s\n", conf, strerror(errno));
		return 1;
	}

	const char *preload = getenv("LD_PRELOAD");
	char preload_value[2 * PATH_MAX];
	snprintf(preload_value, sizeof preload_value, "%s%s%s", lib_path,
		 preload != NULL && preload[0] != '\0' ? " " : "", preload != NULL ? preload : "");
	if (setenv("LD_PRELOAD", preload_value, 1) != 0 ||
	    (conf != NULL && setenv("TCM_CONF", conf_path, 1) != 0)) {
		fprintf(stderr, "tcmctl: setenv: %s\n", strerror(errno));
		return 1;
	}
	execvp(program[0], program);
	fprintf(stderr, "tcmctl: cannot execute %s: %s\n", program[0], strerror(errno));
	return 127;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr, 2);
	const char *command = argv[1];
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0)
		return argc == 2 ? usage(stdout, 0) : usage(stderr, 2);
	if (strcmp(command, "check") == 0 && argc <= 3)
		return load_and_print(argc == 3 ? argv[2] : NULL) == 0 ? 0 : 1;
	if (strcmp(command, "show") == 0 && argc == 2) {
		load_and_print(NULL);
		return 0;
	}
	if (strcmp(command, "keys") == 0 && argc == 2)
		return print_keys();
	if (strcmp(command, "run") == 0)
		return run(argc - 2, argv + 2);
	return usage(stderr, 2);
}
