/* tools/report_read.c - see report_read.h. JSON is read line by line as render.c writes it: the
 * top-level "  \"name\": value" lines, one line per size class, the figure_windows and timeline
 * blocks skipped (the windows are the table's; tcmctl stats --plot reads the timeline). */
#include "report_read.h"

#include "../orchestrator/figures.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_BYTES (128 * 1024)

/* Whether name (length bytes, not NUL-terminated) is word. */
static bool is_name(const char *name, size_t length, const char *word)
{
	return strlen(word) == length && memcmp(name, word, length) == 0;
}

/* A figure's value as a report writes it: seconds with nine decimals for nanoseconds, else an
 * unsigned integer. */
static bool parse_value(const struct tcm_figure *figure, const char *text, uint64_t *out)
{
	char *end;
	uint64_t whole = strtoull(text, &end, 10);
	if (end == text)
		return false;
	if (figure->unit != TCM_FIGURE_NANOSECONDS) {
		*out = whole;
		return true;
	}
	uint64_t fraction = 0;
	if (*end == '.') {
		const char *digits = end + 1;
		for (int i = 0; i < 9; i++)
			fraction = fraction * 10 + (uint64_t)(digits[i] >= '0' && digits[i] <= '9' ? digits[i] - '0' : 0);
	}
	*out = whole * 1000000000u + fraction;
	return true;
}

/* Sets the figure of table named name (name_length bytes) in record from value. Returns false
 * for a name the table does not have. */
static bool set_figure(const struct tcm_figure *table, size_t count, const char *name, size_t name_length,
		       const char *value, void *record)
{
	for (size_t i = 0; i < count; i++)
		if (is_name(name, name_length, table[i].name)) {
			uint64_t number;
			if (parse_value(&table[i], value, &number))
				*(uint64_t *)((char *)record + table[i].offset) = number;
			return true;
		}
	return false;
}

/* Says why a report was refused: what, and the line. Returns false. */
static bool refuse(char *error, size_t error_bytes, const char *what, const char *line)
{
	snprintf(error, error_bytes, "%s: %.200s", what, line);
	return false;
}

static const struct tcm_figure seconds_figure = { .unit = TCM_FIGURE_NANOSECONDS };

/* The report's own fields, which no table holds. */
static void set_t0_to_t1(struct tcmctl_report *out, const char *value)
{
	uint64_t ns;
	if (parse_value(&seconds_figure, value, &ns) && ns != 0) {
		out->stats.shutdown.t0_ns = 1;   /* the report keeps only the difference */
		out->stats.shutdown.t1_ns = 1 + ns;
	}
}

static void set_trigger(struct tcmctl_report *out, const char *name, size_t length)
{
	for (uint32_t trigger = TCM_SHUTDOWN_NONE; trigger <= TCM_SHUTDOWN_EXIT; trigger++)
		if (is_name(name, length, tcm_render_trigger_name(trigger)))
			out->stats.shutdown.trigger = trigger;
}

/* The class of object_bytes, added at the end when it is new; NULL when there is no room. */
static struct tcm_size_class_stats *class_of(struct tcmctl_report *out, uint64_t object_bytes)
{
	for (size_t i = 0; i < out->size_class_count; i++)
		if (out->size_classes[i].object_bytes == object_bytes)
			return &out->size_classes[i];
	if (out->size_class_count == TCMCTL_REPORT_SIZE_CLASSES_MAX)
		return NULL;
	struct tcm_size_class_stats *added = &out->size_classes[out->size_class_count++];
	*added = (struct tcm_size_class_stats){ .object_bytes = object_bytes };
	return added;
}

/* "    {\"object_bytes\": 16, \"span_bytes\": 8192, \"size_class_spans\": 3, ...}" */
static bool read_json_class(struct tcmctl_report *out, const char *line)
{
	static const char opening[] = "{\"object_bytes\": ";
	const char *at = strstr(line, opening);
	if (at == NULL)
		return false;
	struct tcm_size_class_stats *size_class = class_of(out, strtoull(at + sizeof opening - 1, NULL, 10));
	if (size_class == NULL)
		return true;
	while ((at = strstr(at, ", \"")) != NULL) {
		const char *name = at + 3, *end = strchr(name, '"');
		if (end == NULL || strncmp(end, "\": ", 3) != 0)
			return false;
		if (is_name(name, (size_t)(end - name), "span_bytes"))
			size_class->span_bytes = strtoull(end + 3, NULL, 10);
		else
			set_figure(tcm_size_class_figures, tcm_size_class_figure_count, name, (size_t)(end - name), end + 3,
				   size_class);
		at = end;
	}
	return true;
}

static bool read_json(FILE *from, struct tcmctl_report *out, char *error, size_t error_bytes)
{
	char line[4096];
	enum { TOP, SIZE_CLASSES, SKIPPED } block = TOP;
	while (fgets(line, sizeof line, from) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (block != TOP) {
			if (strcmp(line, "  ]") == 0 || strcmp(line, "  ],") == 0 || strcmp(line, "  }") == 0 ||
			    strcmp(line, "  },") == 0)
				block = TOP;
			else if (block == SIZE_CLASSES && !read_json_class(out, line))
				return refuse(error, error_bytes, "not a size class of a tcm report", line);
			continue;
		}
		if (strcmp(line, "}") == 0)
			return true;
		const char *name = line + 3, *end = strchr(name, '"');
		if (strncmp(line, "  \"", 3) != 0 || end == NULL || strncmp(end, "\": ", 3) != 0)
			return refuse(error, error_bytes, "not a line of a tcm report", line);
		size_t length = (size_t)(end - name);
		const char *value = end + 3;
		if (strcmp(value, "[") == 0)
			block = is_name(name, length, "size_classes") ? SIZE_CLASSES : SKIPPED;
		else if (strcmp(value, "{") == 0)
			block = SKIPPED;
		else if (is_name(name, length, "tcm_version"))
			snprintf(out->version, sizeof out->version, "%.*s", (int)strcspn(value + 1, "\""), value + 1);
		else if (is_name(name, length, "pid"))
			out->pid = strtoull(value, NULL, 10);
		else if (is_name(name, length, "report_time_seconds"))
			parse_value(&seconds_figure, value, &out->wall_clock_ns);
		else if (is_name(name, length, "shutdown_trigger"))
			set_trigger(out, value + 1, strcspn(value + 1, "\""));
		else if (is_name(name, length, "shutdown_t0_to_t1_seconds"))
			set_t0_to_t1(out, value);
		else
			set_figure(tcm_figures, tcm_figure_count, name, length, value, &out->stats);
	}
	return refuse(error, error_bytes, "the report ends before its closing brace", "");
}

/* The value of label in "{a=\"x\",b=\"y\"}", copied to out (out_bytes); false when absent. */
static bool label_value(const char *labels, const char *label, char *out, size_t out_bytes)
{
	char key[64];
	snprintf(key, sizeof key, "%s=\"", label);
	const char *at = strstr(labels, key);
	if (at == NULL)
		return false;
	at += strlen(key);
	snprintf(out, out_bytes, "%.*s", (int)strcspn(at, "\""), at);
	return true;
}

static bool read_prometheus(FILE *from, struct tcmctl_report *out, char *error, size_t error_bytes)
{
	char line[4096], text[64];
	while (fgets(line, sizeof line, from) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		const char *value = strrchr(line, ' ');
		if (strncmp(line, "tcm_", 4) != 0 || value == NULL)
			return refuse(error, error_bytes, "not a sample of a tcm report", line);
		value++;
		const char *name = line + 4;
		size_t length = strcspn(name, "{ ");
		const char *labels = name[length] == '{' ? name + length : "";
		if (is_name(name, length, "info")) {
			label_value(labels, "version", out->version, sizeof out->version);
			if (label_value(labels, "pid", text, sizeof text))
				out->pid = strtoull(text, NULL, 10);
		} else if (is_name(name, length, "shutdown_info")) {
			if (label_value(labels, "trigger", text, sizeof text))
				set_trigger(out, text, strlen(text));
		} else if (is_name(name, length, "report_time_seconds")) {
			parse_value(&seconds_figure, value, &out->wall_clock_ns);
		} else if (is_name(name, length, "shutdown_t0_to_t1_seconds")) {
			set_t0_to_t1(out, value);
		} else if (label_value(labels, "object_bytes", text, sizeof text)) {
			struct tcm_size_class_stats *size_class = class_of(out, strtoull(text, NULL, 10));
			if (size_class != NULL)
				set_figure(tcm_size_class_figures, tcm_size_class_figure_count, name, length, value,
					   size_class);
		} else {
			set_figure(tcm_figures, tcm_figure_count, name, length, value, &out->stats);
		}
	}
	return true;
}

bool tcmctl_report_read(FILE *from, const char *first_line, struct tcmctl_report *out, char *error,
			size_t error_bytes)
{
	memset(out, 0, sizeof *out);
	if (strcmp(first_line, "{\n") == 0)
		return read_json(from, out, error, error_bytes);
	if (strncmp(first_line, "# HELP tcm_", 11) == 0)
		return read_prometheus(from, out, error, error_bytes);
	return refuse(error, error_bytes, "not a JSON or Prometheus report of tcm", first_line);
}

void tcmctl_report_print_text(const struct tcmctl_report *report, FILE *to)
{
	const struct tcm_render_input input = {
		.stats = &report->stats,
		.size_classes = report->size_classes,
		.size_class_count = report->size_class_count,
		.version = report->version,
		.pid = report->pid,
		.wall_clock_ns = report->wall_clock_ns,
	};
	char *text = malloc(TEXT_BYTES);
	if (text == NULL)
		return;
	size_t length = tcm_render(TCM_RENDER_TEXT, &input, text, TEXT_BYTES);
	fwrite(text, 1, length, to);
	free(text);
}
