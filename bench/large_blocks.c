/* bench/large_blocks.c - large blocks: a few live slots (default 4); each step checks and frees
 * the block in a random slot and mallocs a new one of a random size, log-uniform in
 * 64 KiB-8 MiB (a random octave, then uniform within it), and touches every page of it. This is
 * the path where allocators map, unmap, cache or madvise whole spans, so it times page faults
 * and system calls as much as the allocator's own code.
 * Usage: large_blocks [ops] [live]   (defaults 40000, 4)
 * Timed: the steps plus the final checks and frees (filling the slots is not). Prints one result
 *        line. */
#define _GNU_SOURCE
#include "bench.h"

#define WORKLOAD "large_blocks"
#define LIVE_MAX 1024
#define MIN_BYTES (64u * 1024u)
#define OCTAVES 7u                     /* 64 KiB << 7 = 8 MiB */
#define MAX_BYTES (MIN_BYTES << OCTAVES)
#define PAGE_BYTES 4096u

static uint32_t large_size_draw(uint64_t *rng)
{
	uint64_t r = bench_rand(rng);
	uint32_t octave_start = MIN_BYTES << (uint32_t)((r >> 8) % OCTAVES);
	return octave_start + (uint32_t)(r >> 32) % octave_start;
}

static unsigned char *malloc_touched(uint64_t *rng)
{
	return bench_new_stamped(WORKLOAD, large_size_draw(rng), true);
}

/* The stamp at both ends plus the touch byte of the middle page (a block is at least 16 pages). */
static void check_and_free(unsigned char *p)
{
	uint32_t size_bytes = bench_stamp_check_upto(p, MAX_BYTES);
	if (size_bytes == 0)
		bench_fail(WORKLOAD, "live block overwritten at its ends", p);
	uint32_t middle_page = size_bytes / 2 / PAGE_BYTES * PAGE_BYTES;
	if (p[middle_page] != 1)
		bench_fail(WORKLOAD, "live block overwritten in the middle", p + middle_page);
	free(p);
}

int main(int argc, char **argv)
{
	unsigned long long ops = argc > 1 ? bench_arg_count(argv[1]) : 40000ull;
	unsigned long long live = argc > 2 ? bench_arg_count(argv[2]) : 4;
	if (ops == 0 || live == 0 || live > LIVE_MAX || argc > 3) {
		fprintf(stderr, "usage: %s [ops] [live 1..%d]\n", argv[0], LIVE_MAX);
		return 2;
	}
	uint64_t rng = bench_seed(0);
	unsigned char *slot[LIVE_MAX];
	for (unsigned long long i = 0; i < live; i++)
		slot[i] = malloc_touched(&rng);

	double t0 = bench_now_s();
	for (unsigned long long i = 0; i < ops; i++) {
		size_t idx = (size_t)(bench_rand(&rng) % live);
		check_and_free(slot[idx]);
		slot[idx] = malloc_touched(&rng);
	}
	for (unsigned long long i = 0; i < live; i++)
		check_and_free(slot[i]);
	double t1 = bench_now_s();

	char extra[32];
	snprintf(extra, sizeof extra, "live=%llu", live);
	bench_result(WORKLOAD, t1 - t0, ops, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
