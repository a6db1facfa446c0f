/* tests/process/background_release.c - release.rate_mib_s under the shim: with
 * a rate, free memory goes back to the kernel while the program keeps running
 * (no shutdown), and never faster than the rate allows; with rate 0 tcm starts
 * no worker thread at all.
 *   background_release rate    (run with TCM_RELEASE_RATE_MIB_S=64)
 *   background_release none    (run with TCM_RELEASE_RATE_MIB_S=0)
 * The rate bound is a correctness bound, not a speed assert: the worker may
 * release at most rate x (elapsed + one 100 ms tick) + one chunk, however slow
 * the machine; the test only waits (up to 20 s) for the release to happen. */
#define _GNU_SOURCE
#include "../../include/tcm.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#define CHECK(condition, ...) do { if (!(condition)) FAIL(__VA_ARGS__); } while (0)

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static uint64_t released_total(void)
{
	void (*stats_fn)(struct tcm_stats *) = (void (*)(struct tcm_stats *))dlsym(RTLD_DEFAULT, "tcm_stats");
	CHECK(stats_fn != NULL, "tcm_stats not found: is libtcm.so preloaded?");
	struct tcm_stats stats;
	stats_fn(&stats);
	return stats.released_total_bytes;
}

static int thread_count(void)
{
	DIR *tasks = opendir("/proc/self/task");
	CHECK(tasks != NULL, "opendir /proc/self/task");
	int count = 0;
	for (struct dirent *entry; (entry = readdir(tasks)) != NULL;)
		count += entry->d_name[0] != '.';
	closedir(tasks);
	return count;
}

/* Frees 64 MiB of 1 MiB blocks that were written (so resident). */
static void free_64_mib(void)
{
	enum { BLOCKS = 64 };
	void *blocks[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc(1 << 20);
		CHECK(blocks[i] != NULL, "malloc");
		memset(blocks[i], 0x5a, 1 << 20);
	}
	for (int i = 0; i < BLOCKS; i++)
		free(blocks[i]);
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: background_release rate|none");
	const char *rate_text = getenv("TCM_RELEASE_RATE_MIB_S");
	long rate_mib_s = rate_text != NULL ? atol(rate_text) : 0;
	if (strcmp(argv[1], "none") == 0) {
		CHECK(rate_mib_s == 0, "run with TCM_RELEASE_RATE_MIB_S=0");
		free_64_mib();
		CHECK(thread_count() == 1, "tcm started %d threads without a release rate", thread_count() - 1);
		CHECK(released_total() == 0, "memory was released without a rate or a shutdown");
		printf("no rate: no worker thread, nothing released\n");
		return 0;
	}
	CHECK(rate_mib_s > 0, "run with TCM_RELEASE_RATE_MIB_S > 0");
	uint64_t before = released_total();
	uint64_t start = now_ns();
	free_64_mib();
	uint64_t released = 0;
	while (now_ns() - start < 20ull * 1000000000u) {
		uint64_t elapsed_ns = now_ns() - start;
		released = released_total() - before;
		/* Upper bound: the rate over the elapsed time, one tick, one 2 MiB chunk. */
		uint64_t allowed = (uint64_t)rate_mib_s * (1 << 20) * (elapsed_ns + 100000000u) / 1000000000u + (2u << 20);
		CHECK(released <= allowed, "released %llu bytes after %llu ms: faster than %ld MiB/s",
		      (unsigned long long)released, (unsigned long long)(elapsed_ns / 1000000), rate_mib_s);
		if (released >= (32u << 20))
			break;
		usleep(20000);
	}
	CHECK(released >= (32u << 20), "only %llu bytes released in 20 s at %ld MiB/s",
	      (unsigned long long)released, rate_mib_s);
	printf("rate %ld MiB/s: %llu MiB released in the background within %llu ms\n", rate_mib_s,
	       (unsigned long long)(released >> 20), (unsigned long long)((now_ns() - start) / 1000000));
	return 0;
}
