/* orchestrator/render.h - a statistics report as JSON, in the Prometheus text format (for
 * node_exporter's textfile collector), as text, or as malloc_info's XML, drawn from the one
 * table of figures (figures.h) plus what
 * every report says of itself: tcm's version, the process id, the wall-clock time it was
 * written, and the shutdown's trigger and T0 -> T1 time.
 * Never: allocates, or calls a printf-family function (core/format.h builds the text), so a
 * report can be written from the exit path and the release worker. */
#ifndef TCM_ORCHESTRATOR_RENDER_H
#define TCM_ORCHESTRATOR_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "timeline.h"

enum tcm_render_format {
	TCM_RENDER_JSON,
	TCM_RENDER_PROMETHEUS,
	TCM_RENDER_TEXT,        /* for people: "name value" lines under a heading per window, then a
	                           table of the size classes */
	TCM_RENDER_XML,         /* malloc_info(3): <malloc version="tcm-2"> with one <figure/> each
	                           and one <size_class/> per class */
};

struct tcm_render_input {
	const struct tcm_stats *stats;
	/* The size classes, smallest first (tcm_size_class_stats); those that hold no span are
	 * left out of the report. */
	const struct tcm_size_class_stats *size_classes;
	size_t                  size_class_count;
	const char             *version;        /* tcm's, "MAJOR.MINOR.PATCH" */
	uint64_t                pid;
	uint64_t                wall_clock_ns;  /* when the report is written, since the epoch */
	/* The shutdown's course (timeline.h), JSON only and only when there are samples: the
	 * "timeline" of the exit report, which tcmctl stats --plot draws. */
	const struct tcm_timeline_sample *samples;
	size_t                  sample_count;
	uint64_t                deadline_ns;    /* exit.deadline_ms, from T0 */
};

/* The shutdown's trigger as reports name it: "none", "sigterm", "api" or "exit". */
const char *tcm_render_trigger_name(uint32_t trigger);

/* The format a path's suffix asks for: .json JSON, .prom Prometheus, anything else text. */
enum tcm_render_format tcm_render_format_of(const char *path);

/* Writes the report into buffer (capacity bytes, NUL-terminated); returns its length, or 0 when
 * it did not fit (a truncated report is never handed out). */
size_t tcm_render(enum tcm_render_format format, const struct tcm_render_input *input, char *buffer,
		  size_t capacity);

#endif
