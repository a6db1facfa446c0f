/* tools/stats.c - tcmctl stats FILE|PID: a statistics report tcm wrote (stats.on_exit's file or
 * the live stats.path), shown for people as the text malloc_stats prints;
 * tcmctl stats --plot REPORT.json OUT.png: the exit report's shutdown timeline drawn by gnuplot.
 * For a PID, the live file of that running process: stats.path as the process reads it (its
 * TCM_CONF and TCM_STATS_* from /proc/PID/environ, then the file), %p being the PID.
 * JSON and the Prometheus text format are read back by report_read.h; a text report is shown as
 * it is. */
#define _GNU_SOURCE
#include "tcmctl.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "report_read.h"

#define ENVIRON_BYTES (256 * 1024)

static char process_environment[ENVIRON_BYTES];
static size_t process_environment_bytes;

/* getenv over the environment read from /proc/PID/environ. */
static const char *process_getenv(const char *name)
{
	size_t name_length = strlen(name);
	for (size_t at = 0; at < process_environment_bytes; at += strlen(process_environment + at) + 1)
		if (strncmp(process_environment + at, name, name_length) == 0 &&
		    process_environment[at + name_length] == '=')
			return process_environment + at + name_length + 1;
	return NULL;
}

static void print_error(void *context, const char *message)
{
	(void)context;
	fprintf(stderr, "tcmctl: stats: %s\n", message);
}

/* The live file of process pid into path (PATH_MAX bytes). Returns 0, or 1 after an error line. */
static int live_path_of(long pid, char *path)
{
	char environ_path[64];
	snprintf(environ_path, sizeof environ_path, "/proc/%ld/environ", pid);
	FILE *from = fopen(environ_path, "re");
	if (from == NULL) {
		fprintf(stderr, "tcmctl: stats: cannot read %s: %s\n", environ_path, strerror(errno));
		return 1;
	}
	process_environment_bytes = fread(process_environment, 1, sizeof process_environment - 1, from);
	process_environment[process_environment_bytes] = '\0';
	fclose(from);
	struct tcm_config config;
	const struct tcm_config_sources sources = {
		.getenv   = process_getenv,
		.etc_path = TCM_CONFIG_ETC_PATH,
		.error    = print_error,
	};
	tcm_config_load(&config, &sources);
	if (!tcm_config_has_live_stats(&config)) {
		fprintf(stderr, "tcmctl: stats: process %ld writes no live statistics (stats.interval_ms and "
			"stats.path are not both set for it)\n", pid);
		return 1;
	}
	const char *pattern = tcm_config_path(&config, TCM_CONFIG_PATH_STATS_LIVE);
	if (!tcm_config_stats_path_of(pattern, (uint64_t)pid, path, PATH_MAX)) {
		fprintf(stderr, "tcmctl: stats: the live file of process %ld is too long a path\n", pid);
		return 1;
	}
	return 0;
}

/* Shows the report in from, by what its first line says it is: a text report as it is, JSON
 * or Prometheus as the same text (report_read.h). Returns 0, or 1 for a file tcm did not write. */
static int show_report(FILE *from, const char *path)
{
	char line[4096];
	if (fgets(line, sizeof line, from) == NULL) {
		fprintf(stderr, "tcmctl: stats: %s is empty\n", path);
		return 1;
	}
	if (strncmp(line, "tcm ", 4) == 0) {
		do
			fputs(line, stdout);
		while (fgets(line, sizeof line, from) != NULL);
		return 0;
	}
	static struct tcmctl_report report;
	char error[320];
	if (!tcmctl_report_read(from, line, &report, error, sizeof error)) {
		fprintf(stderr, "tcmctl: stats: %s is not a report tcm wrote (%s)\n", path, error);
		return 1;
	}
	tcmctl_report_print_text(&report, stdout);
	return 0;
}

/* The exit report's timeline (a JSON report with samples: stats.on_exit after a shutdown) as a
 * PNG: resident and released MiB against seconds since T0, the deadline marked. gnuplot draws
 * it, from a data file and a script in a temporary directory. Returns 0, or 1 after an error. */
static int plot(const char *report_path, const char *png_path)
{
	FILE *from = fopen(report_path, "re");
	if (from == NULL) {
		fprintf(stderr, "tcmctl: stats: cannot read %s: %s\n", report_path, strerror(errno));
		return 1;
	}
	char directory[] = "/tmp/tcmctl-plot.XXXXXX";
	if (mkdtemp(directory) == NULL) {
		fprintf(stderr, "tcmctl: stats: mkdtemp: %s\n", strerror(errno));
		fclose(from);
		return 1;
	}
	char data_path[64], script_path[64];
	snprintf(data_path, sizeof data_path, "%s/timeline.tsv", directory);
	snprintf(script_path, sizeof script_path, "%s/timeline.gp", directory);
	FILE *data = fopen(data_path, "we");
	double deadline_s = 0, last_s = 0;
	size_t samples = 0;
	bool is_in_timeline = false;
	char line[256], trigger[32] = "?";
	while (data != NULL && fgets(line, sizeof line, from) != NULL) {
		double t, resident, released;
		if (sscanf(line, "  \"timeline_deadline_seconds\": %lf", &deadline_s) == 1)
			continue;
		if (sscanf(line, "  \"shutdown_trigger\": \"%31[a-z]\"", trigger) == 1)
			continue;
		if (strncmp(line, "  \"timeline\": [", 15) == 0)
			is_in_timeline = true;
		else if (is_in_timeline && sscanf(line, " [%lf, %lf, %lf]", &t, &resident, &released) == 3)
		{
			fprintf(data, "%.9f\t%.3f\t%.3f\n", t, resident / 1048576, released / 1048576);
			samples++;
			last_s = t > last_s ? t : last_s;
		}
		else if (is_in_timeline && strncmp(line, "  ]", 3) == 0)
			is_in_timeline = false;
	}
	fclose(from);
	if (data != NULL)
		fclose(data);
	int status = 1;
	if (samples == 0) {
		fprintf(stderr, "tcmctl: stats: %s has no timeline (an exit report, stats.on_exit = \"/path.json\", "
			"of a process that shut down)\n", report_path);
	} else {
		FILE *script = fopen(script_path, "we");
		if (script != NULL) {
			fprintf(script,
				"set terminal pngcairo size 1000,520 noenhanced font \",10\"\n"
				"set output '%s'\n"
				"set title 'tcm shutdown (trigger: %s): resident and released memory after T0'\n"
				"set xlabel 'seconds since the shutdown began (T0)'\n"
				"set ylabel 'MiB'\n"
				"set grid\n"
				"set key outside bottom center horizontal\n"
				"set xrange [0:%.6f]\n"
				"set arrow from %.6f, graph 0 to %.6f, graph 1 nohead dashtype 2 linecolor rgb 'red'\n"
				"set label 'deadline (exit.deadline_ms)' at %.6f, graph 0.96 right offset -0.5,0 textcolor rgb 'red'\n"
				"plot '%s' using 1:2 with linespoints pointsize 0.4 linewidth 2 title 'resident (VmRSS)', \\\n"
				"     '%s' using 1:3 with linespoints pointsize 0.4 linewidth 2 title 'released since T0'\n",
				png_path, trigger, 1.05 * (deadline_s > last_s ? deadline_s : last_s), deadline_s, deadline_s,
				deadline_s, data_path, data_path);
			fclose(script);
			char *argv[] = { "gnuplot", script_path, NULL };
			pid_t child;
			int wait_status;
			if (posix_spawnp(&child, "gnuplot", NULL, NULL, argv, environ) != 0) {
				fprintf(stderr, "tcmctl: stats: cannot run gnuplot (apt-get install gnuplot-nox)\n");
			} else if (waitpid(child, &wait_status, 0) == child && WIFEXITED(wait_status) &&
				   WEXITSTATUS(wait_status) == 0) {
				status = 0;
			} else {
				fprintf(stderr, "tcmctl: stats: gnuplot failed on %s\n", script_path);
			}
		}
	}
	unlink(data_path);
	unlink(script_path);
	rmdir(directory);
	return status;
}

int tcmctl_stats(int argc, char **argv)
{
	static const struct option options[] = {
		{ "plot", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *values[2] = { NULL, NULL };
	int first;
	bool is_plot = false;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		is_plot |= strcmp(argv[i], "--plot") == 0 || strcmp(argv[i], "-p") == 0;
	enum tcmctl_parsed parsed = tcmctl_parse_options(argc, argv, "+:hp", options, values, &first);
	if (parsed != TCMCTL_PARSED_OK)
		return parsed == TCMCTL_PARSED_HELP ? tcmctl_usage(stdout, 0) : 2;
	if (is_plot) {
		if (argc - first != 2)
			return tcmctl_usage_error("stats --plot: give the report and the PNG to write");
		return plot(argv[first], argv[first + 1]);
	}
	if (first >= argc)
		return tcmctl_usage_error("stats: no FILE or PID");
	if (argc - first > 1)
		return tcmctl_usage_error("stats: unexpected argument '%s'", argv[first + 1]);
	const char *target = argv[first];
	char path[PATH_MAX];
	char *end;
	long pid = strtol(target, &end, 10);
	if (*target != '\0' && *end == '\0' && pid > 0) {
		if (live_path_of(pid, path) != 0)
			return 1;
	} else {
		snprintf(path, sizeof path, "%s", target);
	}
	FILE *from = fopen(path, "re");
	if (from == NULL) {
		fprintf(stderr, "tcmctl: stats: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	int status = show_report(from, path);
	fclose(from);
	return status;
}
