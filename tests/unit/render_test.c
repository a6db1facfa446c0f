/* tests/unit/render_test.c - the report formats (orchestrator/render.h) drawn from the tables
 * of figures: JSON and the Prometheus text format carry exactly the tables' figures with the same
 * values, the size classes that hold a span and no other, the Prometheus text is strict (HELP and
 * TYPE before each metric, legal names, counters ending in _total, one sample per name and label
 * set), nanoseconds come out as seconds, each figure's window is said (the JSON's figure_windows,
 * the text's headings, the XML's window attribute) and agrees with its name and help, and a
 * report that does not fit is not handed out cut short. */
#include "unit.h"

#include "figures.h"
#include "render.h"

#include <ctype.h>
#include <stdlib.h>

#define REPORT_BYTES 65536

/* Two classes in use and, between them, one that holds no span (left out of every report). */
#define CLASS_COUNT 3
#define REPORTED_CLASS_COUNT 2
static const struct tcm_size_class_stats classes[CLASS_COUNT] = {
	{ .object_bytes = 16, .span_bytes = 8192, .spans = 3, .in_use_objects = 1201,
	  .thread_cache_objects = 302, .central_objects = 64, .span_free_objects = 5 },
	{ .object_bytes = 32, .span_bytes = 8192 },
	{ .object_bytes = 1024, .span_bytes = 16384, .spans = 7, .in_use_objects = 97,
	  .thread_cache_objects = 11, .central_objects = 0, .span_free_objects = 4 },
};

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
						.wall_clock_ns = 1765000000123456789ull,
						.size_classes = classes, .size_class_count = CLASS_COUNT };
	return tcm_render(format, &input, report, REPORT_BYTES);
}

/* The value text a figure must have: seconds with nine decimals for nanoseconds. */
static void expected_value(const struct tcm_figure *figure, const void *record, char *out)
{
	uint64_t value = tcm_figure_value(figure, record);
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
	/* + version, pid, time, trigger, T0 -> T1, size_classes, figure_windows */
	assert_int_equal(fields, tcm_figure_count + 7);
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

/* The object "{\"object_bytes\": N, ...}" of a class in a JSON report, copied to out, or NULL. */
static const char *json_class(const char *report, uint64_t object_bytes, char *out, size_t size)
{
	char key[64];
	snprintf(key, sizeof key, "{\"object_bytes\": %llu,", (unsigned long long)object_bytes);
	const char *at = strstr(report, key);
	if (at == NULL)
		return NULL;
	snprintf(out, size, "%.*s", (int)(strchr(at, '}') - at + 1), at);
	return out;
}

static void json_carries_the_size_classes_that_hold_spans(void **state)
{
	(void)state;
	struct tcm_stats stats = distinct_stats();
	char report[REPORT_BYTES], object[512], pair[128], want[64];
	assert_true(render(TCM_RENDER_JSON, &stats, report) > 0);
	size_t objects = 0;
	for (const char *at = report; (at = strstr(at, "{\"object_bytes\": ")) != NULL; at++)
		objects++;
	assert_int_equal(objects, REPORTED_CLASS_COUNT);
	for (size_t c = 0; c < CLASS_COUNT; c++) {
		if (classes[c].spans == 0) {
			assert_null(json_class(report, classes[c].object_bytes, object, sizeof object));
			continue;
		}
		assert_non_null(json_class(report, classes[c].object_bytes, object, sizeof object));
		snprintf(pair, sizeof pair, "\"span_bytes\": %llu", (unsigned long long)classes[c].span_bytes);
		assert_non_null(strstr(object, pair));
		for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
			expected_value(&tcm_size_class_figures[i], &classes[c], want);
			snprintf(pair, sizeof pair, "\"%s\": %s", tcm_size_class_figures[i].name, want);
			assert_non_null(strstr(object, pair));
		}
	}
}

/* Each figure's window agrees with its name and help, and every format says it. */
static void check_windows_of(const struct tcm_figure *figures, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct tcm_figure *figure = &figures[i];
		bool says_t0 = strstr(figure->name, "since_t0") != NULL;
		assert_true(says_t0 == (figure->window == TCM_FIGURE_SINCE_T0));
		if (figure->window == TCM_FIGURE_SINCE_T0)
			assert_non_null(strstr(figure->help, "T0"));
		if (figure->window == TCM_FIGURE_PROCESS_LIFE)
			assert_non_null(strstr(figure->help, "process's life"));
		if (figure->window == TCM_FIGURE_NOW)
			assert_non_null(strstr(figure->help, "now"));
		if (figure->kind == TCM_FIGURE_COUNTER)   /* a counter counts from the start */
			assert_int_equal(figure->window, TCM_FIGURE_PROCESS_LIFE);
	}
}

/* The heading the text report puts a window's figures under. */
static const char *text_heading(enum tcm_figure_window window)
{
	return window == TCM_FIGURE_NOW ? "\nnow:\n"
	       : window == TCM_FIGURE_PROCESS_LIFE ? "\nover the process's life:\n"
						   : "\nsince the shutdown began (T0):\n";
}

static void every_format_says_each_figures_window(void **state)
{
	(void)state;
	check_windows_of(tcm_figures, tcm_figure_count);
	check_windows_of(tcm_size_class_figures, tcm_size_class_figure_count);

	struct tcm_stats stats = distinct_stats();
	char json[REPORT_BYTES], text[REPORT_BYTES], xml[REPORT_BYTES], pair[256];
	assert_true(render(TCM_RENDER_JSON, &stats, json) > 0);
	assert_true(render(TCM_RENDER_TEXT, &stats, text) > 0);
	assert_true(render(TCM_RENDER_XML, &stats, xml) > 0);
	const char *windows = strstr(json, "\n  \"figure_windows\": {");
	assert_non_null(windows);
	for (size_t i = 0; i < tcm_figure_count; i++) {
		const struct tcm_figure *figure = &tcm_figures[i];
		snprintf(pair, sizeof pair, "\n    \"%s\": \"%s\"", figure->name, tcm_figure_window_name(figure->window));
		assert_non_null(strstr(windows, pair));
		snprintf(pair, sizeof pair, "<figure name=\"%s\" kind=\"%s\" window=\"%s\" value=", figure->name,
			 figure->kind == TCM_FIGURE_COUNTER ? "counter" : "gauge", tcm_figure_window_name(figure->window));
		assert_non_null(strstr(xml, pair));
		/* In the text, under its window's heading: the last heading before its line. */
		snprintf(pair, sizeof pair, "\n  %s ", figure->name);
		const char *line = strstr(text, pair);
		assert_non_null(line);
		const char *heading = NULL;
		for (enum tcm_figure_window window = TCM_FIGURE_NOW; window <= TCM_FIGURE_SINCE_T0; window++) {
			const char *at = strstr(text, text_heading(window));
			assert_non_null(at);
			if (at < line && (heading == NULL || at > heading))
				heading = at;
		}
		assert_ptr_equal(heading, strstr(text, text_heading(figure->window)));
	}
	for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
		snprintf(pair, sizeof pair, "\n    \"%s\": \"now\"", tcm_size_class_figures[i].name);
		assert_non_null(strstr(windows, pair));
	}
}

/* The XML has one <size_class/> per class that holds a span, with each of its figures, and the
 * text a row: object_bytes and the figures in the table's order. */
static void xml_and_text_carry_the_size_classes(void **state)
{
	(void)state;
	struct tcm_stats stats = distinct_stats();
	char xml[REPORT_BYTES], text[REPORT_BYTES], pair[256], want[64], row[256];
	assert_true(render(TCM_RENDER_XML, &stats, xml) > 0);
	assert_true(render(TCM_RENDER_TEXT, &stats, text) > 0);
	size_t elements = 0;
	for (const char *at = xml; (at = strstr(at, "<size_class ")) != NULL; at++)
		elements++;
	assert_int_equal(elements, REPORTED_CLASS_COUNT);
	const char *table = strstr(text, "\nsize classes, now (objects):\n");
	assert_non_null(table);
	for (size_t c = 0; c < CLASS_COUNT; c++) {
		snprintf(pair, sizeof pair, "<size_class object_bytes=\"%llu\" span_bytes=\"%llu\"",
			 (unsigned long long)classes[c].object_bytes, (unsigned long long)classes[c].span_bytes);
		const char *element = strstr(xml, pair);
		int length = snprintf(row, sizeof row, "\n%14llu", (unsigned long long)classes[c].object_bytes);
		for (size_t i = 0; i < tcm_size_class_figure_count; i++)
			length += snprintf(row + length, sizeof row - (size_t)length, " %12llu",
					   (unsigned long long)tcm_figure_value(&tcm_size_class_figures[i], &classes[c]));
		snprintf(row + length, sizeof row - (size_t)length, "\n");
		if (classes[c].spans == 0) {
			assert_null(element);
			assert_null(strstr(table, row));
			continue;
		}
		assert_non_null(element);
		assert_non_null(strstr(table, row));
		for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
			expected_value(&tcm_size_class_figures[i], &classes[c], want);
			snprintf(pair, sizeof pair, " %s=\"%s\"", tcm_size_class_figures[i].name, want);
			assert_non_null(strstr(element, pair));
			assert_true(strstr(element, pair) < strstr(element, "/>"));
		}
	}
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
	char help_name[160] = "", type_name[160] = "", type[16] = "", metric[160] = "";
	char seen[128][160], labels_seen[16][160];
	size_t samples = 0, metrics = 0, label_sets = 0;
	for (const char *line = report; *line != '\0';) {
		size_t length = strcspn(line, "\n");
		assert_true(line[length] == '\n');   /* every line ends */
		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%159s", help_name);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%159s %15s", type_name, type), 2);
			assert_string_equal(type_name, help_name);
			assert_true(strcmp(type, "gauge") == 0 || strcmp(type, "counter") == 0);
			for (size_t i = 0; i < metrics; i++)   /* a metric is announced once */
				assert_true(strcmp(seen[i], type_name) != 0);
			assert_true(metrics < 128);
			strcpy(seen[metrics++], type_name);
			strcpy(metric, type_name);
			label_sets = 0;
		} else {
			/* A sample of the metric announced last, its label set not seen before. */
			size_t name_length = strcspn(line, "{ ");
			assert_true(is_metric_name(line, name_length));
			assert_int_equal(name_length, strlen(metric));
			assert_memory_equal(line, metric, name_length);
			bool is_counter = strcmp(type, "counter") == 0;
			assert_true(is_counter == (name_length > 6 && memcmp(line + name_length - 6, "_total", 6) == 0));
			const char *value = memchr(line, ' ', length);
			char labels[160] = "";
			if (line[name_length] == '{') {
				value = strstr(line, "} ") + 1;
				snprintf(labels, sizeof labels, "%.*s", (int)(value - line - name_length), line + name_length);
			}
			for (size_t i = 0; i < label_sets; i++)
				assert_true(strcmp(labels_seen[i], labels) != 0);
			assert_true(label_sets < 16);
			strcpy(labels_seen[label_sets++], labels);
			samples++;
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
			help_name[0] = type_name[0] = '\0';   /* a HELP right before a sample needs its TYPE */
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
	/* + info, time, trigger, T0 -> T1, and each class figure of each class that holds a span */
	assert_int_equal(check_prometheus(report, &stats),
			 tcm_figure_count + 4 + tcm_size_class_figure_count * REPORTED_CLASS_COUNT);
	for (size_t i = 0; i < tcm_figure_count; i++) {
		char sample[180];
		snprintf(sample, sizeof sample, "\ntcm_%s ", tcm_figures[i].name);
		assert_non_null(strstr(report, sample));
	}
	assert_non_null(strstr(report, "\ntcm_info{version=\"9.8.7\",pid=\"4242\"} 1\n"));
	assert_non_null(strstr(report, "\ntcm_shutdown_info{trigger=\"sigterm\"} 1\n"));
	for (size_t c = 0; c < CLASS_COUNT; c++)
		for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
			char sample[180], want[64];
			expected_value(&tcm_size_class_figures[i], &classes[c], want);
			snprintf(sample, sizeof sample, "\ntcm_%s{object_bytes=\"%llu\"} %s\n", tcm_size_class_figures[i].name,
				 (unsigned long long)classes[c].object_bytes, want);
			assert_true((strstr(report, sample) != NULL) == (classes[c].spans != 0));
		}
}

static void check_names_of(const struct tcm_figure *figures, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const char *name = figures[i].name;
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(name, figures[j].name);
		for (size_t j = 0; j < tcm_figure_count; j++)   /* nor the name of a whole-heap figure */
			assert_true(figures == tcm_figures || strcmp(name, tcm_figures[j].name) != 0);
		size_t length = strlen(name);
		const char *base = figures[i].kind == TCM_FIGURE_COUNTER ? "_total" : "";
		char without_total[160];
		snprintf(without_total, sizeof without_total, "%.*s", (int)(length - strlen(base)), name);
		if (figures[i].kind == TCM_FIGURE_COUNTER)
			assert_string_equal(name + length - 6, "_total");
		size_t stem = strlen(without_total);
		if (figures[i].unit == TCM_FIGURE_BYTES)
			assert_true(stem > 6 && strcmp(without_total + stem - 6, "_bytes") == 0);
		if (figures[i].unit == TCM_FIGURE_NANOSECONDS)
			assert_true(stem > 8 && strcmp(without_total + stem - 8, "_seconds") == 0);
		assert_true(figures[i].help[0] != '\0' && strchr(figures[i].help, '\n') == NULL);
	}
}

static void figure_names_are_unique_and_say_their_unit(void **state)
{
	(void)state;
	check_names_of(tcm_figures, tcm_figure_count);
	check_names_of(tcm_size_class_figures, tcm_size_class_figure_count);
	for (size_t i = 0; i < tcm_size_class_figure_count; i++)   /* the text's table headings */
		assert_int_equal(strncmp(tcm_size_class_figures[i].name, "size_class_", 11), 0);
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
		cmocka_unit_test(json_carries_the_size_classes_that_hold_spans),
		cmocka_unit_test(every_format_says_each_figures_window),
		cmocka_unit_test(xml_and_text_carry_the_size_classes),
		cmocka_unit_test(prometheus_text_is_strict_and_carries_every_figure),
		cmocka_unit_test(figure_names_are_unique_and_say_their_unit),
		cmocka_unit_test(report_that_does_not_fit_is_not_handed_out),
	};
	return unit_main(argc, argv, "render", tests, sizeof(tests) / sizeof(tests[0]));
}
