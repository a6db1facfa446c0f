/* orchestrator/figures.h - the one description of the statistics tcm reports: each figure's
 * name, unit, kind, window and where struct tcm_stats holds it. The report formats
 * (render.h: JSON and the Prometheus text format) are drawn from this table, so they carry the
 * same figures under the same names and cannot drift apart, as conf/schema.c is the one table
 * of keys. Names follow Prometheus practice: snake case, the base unit last (bytes, seconds),
 * counters end in _total; figures over the time since the shutdown began say since_t0.
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

struct tcm_figure {
	const char          *name;     /* without the "tcm_" prefix, e.g. "heap_allocated_bytes" */
	enum tcm_figure_kind kind;
	enum tcm_figure_unit unit;
	size_t               offset;   /* of its uint64_t in struct tcm_stats */
	const char          *help;     /* one line; says the window: now, process life, since T0 */
};

extern const struct tcm_figure tcm_figures[];
extern const size_t tcm_figure_count;

/* The figure's value in stats. */
static inline uint64_t tcm_figure_value(const struct tcm_figure *figure, const struct tcm_stats *stats)
{
	return *(const uint64_t *)((const char *)stats + figure->offset);
}

#endif
