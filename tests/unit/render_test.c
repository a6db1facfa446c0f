/* tests/unit/render_test.c - the report formats (orchestrator/render.h) drawn from the one table
 * of figures: JSON and the Prometheus text format carry exactly the table's figures with the same
 * values, the Prometheus text is strict (HELP and TYPE before each sample, legal names, counters
 * ending in _total, one sample per name), nanoseconds come out as seconds, and a report that does
 * not fit is not handed out cut short. */
#include "unit.h"

#include "figures.h"
#include "render.h"

#include <ctype.h>
#include <stdlib.h>

#define REPORT_BYTES 16384

/* Every figure a different value, so a figure read from the wrong field shows. */
static struct tcm_stats distinct_stats(void)
{
	struct tcm_stats stats;
	memset(&stats, 0, sizeof stats);
	for (size_t i = 0; i < tcm_figure_count; i++)
		*(uint64_t *)((char *)&stats + tcm_figures[i].offset) = 1000003 * (i + 1);
	stats.shutdown.trigger = TCM_SHUTDOWN_SIGTERM;
	stats.shutdown.t0_ns = 5 * 1000000000ull;
	stats.shutdown.t1_ns = stats.shutdown.t0_ns + 1500000000ull;
	return stats;
}

static size_t render(enum tcm_render_format format, const struct tcm_stats *stats, char *report)
{
	const struct tcm_render_input input = { .stats = stats, .version = "9.8.7", .pid = 4242,
						.wall_clock_ns = 1765000000123456789ull };
	return tcm_render(format, &input, report, REPORT_BYTES);
}

/* The value text a figure must have: seconds with nine decimals for nanoseconds. */
static void expected_value(const struct tcm_figure *figure, const struct tcm_stats *stats, char *out)
{
	uint64_t value = tcm_figure_value(figure, stats);
	if (figure->unit == TCM_FIGURE_NANOSECONDS)
		sprintf(out, "%llu.%09llu", (unsigned long long)(value / 1000000000u),
			(unsigned long long)(value % 1000000000u));
	else
		sprintf(out, "%llu", (unsigned long long)value);
}

/* The value of "name" in a JSON report (the line "  \"name\": value"), or NULL. */
static const char *json_value(const char *report, const char *name, char *out)
{
	char key[160];
	snprintf(key, sizeof key, "\n  \"%s\": ", name);
	const char *at = strstr(report, key);
	if (at == NULL)
		return NULL;
	at += strlen(key);
	size_t length = strcspn(at, ",\n");
	snprintf(out, 64, "%.*s", (int)length, at);
	return out;
}

static void json_carries_every_figure_once_with_its_value(void **state)
{
	(void)state;
	struct tcm_stats stats = distinct_stats();
	char report[REPORT_BYTES], got[64], want[64];
	assert_true(render(TCM_RENDER_JSON, &stats, report) > 0);
	assert_true(report[0] == '{');
	size_t fields = 0;
	for (const char *at = report; (at = strstr(at, "\n  \"")) != NULL; at++)
		fields++;
	assert_int_equal(fields, tcm_figure_count + 5);   /* + version, pid, time, trigger, T0 -> T1 */
	for (size_t i = 0; i < tcm_figure_count; i++) {
		assert_non_null(json_value(report, tcm_figures[i].name, got));
		expected_value(&tcm_figures[i], &stats, want);
		assert_string_equal(got, want);
	}
	assert_string_equal(json_value(report, "tcm_version", got), "\"9.8.7\"");
	assert_string_equal(json_value(report, "pid", got), "4242");
	assert_string_equal(json_value(report, "report_time_seconds", got), "1765000000.123456789");
	assert_string_equal(json_value(report, "shutdown_trigger", got), "\"sigterm\"");
	assert_string_equal(json_value(report, "shutdown_t0_to_t1_seconds", got), "1.500000000");
}

static bool is_metric_name(const char *name, size_t length)
{
	if (length == 0 || !(isalpha((unsigned char)name[0]) || name[0] == '_' || name[0] == ':'))
		return false;
	for (size_t i = 1; i < length; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '_' || name[i] == ':'))
			return false;
	return true;
}

/* A strict reading of the Prometheus text format, as the textfile collector does: each sample's
 * name was announced by "# HELP name ..." then "# TYPE name gauge|counter" just before it, a
 * counter's name ends in _total, a name appears in one sample only, and the value is a decimal.
 * Checks each table figure's sample against its value; returns the number of samples. */
static size_t check_prometheus(const char *report, const struct tcm_stats *stats)
{
	char help_name[160] = "", type_name[160] = "", type[16] = "";
	char seen[128][160];
	size_t samples = 0;
	for (const char *line = report; *line != '\0';) {
		size_t length = strcspn(line, "\n");
		assert_true(line[length] == '\n');   /* every line ends */
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%159s", help_name);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%159s %15s", type_name, type), 2);
			assert_string_equal(type_name, help_name);
			assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0);
		} else {
			size_t name_length = strcspn(line, "{ ");
			assert_true(is_metric_name(line, name_length));
			assert_int_equal(name_length, strlen(type_name));
			assert_memory_equal(line, type_name, name_length);
			bool is_counter = strcmp(type, "counter") == 0;
			assert_true(is_counter == (name_length > 6 && memcmp(line + name_length - 6, "_total", 6) == 0));
			for (size_t i = 0; i < samples; i++)
				assert_true(strcmp(seen[i], type_name) != 0);
			assert_true(samples < 128);
			strcpy(seen[samples++], type_name);
			const char *value = memchr(line, ' ', length);
			if (line[name_length] == '{')
				value = strstr(line, "} ") + 1;
			assert_non_null(value);
			char *end;
			strtod(value + 1, &end);
			assert_true(end == line + length);
			for (size_t i = 0; i < tcm_figure_count; i++) {
				if (strcmp(type_name + 4, tcm_figures[i].name) != 0)
					continue;
				char want[64];
				expected_value(&tcm_figures[i], stats, want);
				assert_int_equal((size_t)(line + length - value - 1), strlen(want));
				assert_memory_equal(value + 1, want, strlen(want));
				assert_true(is_counter == (tcm_figures[i].kind == TCM_FIGURE_COUNTER));
			}
			help_name[0] = type_name[0] = '\0';   /* the next sample needs its own */
		}
		line += length + 1;
	}
	return samples;
}

static void prometheus_text_is_strict_and_carries_every_figure(void **state)
{
	(void)state;
	struct tcm_stats stats = distinct_stats();
	char report[REPORT_BYTES];
	assert_true(render(TCM_RENDER_PROMETHEUS, &stats, report) > 0);
	assert_int_equal(check_prometheus(report, &stats), tcm_figure_count + 4);   /* + info, time, trigger, T0 -> T1 */
	for (size_t i = 0; i < tcm_figure_count; i++) {
		char sample[180];
		snprintf(sample, sizeof sample, "\ntcm_%s ", tcm_figures[i].name);
		assert_non_null(strstr(report, sample));
	}
	assert_non_null(strstr(report, "\ntcm_info{version=\"9.8.7\",pid=\"4242\"} 1\n"));
	assert_non_null(strstr(report, "\ntcm_shutdown_info{trigger=\"sigterm\"} 1\n"));
}

static void figure_names_are_unique_and_say_their_unit(void **state)
{
	(void)state;
	for (size_t i = 0; i < tcm_figure_count; i++) {
		const char *name = tcm_figures[i].name;
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(name, tcm_figures[j].name);
		size_t length = strlen(name);
		const char *base = tcm_figures[i].kind == TCM_FIGURE_COUNTER ? "_total" : "";
		char without_total[160];
		snprintf(without_total, sizeof without_total, "%.*s", (int)(length - strlen(base)), name);
		if (tcm_figures[i].kind == TCM_FIGURE_COUNTER)
			assert_string_equal(name + length - 6, "_total");
		size_t stem = strlen(without_total);
		if (tcm_figures[i].unit == TCM_FIGURE_BYTES)
			assert_true(stem > 6 && strcmp(without_total + stem - 6, "_bytes") == 0);
		if (tcm_figures[i].unit == TCM_FIGURE_NANOSECONDS)
			assert_true(stem > 8 && strcmp(without_total + stem - 8, "_seconds") == 0);
		assert_true(tcm_figures[i].help[0] != '\0' && strchr(tcm_figures[i].help, '\n') == NULL);
	}
	assert_int_equal(tcm_render_format_of("/var/lib/node_exporter/tcm.prom"), TCM_RENDER_PROMETHEUS);
	assert_int_equal(tcm_render_format_of("/run/tcm/stats.json"), TCM_RENDER_JSON);
}

static void report_that_does_not_fit_is_not_handed_out(void **state)
{
	(void)state;
	struct tcm_stats stats = distinct_stats();
	const struct tcm_render_input input = { .stats = &stats, .version = "0.1.0", .pid = 1, .wall_clock_ns = 0 };
	char small[256];
	assert_int_equal(tcm_render(TCM_RENDER_JSON, &input, small, sizeof small), 0);
	assert_int_equal(tcm_render(TCM_RENDER_PROMETHEUS, &input, small, sizeof small), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(json_carries_every_figure_once_with_its_value),
		cmocka_unit_test(prometheus_text_is_strict_and_carries_every_figure),
		cmocka_unit_test(figure_names_are_unique_and_say_their_unit),
		cmocka_unit_test(report_that_does_not_fit_is_not_handed_out),
	};
	return unit_main(argc, argv, "render", tests, sizeof(tests) / sizeof(tests[0]));
}
