/* core/format.h - allocation-free text building for diagnostics and stats
 * (malloc_stats, malloc_info, error lines): a fixed buffer that truncates
 * instead of failing. Never: allocates or calls printf-family functions. */
#ifndef TCM_CORE_FORMAT_H
#define TCM_CORE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

struct tcm_text {
	char  *buffer;     /* caller's storage */
	size_t capacity;   /* bytes of buffer, including room for a final NUL */
	size_t length;     /* bytes written, not counting the NUL; <= capacity - 1 */
};

void tcm_text_init(struct tcm_text *text, char *buffer, size_t capacity);
void tcm_text_str(struct tcm_text *text, const char *string);
void tcm_text_bytes(struct tcm_text *text, const char *bytes, size_t length);   /* the first length of them */
void tcm_text_u64(struct tcm_text *text, uint64_t value);
void tcm_text_hex(struct tcm_text *text, uint64_t value);   /* 0x-prefixed */
/* value scaled by 1/divisor with one decimal, e.g. bytes as MiB: "12.5" */
void tcm_text_fixed1(struct tcm_text *text, uint64_t value, uint64_t divisor);

#endif
