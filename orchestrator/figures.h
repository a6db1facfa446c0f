/* orchestrator/figures.h - the one description of the statistics tcm reports: each figure's
 * name, unit, kind, window and where struct tcm_stats (or, for the figures of one size class,
 * struct tcm_size_class_stats) holds it. The report formats (render.h: JSON, the Prometheus
 * text format, text and XML) are drawn from these tables, so they carry the same figures under
 * the same names and cannot drift apart, as conf/schema.c is the one table of keys. Names
 * follow Prometheus practice: snake case, the base unit last (bytes, seconds, objects),
 * counters end in _total; figures over the time since the shutdown began say since_t0, and
 * their help says T0; a figure over the process's life says so in its help, one of now says
 * "now" (render_test checks each row).
 * Never: allocates. */
#ifndef TCM_ORCHESTRATOR_FIGURES_H
#define TCM_ORCHESTRATOR_FIGURES_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"   /* struct tcm_stats */

enum tcm_figure_kind {
	TCM_FIGURE_GAUGE,     /* a value now, or a maximum over its window */
	TCM_FIGURE_COUNTER,   /* only grows over the process's life */
};

enum tcm_figure_unit {
	TCM_FIGURE_BYTES,
	TCM_FIGURE_NANOSECONDS,   /* rendered in seconds, the base unit */
	TCM_FIGURE_COUNT,
};

/* The time a figure covers. */
enum tcm_figure_window {
	TCM_FIGURE_NOW,            /* a value at the time of the report */
	TCM_FIGURE_PROCESS_LIFE,   /* a count or a maximum since the process began */
	TCM_FIGURE_SINCE_T0,       /* a count or a maximum since the shutdown began; 0 before */
};

struct tcm_figure {
	const char            *name;     /* without the "tcm_" prefix, e.g. "heap_allocated_bytes" */
	enum tcm_figure_kind   kind;
	enum tcm_figure_unit   unit;
	enum tcm_figure_window window;
	size_t                 offset;   /* of its uint64_t in the record its table describes */
	const char            *help;     /* one line; says the window as the name does */
};

/* Figures of the whole allocator, in struct tcm_stats. */
extern const struct tcm_figure tcm_figures[];
extern const size_t tcm_figure_count;

/* Figures of one size class, in struct tcm_size_class_stats: reported per class, labelled by
 * its object_bytes. */
extern const struct tcm_figure tcm_size_class_figures[];
extern const size_t tcm_size_class_figure_count;

/* The window as reports name it: "now", "process_life" or "since_t0". */
const char *tcm_figure_window_name(enum tcm_figure_window window);

/* The figure's value in record (the struct its table describes). */
static inline uint64_t tcm_figure_value(const struct tcm_figure *figure, const void *record)
{
	return *(const uint64_t *)((const char *)record + figure->offset);
}

#endif
