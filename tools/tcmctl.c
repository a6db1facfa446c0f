/* tools/tcmctl.c - the operator's command for tcm: check a tcm.conf, show the effective
 * configuration, list the keys, run a program under libtcm.so (and dropin, in dropin.c), with
 * the help text and the option parsing they share (tcmctl.h). Reads the configuration with
 * conf/ (the code the shim runs), so its verdict is the one a process would reach.
 * Exit status: 0 success, 1 invalid configuration or failed action, 2 usage error; run
 * becomes the program (127 when it cannot be executed). */
#define _GNU_SOURCE  /* secure_getenv, realpath, setenv */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "schema.h"
#include "tcmctl.h"
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
	"    tcmctl dropin [-c FILE] [--lib PATH] [--properties FILE] UNIT\n"
	"    tcmctl stats FILE|PID\n"
	"    tcmctl stats --plot REPORT.json OUT.png\n"
	"    tcmctl --help | --version\n"
	"    (each command also takes --help)\n"
	"\n"
	"DESCRIPTION\n"
	"    check  Reads FILE (default: the file a process would read, $TCM_CONF or else\n"
	"           /etc/tcm.conf) and the TCM_<GROUP>_<KEY> overrides as libtcm.so does, prints\n"
	"           each error as FILE:LINE: MESSAGE on stderr and the effective configuration\n"
	"           on stdout. A TCM_ variable that is none of tcm's is an error too. Exits 0\n"
	"           when there is no error, 1 otherwise.\n"
	"    show   Prints the effective configuration from all sources as tcm.conf text, each\n"
	"           key commented with where its value came from: default, FILE:LINE, or the\n"
	"           environment variable. Errors go to stderr; the exit status is 0.\n"
	"    keys   Prints the table of keys (markdown): type, default, range, unit, variable\n"
	"           and meaning.\n"
	"    run    Executes PROGRAM with LD_PRELOAD=libtcm.so (placed before any LD_PRELOAD\n"
	"           already set) and, with -c FILE, TCM_CONF=FILE made absolute. libtcm.so is\n"
	"           --lib PATH, else $TCM_LIB, else the installed one,\n"
	"           <directory of tcmctl>/" TCMCTL_LIB_FROM_BINDIR "/libtcm.so.\n"
	"    dropin Prints a systemd drop-in that runs UNIT under libtcm.so (found as for run),\n"
	"           for /etc/systemd/system/UNIT.d/tcm.conf. It is worked out from the unit's own\n"
	"           settings (systemctl show, or --properties FILE of Key=Value lines) and only\n"
	"           adds: LD_PRELOAD goes before the unit's own; NotifyAccess=main only where the\n"
	"           unit has none (Type=simple, exec, oneshot), so that STOPPING=1, STATUS= and\n"
	"           EXTEND_TIMEOUT_USEC= reach systemd; TimeoutStopSec only where the unit's is\n"
	"           shorter than exit.deadline_ms (from -c FILE, else as a process reads it) plus\n"
	"           a second. Type=forking units get a note: tcm speaks only from the process\n"
	"           systemd started, which a forking daemon's parent is.\n"
	"    stats  Shows a statistics report tcm wrote (stats.on_exit's file or the live\n"
	"           stats.path; JSON, Prometheus text or text) as the text malloc_stats\n"
	"           prints: the figures under a heading per window (now, the process's life,\n"
	"           since T0), bytes also in MiB, then a table of the size classes in use.\n"
	"           For a PID, the live file of that running process: stats.path\n"
	"           as it reads it (its environment, then its tcm.conf), %p being the PID.\n"
	"           --plot draws an exit report's shutdown timeline (stats.on_exit = a .json\n"
	"           path, after a shutdown) with gnuplot: resident and released MiB against\n"
	"           seconds since T0, the deadline marked.\n"
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

int tcmctl_usage(FILE *to, int status)
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

/* A string as tcm.conf text: quoted, with " and \ escaped. */
static void print_quoted(const char *word)
{
	putchar('"');
	for (const char *c = word; *c != '\0'; c++) {
		if (*c == '"' || *c == '\\')
			putchar('\\');
		putchar(*c);
	}
	putchar('"');
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
		print_quoted(row->type == TCM_SCHEMA_STATS_OUTPUT && index == TCM_CONFIG_STATS_TO_FILE
			     ? tcm_config_path(config, TCM_CONFIG_PATH_STATS_ON_EXIT) : row->choices[index]);
		return;
	case TCM_SCHEMA_PATH:
		print_quoted(tcm_config_path(config, row->path));
		return;
	}
}

static void print_config(const struct tcm_config *config, const char *file_role)
{
	const char *file = tcm_config_path(config, TCM_CONFIG_PATH_FILE);
	if (file[0] != '\0')
		printf("# effective tcm configuration; file %s (%s)\n", file, file_role);
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
			printf(";  # %s:%u\n", file, origin.line);
		else if (origin.source == TCM_CONFIG_FROM_ENV)
			printf(";  # %s\n", row->env);
		else
			printf(";  # default\n");
	}
	printf("};\n");
}

int tcmctl_load_config(const char *file, struct tcm_config *config)
{
	const struct tcm_config_sources sources = {
		.getenv      = tcmctl_getenv,
		.file        = file,
		.etc_path    = TCM_CONFIG_ETC_PATH,
		.error       = print_error,
		.environment = environ,
	};
	return tcm_config_load(config, &sources);
}

/* check and show: load as a process would (file given explicitly for check FILE). */
static int load_and_print(const char *file)
{
	struct tcm_config config;
	int errors = tcmctl_load_config(file, &config);
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
				printf(", /absolute/path.json, /absolute/path.prom");
			printf(" | -");
			break;
		case TCM_SCHEMA_PATH:
			printf("string | \"\" | \"\", /absolute/path (%%p: the pid) | -");
			break;
		}
		printf(" | `%s` | %s |\n", row->env, row->doc);
	}
	return 0;
}

int tcmctl_usage_error(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("tcmctl: ", stderr);
	vfprintf(stderr, format, args);
	va_end(args);
	fputs("\nTry 'tcmctl --help' for more information.\n", stderr);
	return 2;
}

enum tcmctl_parsed tcmctl_parse_options(int argc, char **argv, const char *short_options,
					 const struct option *long_options, const char **values, int *operands)
{
	optind = 1;
	opterr = 0;
	for (;;) {
		int index = -1;
		int c = getopt_long(argc, argv, short_options, long_options, &index);
		if (c == -1)
			break;
		if (c == 'h')
			return TCMCTL_PARSED_HELP;
		if (c == '?') {
			if (optopt != 0)   /* a short option, maybe in a cluster (-xc) */
				tcmctl_usage_error("%s: unknown option '-%c'", argv[0], optopt);
			else
				tcmctl_usage_error("%s: unknown option '%s'", argv[0], argv[optind - 1]);
			return TCMCTL_PARSED_ERROR;
		}
		if (c == ':') {
			tcmctl_usage_error("%s: option '%s' needs an argument", argv[0], argv[optind - 1]);
			return TCMCTL_PARSED_ERROR;
		}
		for (int i = 0; long_options[i].name != NULL; i++)
			if (long_options[i].val == c)
				values[i] = optarg;
	}
	*operands = optind;
	return TCMCTL_PARSED_OK;
}

static const struct option help_only[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int tcmctl_find_lib(const char *lib, char *lib_path)
{
	if (lib == NULL)
		lib = getenv("TCM_LIB");
	char installed[PATH_MAX];
	if (lib == NULL || lib[0] == '\0') {
		ssize_t len = readlink("/proc/self/exe", installed, sizeof installed - 1);
		installed[len > 0 ? len : 0] = '\0';
		char *slash = strrchr(installed, '/');
		if (slash != NULL)
			snprintf(slash, sizeof installed - (size_t)(slash - installed),
				 "/%s/libtcm.so", TCMCTL_LIB_FROM_BINDIR);
		lib = installed;
	}
	if (realpath(lib, lib_path) == NULL || access(lib_path, R_OK) != 0) {
		fprintf(stderr, "tcmctl: cannot read libtcm.so at %s: %s (use --lib PATH or TCM_LIB)\n",
			lib, strerror(errno));
		return 1;
	}
	return 0;
}

static int run(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "lib", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *values[3] = { NULL, NULL, NULL };
	int first;
	enum tcmctl_parsed parsed = tcmctl_parse_options(argc, argv, "+:hc:l:", options, values, &first);
	if (parsed != TCMCTL_PARSED_OK)
		return parsed == TCMCTL_PARSED_HELP ? tcmctl_usage(stdout, 0) : 2;
	if (first == 1 || strcmp(argv[first - 1], "--") != 0)
		return tcmctl_usage_error("run: put -- before the program (tcmctl run [-c FILE] [--lib PATH] -- PROGRAM)");
	if (first >= argc)
		return tcmctl_usage_error("run: no program after --");
	const char *conf = values[0];
	const char *lib = values[1];
	char **program = argv + first;

	char lib_path[PATH_MAX], conf_path[PATH_MAX];
	if (tcmctl_find_lib(lib, lib_path) != 0)
		return 1;
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

/* check, show and keys: --help, then at most max_operands operands. Returns the first operand's
 * index, or -1 (help printed, status 0 in *status) or -2 (usage error, status 2). */
static int simple_command(int argc, char **argv, int max_operands, int *status)
{
	const char *values[1];
	int first;
	enum tcmctl_parsed parsed = tcmctl_parse_options(argc, argv, "+:h", help_only, values, &first);
	if (parsed != TCMCTL_PARSED_OK) {
		*status = parsed == TCMCTL_PARSED_HELP ? tcmctl_usage(stdout, 0) : 2;
		return -1;
	}
	if (argc - first > max_operands) {
		*status = tcmctl_usage_error("%s: unexpected argument '%s'", argv[0], argv[first + max_operands]);
		return -1;
	}
	return first;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return tcmctl_usage_error("no command (check, show, keys, run, dropin or stats)");
	const char *command = argv[1];
	bool is_option = command[0] == '-';
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0)
		return argc == 2 ? tcmctl_usage(stdout, 0) : tcmctl_usage_error("%s takes no arguments", command);
	if (strcmp(command, "--version") == 0) {
		if (argc != 2)
			return tcmctl_usage_error("--version takes no arguments");
		printf("tcmctl (tcm) %s\n", TCM_VERSION_STRING);
		return 0;
	}
	int status = 0;
	int first;
	if (strcmp(command, "check") == 0) {
		if ((first = simple_command(argc - 1, argv + 1, 1, &status)) < 0)
			return status;
		return load_and_print(first < argc - 1 ? argv[1 + first] : NULL) == 0 ? 0 : 1;
	}
	if (strcmp(command, "show") == 0) {
		if (simple_command(argc - 1, argv + 1, 0, &status) < 0)
			return status;
		load_and_print(NULL);
		return 0;
	}
	if (strcmp(command, "keys") == 0) {
		if (simple_command(argc - 1, argv + 1, 0, &status) < 0)
			return status;
		return print_keys();
	}
	if (strcmp(command, "run") == 0)
		return run(argc - 1, argv + 1);
	if (strcmp(command, "dropin") == 0)
		return tcmctl_dropin(argc - 1, argv + 1);
	if (strcmp(command, "stats") == 0)
		return tcmctl_stats(argc - 1, argv + 1);
	return tcmctl_usage_error(is_option ? "unknown option '%s'" : "unknown command '%s'", command);
}
