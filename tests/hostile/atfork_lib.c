/* tests/hostile/atfork_lib.c - a library whose constructor registers
 * pthread_atfork handlers that allocate (malloc + free of a small and a
 * > 256 KiB block, strdup), as libraries with fork-safe state do.
 *
 * Preloaded with libtcm.so, its place in LD_PRELOAD decides whether its
 * handlers are registered before or after tcm's (shim/init.c registers tcm's
 * in its constructor): the later a preload, the earlier its constructor runs.
 * The constructor finds out which it was and records it in
 * hostile_atfork_lib_ran_before_tcm: it installs a probe SIGTERM handler
 * through sigaction and reads the kernel's action back with the raw system
 * call; before tcm's constructor the interposed sigaction passes straight
 * through (the kernel holds the probe), after it tcm wraps the handler (the
 * kernel holds tcm's). The previous action is then restored. Counters of the
 * handlers' runs let the test see that they took part in every fork. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORTED __attribute__((visibility("default")))

EXPORTED int hostile_atfork_lib_ran_before_tcm = -1;   /* -1: constructor did not run */
EXPORTED atomic_uint hostile_atfork_lib_prepare_runs;
EXPORTED atomic_uint hostile_atfork_lib_parent_runs;
EXPORTED atomic_uint hostile_atfork_lib_child_runs;

/* Allocates what a library's handler typically does; returns 0, or -1 if an
 * allocation failed or came back wrong. */
static int allocate_something(const char *tag)
{
	char *small = malloc(48);
	char *large = malloc(300 * 1024);   /* a span of its own: always the page heap */
	char *copy = strdup(tag);
	int result = small != NULL && large != NULL && copy != NULL && strcmp(copy, tag) == 0 ? 0 : -1;
	if (large != NULL) {
		memset(large, 0x5a, 4096);
		large[300 * 1024 - 1] = 1;
	}
	free(copy);
	free(large);
	free(small);
	return result;
}

static void on_prepare(void)
{
	if (allocate_something("prepare") != 0)
		abort();
	atomic_fetch_add(&hostile_atfork_lib_prepare_runs, 1);
}

static void on_parent(void)
{
	if (allocate_something("parent") != 0)
		abort();
	atomic_fetch_add(&hostile_atfork_lib_parent_runs, 1);
}

static void on_child(void)
{
	if (allocate_something("child") != 0)
		abort();
	atomic_fetch_add(&hostile_atfork_lib_child_runs, 1);
}

static void probe_handler(int signo)
{
	(void)signo;
}

/* The kernel's view of a signal action: the handler is the first field on
 * every Linux architecture; the rest is sized generously. */
struct kernel_action {
	void *handler;
	unsigned long rest[8];
};

static int tcm_was_armed(void)
{
	struct sigaction probe = { .sa_handler = probe_handler }, previous;
	sigemptyset(&probe.sa_mask);
	if (sigaction(SIGTERM, &probe, &previous) != 0)
		return -1;
	struct kernel_action in_kernel;
	long err = syscall(SYS_rt_sigaction, SIGTERM, NULL, &in_kernel, 64 / 8);
	sigaction(SIGTERM, &previous, NULL);
	if (err != 0)
		return -1;
	return in_kernel.handler != (void *)probe_handler;
}

__attribute__((constructor)) static void register_allocating_handlers(void)
{
	int armed = tcm_was_armed();
	hostile_atfork_lib_ran_before_tcm = armed < 0 ? -2 : !armed;
	pthread_atfork(on_prepare, on_parent, on_child);
}
