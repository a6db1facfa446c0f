/* tests/hostile/threads.c - 10,000 short-lived threads under LD_PRELOAD=libtcm.so
 * leave the process's memory bounded (DESIGN invariant 4: a dying thread's
 * cache goes back to the central lists; nothing accumulates per dead thread).
 *
 * 200 batches of 50 threads, each started, run and joined together. Each thread
 * allocates 8 blocks (24 B .. 40 KiB, and 300 KiB in one thread of 8), checks
 * and frees 6 of them, and leaves 2 in a hand-off slot; the thread of the next
 * batch in that slot checks and frees them (a free by another thread than the
 * allocating one, after that thread is gone). After a warm-up of 10 batches the
 * test records VmRSS (and tcm_stats under tcm); at the end, with every block
 * freed, it requires (generous bounds, not a leak hunt):
 *   VmRSS            <= warm-up + 64 MiB
 *   tcm: threads_live <= 4, allocated_bytes <= warm-up + 4 MiB,
 *        thread_cached_bytes <= 64 MiB, mapped_bytes <= warm-up + 128 MiB.
 * Exit 0 on success. */
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

#define BATCHES 200
#define BATCH_THREADS 50
#define WARMUP_BATCHES 10
#define BLOCKS 8
#define HANDED_OFF 2
#define MIB ((uint64_t)1 << 20)

struct handoff {
	unsigned char *block[HANDED_OFF];
	size_t len[HANDED_OFF];
	unsigned seed[HANDED_OFF];
};

static struct handoff slots[BATCH_THREADS];   /* slot i: written by batch b's thread i, read by batch b+1's */
static volatile int corrupted;

struct thread_arg {
	unsigned index;
	unsigned batch;
};

static size_t block_size(unsigned thread_number, unsigned i)
{
	static const size_t sizes[BLOCKS] = { 24, 100, 256, 1000, 3000, 9000, 20000, 40000 };
	if (i == BLOCKS - 1 && thread_number % 8 == 0)
		return 300 * 1024;   /* a span of its own */
	return sizes[(i + thread_number) % BLOCKS];
}

static void *short_lived(void *p)
{
	const struct thread_arg *arg = p;
	struct handoff *slot = &slots[arg->index];
	/* What the previous batch's thread left here. */
	for (int i = 0; i < HANDED_OFF; i++) {
		if (slot->block[i] == NULL)
			continue;
		if (check_fill(slot->block[i], slot->len[i], slot->seed[i]) != slot->len[i])
			corrupted = 1;
		free(slot->block[i]);
		slot->block[i] = NULL;
	}
	unsigned thread_number = arg->batch * BATCH_THREADS + arg->index;
	unsigned char *block[BLOCKS];
	size_t len[BLOCKS];
	for (unsigned i = 0; i < BLOCKS; i++) {
		len[i] = block_size(thread_number, i);
		block[i] = malloc(len[i]);
		if (block[i] == NULL) {
			corrupted = 2;
			return NULL;
		}
		fill(block[i], len[i], thread_number + i);
	}
	for (unsigned i = 0; i < BLOCKS; i++) {
		if (check_fill(block[i], len[i], thread_number + i) != len[i])
			corrupted = 1;
		if (i < BLOCKS - HANDED_OFF) {
			free(block[i]);
		} else {
			unsigned k = i - (BLOCKS - HANDED_OFF);
			slot->block[k] = block[i];
			slot->len[k] = len[i];
			slot->seed[k] = thread_number + i;
		}
	}
	return NULL;
}

typedef void (*stats_fn)(struct tcm_stats *);

static void run_batch(unsigned batch)
{
	pthread_t threads[BATCH_THREADS];
	struct thread_arg args[BATCH_THREADS];
	for (unsigned i = 0; i < BATCH_THREADS; i++) {
		args[i] = (struct thread_arg){ .index = i, .batch = batch };
		int err = pthread_create(&threads[i], NULL, short_lived, &args[i]);
		HOSTILE_CHECK(err == 0, "batch %u: pthread_create: %s", batch, strerror(err));
	}
	for (unsigned i = 0; i < BATCH_THREADS; i++)
		pthread_join(threads[i], NULL);
	HOSTILE_CHECK(!corrupted, "batch %u: %s", batch,
		      corrupted == 2 ? "malloc returned NULL" : "a block's contents changed");
}

int main(void)
{
	bool under_tcm = hostile_require_tcm("threads");
	hostile_watchdog(55, "threads: 10,000 threads did not finish in 55 s");
	stats_fn stats = under_tcm ? (stats_fn)dlsym(RTLD_DEFAULT, "tcm_stats") : NULL;
	HOSTILE_CHECK(!under_tcm || stats != NULL, "tcm_stats not found");
	struct tcm_stats warm = { 0 }, end = { 0 };
	uint64_t warm_rss = 0;
	for (unsigned batch = 0; batch < BATCHES; batch++) {
		run_batch(batch);
		if (batch + 1 == WARMUP_BATCHES) {
			warm_rss = hostile_vm_rss_bytes();
			if (stats != NULL)
				stats(&warm);
		}
	}
	/* The last batch's hand-offs: freed by the main thread. */
	for (unsigned i = 0; i < BATCH_THREADS; i++)
		for (int k = 0; k < HANDED_OFF; k++)
			free(slots[i].block[k]);
	uint64_t end_rss = hostile_vm_rss_bytes();
	hostile_print("threads: %d threads; VmRSS %lu MiB after %d, %lu MiB at the end", BATCHES * BATCH_THREADS,
		      (unsigned long)(warm_rss / MIB), WARMUP_BATCHES * BATCH_THREADS, (unsigned long)(end_rss / MIB));
	HOSTILE_CHECK(end_rss <= warm_rss + 64 * MIB, "VmRSS grew from %lu to %lu MiB over %d short-lived threads",
		      (unsigned long)(warm_rss / MIB), (unsigned long)(end_rss / MIB), BATCHES * BATCH_THREADS);
	if (stats == NULL)
		return 0;
	stats(&end);
	hostile_print("threads: tcm threads_live %lu, allocated %lu KiB (warm-up %lu), thread caches %lu KiB, "
		      "central %lu KiB, mapped %lu MiB (warm-up %lu)", (unsigned long)end.threads_live,
		      (unsigned long)(end.allocated_bytes >> 10), (unsigned long)(warm.allocated_bytes >> 10),
		      (unsigned long)(end.thread_cached_bytes >> 10), (unsigned long)(end.central_cached_bytes >> 10),
		      (unsigned long)(end.mapped_bytes / MIB), (unsigned long)(warm.mapped_bytes / MIB));
	HOSTILE_CHECK(end.threads_live <= 4, "tcm counts %lu live thread caches after every thread ended",
		      (unsigned long)end.threads_live);
	HOSTILE_CHECK(end.allocated_bytes <= warm.allocated_bytes + 4 * MIB,
		      "tcm counts %lu KiB allocated with every block freed (warm-up: %lu KiB)",
		      (unsigned long)(end.allocated_bytes >> 10), (unsigned long)(warm.allocated_bytes >> 10));
	HOSTILE_CHECK(end.thread_cached_bytes <= 64 * MIB, "%lu MiB left in thread caches",
		      (unsigned long)(end.thread_cached_bytes / MIB));
	HOSTILE_CHECK(end.mapped_bytes <= warm.mapped_bytes + 128 * MIB, "tcm's mapping grew from %lu to %lu MiB",
		      (unsigned long)(warm.mapped_bytes / MIB), (unsigned long)(end.mapped_bytes / MIB));
	return 0;
}
