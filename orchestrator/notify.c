/* orchestrator/notify.c - see notify.h. The only user of libsystemd: sd_notify
 * through a pointer resolved with dlopen("libsystemd.so.0"). Messages are
 * formatted by the callers into stack buffers (sd_notifyf would allocate). The
 * pid comes from core/os.c (tcm_os_process_id). */
#define _GNU_SOURCE
#include "notify.h"

#include "../core/core.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef int (*sd_notify_fn)(int unset_environment, const char *state);

static pid_t main_pid;                 /* written once by tcm_notify_init */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static _Atomic(sd_notify_fn) sd_notify_pointer;

void tcm_notify_init(void)
{
	const char *socket_path = getenv("NOTIFY_SOCKET");
	if (socket_path == NULL || socket_path[0] == '\0') {
		main_pid = 0;
		return;
	}
	const char *exec_pid = getenv("SYSTEMD_EXEC_PID");
	main_pid = exec_pid != NULL && exec_pid[0] != '\0' ? (pid_t)atol(exec_pid) : tcm_os_process_id();
}

bool tcm_notify_is_enabled(void)
{
	return main_pid != 0 && main_pid == tcm_os_process_id();
}

static void load_libsystemd(void)
{
	void *library = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (library != NULL)
		atomic_store(&sd_notify_pointer, (sd_notify_fn)dlsym(library, "sd_notify"));
}

int tcm_notify_send(const char *message)
{
	if (!tcm_notify_is_enabled())
		return -EPERM;
	pthread_once(&load_once, load_libsystemd);
	sd_notify_fn sd_notify = atomic_load(&sd_notify_pointer);
	if (sd_notify == NULL)
		return -ENOSYS;
	int saved_errno = errno;
	int result = sd_notify(0, message);
	errno = saved_errno;
	return result > 0 ? 0 : (result < 0 ? result : -ENOTCONN);
}
