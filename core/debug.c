/* core/debug.c - tcm_fatal: one line on stderr, then abort. Used only for heap
 * corruption and broken invariants (see debug.h). Never allocates. */
#include "debug.h"

#include "format.h"
#include "os.h"

#include <stdlib.h>

_Noreturn void tcm_fatal(const char *message)
{
	char buffer[256];
	struct tcm_text text;
	tcm_text_init(&text, buffer, sizeof(buffer));
	tcm_text_str(&text, "tcm: fatal: ");
	tcm_text_str(&text, message);
	tcm_text_str(&text, "\n");
	/* tcm_os_write checks that no lock is held; a fatal error may come from
	 * under a lock, so write directly through the same primitive's logic. */
	tcm_os_write_unchecked(2, text.buffer, text.length);
	abort();
}

_Noreturn void tcm_fatal_assert(const char *file, int line, const char *condition)
{
	char buffer[256];
	struct tcm_text text;
	tcm_text_init(&text, buffer, sizeof(buffer));
	tcm_text_str(&text, "assertion failed at ");
	tcm_text_str(&text, file);
	tcm_text_str(&text, ":");
	tcm_text_u64(&text, (uint64_t)line);
	tcm_text_str(&text, ": ");
	tcm_text_str(&text, condition);
	tcm_fatal(text.buffer);
}
