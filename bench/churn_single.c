/* bench/churn_single.c - single-thread small-object churn: a ring of live slots; each step frees
 * a random slot and mallocs a new random size into it (bench.h size mix), stamping both ends.
 * Usage: churn_single [ops] [slots]   (defaults 40000000 and 32768, about 12 MiB live)
 * Timed: the churn loop only (filling and emptying the ring are not). Prints one result line. */
#define _GNU_SOURCE
#include "bench.h"

#define WORKLOAD "churn_single"

int main(int argc, char **argv)
{
	unsigned long long ops = argc > 1 ? bench_arg_count(argv[1]) : 40000000ull;
	unsigned long long slots = argc > 2 ? bench_arg_count(argv[2]) : 32768ull;
	if (ops == 0 || slots == 0 || argc > 3) {
		fprintf(stderr, "usage: %s [ops] [slots]\n", argv[0]);
		return 2;
	}

	uint64_t rng = bench_seed(0);
	unsigned char **ring = calloc(slots, sizeof *ring);
	if (ring == NULL)
		bench_fail(WORKLOAD, "calloc of the ring failed", NULL);
	for (unsigned long long i = 0; i < slots; i++) {
		uint32_t size_bytes = bench_size_draw(&rng);
		ring[i] = malloc(size_bytes);
		if (ring[i] == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL while filling", NULL);
		bench_stamp(ring[i], size_bytes);
	}

	double t0 = bench_now_s();
	for (unsigned long long i = 0; i < ops; i++) {
		/* The slot draw uses the low bits, the size draw the high bits of another draw. */
		size_t idx = (size_t)(bench_rand(&rng) % slots);
		if (bench_stamp_check(ring[idx]) == 0)
			bench_fail(WORKLOAD, "live object overwritten", ring[idx]);
		free(ring[idx]);
		uint32_t size_bytes = bench_size_draw(&rng);
		unsigned char *p = malloc(size_bytes);
		if (p == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL", NULL);
		bench_stamp(p, size_bytes);
		ring[idx] = p;
	}
	double t1 = bench_now_s();

	for (unsigned long long i = 0; i < slots; i++) {
		if (bench_stamp_check(ring[i]) == 0)
			bench_fail(WORKLOAD, "live object overwritten at teardown", ring[i]);
		free(ring[i]);
	}
	free(ring);

	char extra[64];
	snprintf(extra, sizeof extra, "slots=%llu", slots);
	bench_result(WORKLOAD, t1 - t0, ops, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
