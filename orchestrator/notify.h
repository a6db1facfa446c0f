/* orchestrator/notify.h - sd_notify messages to the service manager, through
 * libsystemd, which is loaded with dlopen on first use so that processes not
 * started by systemd never load it (start-up cost).
 *
 * Rules: messages go out only when NOTIFY_SOCKET is set and only from the
 * service's main process: children inherit LD_PRELOAD and NOTIFY_SOCKET, so the
 * main process is the one SYSTEMD_EXEC_PID names (or, under a manager that does
 * not set it, the process that started tcm), and any other pid stays silent.
 * NOTIFY_SOCKET is left in the environment. A socket that points nowhere, or a
 * missing libsystemd, costs nothing and prints nothing. */
#ifndef TCM_ORCHESTRATOR_NOTIFY_H
#define TCM_ORCHESTRATOR_NOTIFY_H

#include <stdbool.h>

/* Reads the environment once (at start-up). */
void tcm_notify_init(void);

/* True when this process (by pid, so not a fork child) may send. */
bool tcm_notify_is_enabled(void);

/* Sends one newline-separated message such as "STOPPING=1". Returns 0 when it
 * was sent, else a negative errno (silently: callers only count). Not
 * async-signal-safe (dlopen on first use): the worker and exit paths call it. */
int tcm_notify_send(const char *message);

#endif
