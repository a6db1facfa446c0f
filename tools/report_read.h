/* tools/report_read.h - a JSON or Prometheus report tcm wrote (orchestrator/render.c), read back
 * into the records it was rendered from, by the same tables of figures (orchestrator/figures.h),
 * so that tcmctl stats shows any report as the text malloc_stats prints. A name no table has is
 * skipped (a report of a newer tcm), a line that is not a report's is an error. */
#ifndef TCM_TOOLS_REPORT_READ_H
#define TCM_TOOLS_REPORT_READ_H

#include <stdbool.h>
#include <stdio.h>

#include "../orchestrator/render.h"

#define TCMCTL_REPORT_SIZE_CLASSES_MAX 64

struct tcmctl_report {
	struct tcm_stats            stats;
	struct tcm_size_class_stats size_classes[TCMCTL_REPORT_SIZE_CLASSES_MAX];
	size_t                      size_class_count;
	char                        version[32];
	uint64_t                    pid;
	uint64_t                    wall_clock_ns;
};

/* Reads the report whose first line is first_line (already read from `from`) into *out. Returns
 * true, or false with the reason in error (error_bytes). */
bool tcmctl_report_read(FILE *from, const char *first_line, struct tcmctl_report *out, char *error,
			size_t error_bytes);

/* The text of *report (render.h's TCM_RENDER_TEXT) on `to`. */
void tcmctl_report_print_text(const struct tcmctl_report *report, FILE *to);

#endif
