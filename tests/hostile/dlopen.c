/* tests/hostile/dlopen.c - dlopen/dlclose, 50 times, of a library that
 * allocates in its constructor and frees in its destructor (dlopen_lib.c),
 * under LD_PRELOAD=libtcm.so.
 *
 *   dlopen /path/to/libtcm_hostile_dl.so
 *
 * Each round: dlopen (the constructor allocates), copy the blocks the library
 * hands over, dlclose (the destructor frees what it kept), check the library is
 * really unloaded (RTLD_NOLOAD finds nothing, so the next round runs its
 * constructor again), then queue the handed-over blocks to a worker thread of
 * this program, which checks their contents and frees them while later rounds
 * load the library again. At the end every block is freed: tcm's
 * allocated_bytes must be back within 4 MiB of where it started, and VmRSS
 * must not have grown by more than 64 MiB. */
#define _GNU_SOURCE
#include "hostile.h"
#include "../../include/tcm.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../process/pattern.h"

#define ROUNDS 50
#define BLOCKS 32   /* HOSTILE_DL_BLOCKS */
#define MIB ((uint64_t)1 << 20)

struct job {
	void *block[BLOCKS];
	size_t len[BLOCKS];
	unsigned seed[BLOCKS];
	struct job *next;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_changed = PTHREAD_COND_INITIALIZER;
static struct job *queue_head;
static bool queue_closed;
static int freed_jobs;
static int bad_blocks;

static void *free_handed_over(void *unused)
{
	(void)unused;
	for (;;) {
		pthread_mutex_lock(&queue_lock);
		while (queue_head == NULL && !queue_closed)
			pthread_cond_wait(&queue_changed, &queue_lock);
		struct job *job = queue_head;
		if (job != NULL)
			queue_head = job->next;
		pthread_mutex_unlock(&queue_lock);
		if (job == NULL)
			return NULL;
		for (int i = 0; i < BLOCKS; i++) {
			if (check_fill(job->block[i], job->len[i], job->seed[i]) != job->len[i])
				bad_blocks++;
			free(job->block[i]);
		}
		free(job);
		freed_jobs++;
	}
}

static void *lib_symbol(void *handle, const char *name)
{
	void *symbol = dlsym(handle, name);
	HOSTILE_CHECK(symbol != NULL, "dlsym(%s): %s", name, dlerror());
	return symbol;
}

static struct job *load_and_unload(const char *path, int round)
{
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	HOSTILE_CHECK(handle != NULL, "round %d: dlopen(%s): %s", round, path, dlerror());
	HOSTILE_CHECK(*(int *)lib_symbol(handle, "hostile_dl_constructed") == 1,
		      "round %d: the library's constructor did not run or an allocation failed", round);
	void **blocks = lib_symbol(handle, "hostile_dl_handoff");
	size_t *lens = lib_symbol(handle, "hostile_dl_handoff_len");
	unsigned *seeds = lib_symbol(handle, "hostile_dl_handoff_seed");
	struct job *job = calloc(1, sizeof(*job));
	HOSTILE_CHECK(job != NULL, "calloc");
	for (int i = 0; i < BLOCKS; i++) {
		job->block[i] = blocks[i];
		job->len[i] = lens[i];
		job->seed[i] = seeds[i];
	}
	HOSTILE_CHECK(dlclose(handle) == 0, "round %d: dlclose: %s", round, dlerror());
	HOSTILE_CHECK(dlopen(path, RTLD_NOW | RTLD_NOLOAD) == NULL,
		      "round %d: the library is still loaded after dlclose (its constructor would not run again)",
		      round);
	return job;
}

typedef void (*stats_fn)(struct tcm_stats *);

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: dlopen /path/to/libtcm_hostile_dl.so\n");
		return 2;
	}
	bool under_tcm = hostile_require_tcm("dlopen");
	hostile_watchdog(50, "dlopen: 50 rounds did not finish in 50 s");
	stats_fn stats = under_tcm ? (stats_fn)dlsym(RTLD_DEFAULT, "tcm_stats") : NULL;
	HOSTILE_CHECK(!under_tcm || stats != NULL, "tcm_stats not found");
	pthread_t freer;
	HOSTILE_CHECK(pthread_create(&freer, NULL, free_handed_over, NULL) == 0, "pthread_create");
	struct tcm_stats start = { 0 }, end = { 0 };
	uint64_t start_rss = 0;
	for (int round = 0; round < ROUNDS; round++) {
		struct job *job = load_and_unload(argv[1], round);
		if (round == 0) {   /* after the first load: libdl's own allocations are in */
			start_rss = hostile_vm_rss_bytes();
			if (stats != NULL)
				stats(&start);
		}
		pthread_mutex_lock(&queue_lock);
		job->next = queue_head;
		queue_head = job;
		pthread_cond_signal(&queue_changed);
		pthread_mutex_unlock(&queue_lock);
	}
	pthread_mutex_lock(&queue_lock);
	queue_closed = true;
	pthread_cond_signal(&queue_changed);
	pthread_mutex_unlock(&queue_lock);
	pthread_join(freer, NULL);
	HOSTILE_CHECK(freed_jobs == ROUNDS, "the worker freed %d of %d rounds' blocks", freed_jobs, ROUNDS);
	HOSTILE_CHECK(bad_blocks == 0, "%d handed-over blocks changed after dlclose", bad_blocks);
	uint64_t end_rss = hostile_vm_rss_bytes();
	hostile_print("dlopen: %d load/unload rounds; VmRSS %lu MiB after the first, %lu MiB at the end", ROUNDS,
		      (unsigned long)(start_rss / MIB), (unsigned long)(end_rss / MIB));
	HOSTILE_CHECK(end_rss <= start_rss + 64 * MIB, "VmRSS grew from %lu to %lu MiB",
		      (unsigned long)(start_rss / MIB), (unsigned long)(end_rss / MIB));
	if (stats == NULL)
		return 0;
	stats(&end);
	hostile_print("dlopen: tcm allocated %lu KiB after the first round (its blocks not yet freed), %lu KiB at "
		      "the end", (unsigned long)(start.allocated_bytes >> 10), (unsigned long)(end.allocated_bytes >> 10));
	HOSTILE_CHECK(end.allocated_bytes <= start.allocated_bytes + 4 * MIB,
		      "tcm counts %lu KiB allocated at the end (%lu KiB after the first round)",
		      (unsigned long)(end.allocated_bytes >> 10), (unsigned long)(start.allocated_bytes >> 10));
	return 0;
}
