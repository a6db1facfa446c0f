/* orchestrator/render.c - see render.h. A figure in nanoseconds is written in seconds with nine
 * decimals, so no precision is lost and no floating point is formatted. */
#include "render.h"

#include "../core/format.h"
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

static void value(struct tcm_text *text, const struct tcm_figure *figure, const struct tcm_stats *stats)
{
	uint64_t number = tcm_figure_value(figure, stats);
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

static void json_field(struct tcm_text *text, const char *name, bool is_first)
{
	tcm_text_str(text, is_first ? "{\n  \"" : ",\n  \"");
	tcm_text_str(text, name);
	tcm_text_str(text, "\": ");
}

static void render_json(struct tcm_text *text, const struct tcm_render_input *input)
{
	json_field(text, "tcm_version", true);
	tcm_text_str(text, "\"");
	tcm_text_str(text, input->version);
	tcm_text_str(text, "\"");
	json_field(text, "pid", false);
	tcm_text_u64(text, input->pid);
	json_field(text, "report_time_seconds", false);
	seconds(text, input->wall_clock_ns);
	json_field(text, "shutdown_trigger", false);
	tcm_text_str(text, "\"");
	tcm_text_str(text, tcm_render_trigger_name(input->stats->shutdown.trigger));
	tcm_text_str(text, "\"");
	json_field(text, "shutdown_t0_to_t1_seconds", false);
	seconds(text, t0_to_t1_ns(input->stats));
	for (size_t i = 0; i < tcm_figure_count; i++) {
		json_field(text, tcm_figures[i].name, false);
		value(text, &tcm_figures[i], input->stats);
	}
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

/* "# HELP tcm_NAME HELP\n# TYPE tcm_NAME TYPE\n" */
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
		prometheus_header(text, figure->name, figure->help,
				  figure->kind == TCM_FIGURE_COUNTER ? "counter" : "gauge");
		tcm_text_str(text, " ");
		value(text, figure, input->stats);
		tcm_text_str(text, "\n");
	}
}

/* "tcm 0.1.0, pid 42, written at 1765000000.123456789 (Unix time); shutdown: sigterm, T0 -> T1
 * 0.500000000 s", then one line per figure, its name padded to a column. */
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
	tcm_text_str(text, " s\n");
	static const char spaces[] = "                                                  ";
	for (size_t i = 0; i < tcm_figure_count; i++) {
		size_t length = strlen(tcm_figures[i].name);
		tcm_text_str(text, tcm_figures[i].name);
		tcm_text_str(text, spaces + (length < sizeof spaces - 1 ? length : sizeof spaces - 2));
		value(text, &tcm_figures[i], input->stats);
		if (tcm_figures[i].unit == TCM_FIGURE_BYTES) {
			tcm_text_str(text, " (");
			tcm_text_fixed1(text, tcm_figure_value(&tcm_figures[i], input->stats), 1 << 20);
			tcm_text_str(text, " MiB)");
		}
		tcm_text_str(text, "\n");
	}
}

/* <malloc version="tcm-2" tcm="0.1.0" pid="42" time_seconds="..." shutdown_trigger="none"
 * shutdown_t0_to_t1_seconds="0.000000000">, then <figure name=".." kind="gauge|counter"
 * value=".."/> per figure. Names and values need no escaping: [a-z0-9_.] only. */
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
		tcm_text_str(text, tcm_figures[i].kind == TCM_FIGURE_COUNTER ? "\" kind=\"counter\" value=\""
									      : "\" kind=\"gauge\" value=\"");
		value(text, &tcm_figures[i], input->stats);
		tcm_text_str(text, "\"/>\n");
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
