/* orchestrator/render.c - see render.h. A figure in nanoseconds is written in seconds with nine
 * decimals, so no precision is lost and no floating point is formatted. */
#include "render.h"

#include "../core/core.h"
#include "figures.h"

#include <string.h>

const char *tcm_render_trigger_name(uint32_t trigger)
{
	switch (trigger) {
	case TCM_SHUTDOWN_SIGTERM: return "sigterm";
	case TCM_SHUTDOWN_API:     return "api";
	case TCM_SHUTDOWN_EXIT:    return "exit";
	default:                   return "none";
	}
}

/* ns as seconds: "12.000345678". */
static void seconds(struct tcm_text *text, uint64_t ns)
{
	tcm_text_u64(text, ns / 1000000000u);
	tcm_text_str(text, ".");
	char digits[10];
	uint64_t fraction = ns % 1000000000u;
	for (int i = 8; i >= 0; i--, fraction /= 10)
		digits[i] = (char)('0' + fraction % 10);
	digits[9] = '\0';
	tcm_text_str(text, digits);
}

static void value(struct tcm_text *text, const struct tcm_figure *figure, const void *record)
{
	uint64_t number = tcm_figure_value(figure, record);
	if (figure->unit == TCM_FIGURE_NANOSECONDS)
		seconds(text, number);
	else
		tcm_text_u64(text, number);
}

static uint64_t t0_to_t1_ns(const struct tcm_stats *stats)
{
	const struct tcm_shutdown_stats *shutdown = &stats->shutdown;
	return shutdown->t0_ns != 0 && shutdown->t1_ns > shutdown->t0_ns ? shutdown->t1_ns - shutdown->t0_ns : 0;
}

/* A class that holds no span has no object anywhere: reports leave it out. */
static bool is_class_reported(const struct tcm_size_class_stats *size_class)
{
	return size_class->spans != 0;
}

static void quoted(struct tcm_text *text, const char *string)
{
	tcm_text_str(text, "\"");
	tcm_text_str(text, string);
	tcm_text_str(text, "\"");
}

static void json_field(struct tcm_text *text, const char *name, bool is_first)
{
	tcm_text_str(text, is_first ? "{\n  \"" : ",\n  \"");
	tcm_text_str(text, name);
	tcm_text_str(text, "\": ");
}

/* "name": "window", for each figure of a table, after a first one or not. */
static void json_windows(struct tcm_text *text, const struct tcm_figure *figures, size_t count, bool is_first)
{
	for (size_t i = 0; i < count; i++) {
		tcm_text_str(text, is_first && i == 0 ? "\n    " : ",\n    ");
		quoted(text, figures[i].name);
		tcm_text_str(text, ": ");
		quoted(text, tcm_figure_window_name(figures[i].window));
	}
}

/* One object per class: {"object_bytes": 16, "span_bytes": 8192, "size_class_spans": 3, ...}. */
static void json_size_classes(struct tcm_text *text, const struct tcm_render_input *input)
{
	bool is_first = true;
	tcm_text_str(text, "[");
	for (size_t c = 0; c < input->size_class_count; c++) {
		const struct tcm_size_class_stats *size_class = &input->size_classes[c];
		if (!is_class_reported(size_class))
			continue;
		tcm_text_str(text, is_first ? "\n    {\"object_bytes\": " : ",\n    {\"object_bytes\": ");
		is_first = false;
		tcm_text_u64(text, size_class->object_bytes);
		tcm_text_str(text, ", \"span_bytes\": ");
		tcm_text_u64(text, size_class->span_bytes);
		for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
			tcm_text_str(text, ", ");
			quoted(text, tcm_size_class_figures[i].name);
			tcm_text_str(text, ": ");
			value(text, &tcm_size_class_figures[i], size_class);
		}
		tcm_text_str(text, "}");
	}
	tcm_text_str(text, is_first ? "]" : "\n  ]");
}

static void render_json(struct tcm_text *text, const struct tcm_render_input *input)
{
	json_field(text, "tcm_version", true);
	quoted(text, input->version);
	json_field(text, "pid", false);
	tcm_text_u64(text, input->pid);
	json_field(text, "report_time_seconds", false);
	seconds(text, input->wall_clock_ns);
	json_field(text, "shutdown_trigger", false);
	quoted(text, tcm_render_trigger_name(input->stats->shutdown.trigger));
	json_field(text, "shutdown_t0_to_t1_seconds", false);
	seconds(text, t0_to_t1_ns(input->stats));
	for (size_t i = 0; i < tcm_figure_count; i++) {
		json_field(text, tcm_figures[i].name, false);
		value(text, &tcm_figures[i], input->stats);
	}
	json_field(text, "size_classes", false);
	json_size_classes(text, input);
	json_field(text, "figure_windows", false);
	tcm_text_str(text, "{");
	json_windows(text, tcm_figures, tcm_figure_count, true);
	json_windows(text, tcm_size_class_figures, tcm_size_class_figure_count, false);
	tcm_text_str(text, "\n  }");
	if (input->sample_count > 0) {
		/* one sample a line: [seconds since T0, resident bytes, released bytes] */
		json_field(text, "timeline_deadline_seconds", false);
		seconds(text, input->deadline_ns);
		json_field(text, "timeline", false);
		for (size_t i = 0; i < input->sample_count; i++) {
			tcm_text_str(text, i == 0 ? "[\n    [" : ",\n    [");
			seconds(text, input->samples[i].since_t0_ns);
			tcm_text_str(text, ", ");
			tcm_text_u64(text, input->samples[i].resident_bytes);
			tcm_text_str(text, ", ");
			tcm_text_u64(text, input->samples[i].released_bytes);
			tcm_text_str(text, "]");
		}
		tcm_text_str(text, "\n  ]");
	}
	tcm_text_str(text, "\n}\n");
}

/* "# HELP tcm_NAME HELP\n# TYPE tcm_NAME TYPE\n", then the sample's "tcm_NAME" */
static void prometheus_header(struct tcm_text *text, const char *name, const char *help, const char *type)
{
	tcm_text_str(text, "# HELP tcm_");
	tcm_text_str(text, name);
	tcm_text_str(text, " ");
	tcm_text_str(text, help);
	tcm_text_str(text, "\n# TYPE tcm_");
	tcm_text_str(text, name);
	tcm_text_str(text, " ");
	tcm_text_str(text, type);
	tcm_text_str(text, "\ntcm_");
	tcm_text_str(text, name);
}

static const char *prometheus_type(const struct tcm_figure *figure)
{
	return figure->kind == TCM_FIGURE_COUNTER ? "counter" : "gauge";
}

/* One metric per figure of a size class, a sample per class: tcm_NAME{object_bytes="16"} 3. */
static void prometheus_size_classes(struct tcm_text *text, const struct tcm_render_input *input)
{
	for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
		const struct tcm_figure *figure = &tcm_size_class_figures[i];
		bool is_first = true;
		for (size_t c = 0; c < input->size_class_count; c++) {
			const struct tcm_size_class_stats *size_class = &input->size_classes[c];
			if (!is_class_reported(size_class))
				continue;
			if (is_first) {
				prometheus_header(text, figure->name, figure->help, prometheus_type(figure));
			} else {
				tcm_text_str(text, "tcm_");
				tcm_text_str(text, figure->name);
			}
			is_first = false;
			tcm_text_str(text, "{object_bytes=\"");
			tcm_text_u64(text, size_class->object_bytes);
			tcm_text_str(text, "\"} ");
			value(text, figure, size_class);
			tcm_text_str(text, "\n");
		}
	}
}

static void render_prometheus(struct tcm_text *text, const struct tcm_render_input *input)
{
	prometheus_header(text, "info", "tcm's version and the process the report is about.", "gauge");
	tcm_text_str(text, "{version=\"");
	tcm_text_str(text, input->version);
	tcm_text_str(text, "\",pid=\"");
	tcm_text_u64(text, input->pid);
	tcm_text_str(text, "\"} 1\n");
	prometheus_header(text, "report_time_seconds", "When the report was written, Unix time.", "gauge");
	tcm_text_str(text, " ");
	seconds(text, input->wall_clock_ns);
	tcm_text_str(text, "\n");
	prometheus_header(text, "shutdown_info", "What began the shutdown: none, sigterm, api or exit.", "gauge");
	tcm_text_str(text, "{trigger=\"");
	tcm_text_str(text, tcm_render_trigger_name(input->stats->shutdown.trigger));
	tcm_text_str(text, "\"} 1\n");
	prometheus_header(text, "shutdown_t0_to_t1_seconds",
			  "From the shutdown's start (T0) to exit() (T1); 0 until both happened.", "gauge");
	tcm_text_str(text, " ");
	seconds(text, t0_to_t1_ns(input->stats));
	tcm_text_str(text, "\n");
	for (size_t i = 0; i < tcm_figure_count; i++) {
		const struct tcm_figure *figure = &tcm_figures[i];
		prometheus_header(text, figure->name, figure->help, prometheus_type(figure));
		tcm_text_str(text, " ");
		value(text, figure, input->stats);
		tcm_text_str(text, "\n");
	}
	prometheus_size_classes(text, input);
}

/* value right-aligned in width columns (a wider one is written whole). */
static void padded_u64(struct tcm_text *text, uint64_t number, unsigned width)
{
	unsigned digits = 1;
	for (uint64_t rest = number; rest >= 10; rest /= 10)
		digits++;
	for (; digits < width; digits++)
		tcm_text_str(text, " ");
	tcm_text_u64(text, number);
}

#define TEXT_NAME_COLUMN 50   /* where a figure's value starts */
#define TEXT_CLASS_COLUMN 12  /* the width of a size-class table's columns */

static void text_figures(struct tcm_text *text, const struct tcm_stats *stats, enum tcm_figure_window window)
{
	static const char spaces[TEXT_NAME_COLUMN + 1] = "                                                  ";
	for (size_t i = 0; i < tcm_figure_count; i++) {
		const struct tcm_figure *figure = &tcm_figures[i];
		if (figure->window != window)
			continue;
		size_t length = strlen(figure->name);
		tcm_text_str(text, "  ");
		tcm_text_str(text, figure->name);
		tcm_text_str(text, spaces + (length < TEXT_NAME_COLUMN ? length : TEXT_NAME_COLUMN - 1));
		value(text, figure, stats);
		if (figure->unit == TCM_FIGURE_BYTES) {
			tcm_text_str(text, " (");
			tcm_text_fixed1(text, tcm_figure_value(figure, stats), 1 << 20);
			tcm_text_str(text, " MiB)");
		}
		tcm_text_str(text, "\n");
	}
}

/* A table, a row per class: object_bytes, then each figure of a class, headed by its name less
 * "size_class_" and "_objects". */
static void text_size_classes(struct tcm_text *text, const struct tcm_render_input *input)
{
	static const char prefix[] = "size_class_", suffix[] = "_objects";
	tcm_text_str(text, "size classes, now (objects):\n  object_bytes");
	for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
		const char *heading = tcm_size_class_figures[i].name + strlen(prefix);
		size_t length = strlen(heading);
		if (length > strlen(suffix) && strcmp(heading + length - strlen(suffix), suffix) == 0)
			length -= strlen(suffix);
		tcm_text_str(text, " ");
		for (size_t pad = length; pad < TEXT_CLASS_COLUMN; pad++)
			tcm_text_str(text, " ");
		tcm_text_bytes(text, heading, length);
	}
	tcm_text_str(text, "\n");
	for (size_t c = 0; c < input->size_class_count; c++) {
		const struct tcm_size_class_stats *size_class = &input->size_classes[c];
		if (!is_class_reported(size_class))
			continue;
		padded_u64(text, size_class->object_bytes, (unsigned)strlen("  object_bytes"));
		for (size_t i = 0; i < tcm_size_class_figure_count; i++) {
			tcm_text_str(text, " ");
			padded_u64(text, tcm_figure_value(&tcm_size_class_figures[i], size_class), TEXT_CLASS_COLUMN);
		}
		tcm_text_str(text, "\n");
	}
}

/* "tcm 0.1.0, pid 42, written at 1765000000.123456789 (Unix time); shutdown: sigterm, T0 -> T1
 * 0.500000000 s", then the figures under a heading per window, a "name value" line each, then
 * the size classes' table. */
static void render_text(struct tcm_text *text, const struct tcm_render_input *input)
{
	tcm_text_str(text, "tcm ");
	tcm_text_str(text, input->version);
	tcm_text_str(text, ", pid ");
	tcm_text_u64(text, input->pid);
	tcm_text_str(text, ", written at ");
	seconds(text, input->wall_clock_ns);
	tcm_text_str(text, " (Unix time); shutdown: ");
	tcm_text_str(text, tcm_render_trigger_name(input->stats->shutdown.trigger));
	tcm_text_str(text, ", T0 -> T1 ");
	seconds(text, t0_to_t1_ns(input->stats));
	tcm_text_str(text, " s\nnow:\n");
	text_figures(text, input->stats, TCM_FIGURE_NOW);
	tcm_text_str(text, "over the process's life:\n");
	text_figures(text, input->stats, TCM_FIGURE_PROCESS_LIFE);
	tcm_text_str(text, "since the shutdown began (T0):\n");
	text_figures(text, input->stats, TCM_FIGURE_SINCE_T0);
	text_size_classes(text, input);
}

static void xml_attribute(struct tcm_text *text, const char *name, const struct tcm_figure *figure,
			  const void *record)
{
	tcm_text_str(text, " ");
	tcm_text_str(text, name);
	tcm_text_str(text, "=\"");
	value(text, figure, record);
	tcm_text_str(text, "\"");
}

/* <malloc version="tcm-2" tcm="0.1.0" pid="42" time_seconds="..." shutdown_trigger="none"
 * shutdown_t0_to_t1_seconds="0.000000000">, then <figure name=".." kind="gauge|counter"
 * window=".." value=".."/> per figure and <size_class object_bytes=".." span_bytes=".."
 * size_class_spans=".." .../> per class. Names and values need no escaping: [a-z0-9_.] only. */
static void render_xml(struct tcm_text *text, const struct tcm_render_input *input)
{
	tcm_text_str(text, "<malloc version=\"tcm-2\" tcm=\"");
	tcm_text_str(text, input->version);
	tcm_text_str(text, "\" pid=\"");
	tcm_text_u64(text, input->pid);
	tcm_text_str(text, "\" time_seconds=\"");
	seconds(text, input->wall_clock_ns);
	tcm_text_str(text, "\" shutdown_trigger=\"");
	tcm_text_str(text, tcm_render_trigger_name(input->stats->shutdown.trigger));
	tcm_text_str(text, "\" shutdown_t0_to_t1_seconds=\"");
	seconds(text, t0_to_t1_ns(input->stats));
	tcm_text_str(text, "\">\n");
	for (size_t i = 0; i < tcm_figure_count; i++) {
		tcm_text_str(text, "<figure name=\"");
		tcm_text_str(text, tcm_figures[i].name);
		tcm_text_str(text, "\" kind=\"");
		tcm_text_str(text, prometheus_type(&tcm_figures[i]));
		tcm_text_str(text, "\" window=\"");
		tcm_text_str(text, tcm_figure_window_name(tcm_figures[i].window));
		tcm_text_str(text, "\"");
		xml_attribute(text, "value", &tcm_figures[i], input->stats);
		tcm_text_str(text, "/>\n");
	}
	for (size_t c = 0; c < input->size_class_count; c++) {
		const struct tcm_size_class_stats *size_class = &input->size_classes[c];
		if (!is_class_reported(size_class))
			continue;
		tcm_text_str(text, "<size_class object_bytes=\"");
		tcm_text_u64(text, size_class->object_bytes);
		tcm_text_str(text, "\" span_bytes=\"");
		tcm_text_u64(text, size_class->span_bytes);
		tcm_text_str(text, "\"");
		for (size_t i = 0; i < tcm_size_class_figure_count; i++)
			xml_attribute(text, tcm_size_class_figures[i].name, &tcm_size_class_figures[i], size_class);
		tcm_text_str(text, "/>\n");
	}
	tcm_text_str(text, "</malloc>\n");
}

static bool has_suffix(const char *path, const char *suffix)
{
	size_t length = strlen(path), suffix_length = strlen(suffix);
	return length >= suffix_length && strcmp(path + length - suffix_length, suffix) == 0;
}

enum tcm_render_format tcm_render_format_of(const char *path)
{
	return has_suffix(path, ".json") ? TCM_RENDER_JSON
	       : has_suffix(path, ".prom") ? TCM_RENDER_PROMETHEUS
					   : TCM_RENDER_TEXT;
}

size_t tcm_render(enum tcm_render_format format, const struct tcm_render_input *input, char *buffer,
		  size_t capacity)
{
	struct tcm_text text;
	tcm_text_init(&text, buffer, capacity);
	if (format == TCM_RENDER_PROMETHEUS)
		render_prometheus(&text, input);
	else if (format == TCM_RENDER_TEXT)
		render_text(&text, input);
	else if (format == TCM_RENDER_XML)
		render_xml(&text, input);
	else
		render_json(&text, input);
	/* Full means cut short: the text keeps a byte for the NUL, so a report that fits leaves
	 * at least one more free. */
	return text.length + 1 < capacity ? text.length : 0;
}
