/* bench/cpu_hog.c - a bursty CPU hog, the neighbour of a rolling upgrade: spins for busy_ms,
 * sleeps for idle_ms, until killed. bench/busy_host.sh runs several beside the service.
 * Usage: cpu_hog busy_ms idle_ms */
#define _GNU_SOURCE
#include "bench.h"

#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s busy_ms idle_ms\n", argv[0]);
		return 2;
	}
	uint64_t busy_ns = bench_arg_count(argv[1]) * 1000000ull;
	uint64_t idle_ns = bench_arg_count(argv[2]) * 1000000ull;
	volatile uint64_t spins = 0;
	for (;;) {
		uint64_t end_ns = bench_now_ns() + busy_ns;
		while (bench_now_ns() < end_ns)
			spins++;
		struct timespec idle = { (time_t)(idle_ns / 1000000000ull), (long)(idle_ns % 1000000000ull) };
		nanosleep(&idle, NULL);
	}
}
