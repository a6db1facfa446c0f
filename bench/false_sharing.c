/* bench/false_sharing.c - a passive false-sharing probe (the shape of Hoard's cache-scratch): main
 * mallocs one small object per thread back to back, so neighbours likely share a 64-byte cache
 * line, and hands object i to thread i. Each thread checks and frees its object, then repeats
 * "malloc a small object, write it many times, check it, free it". An allocator that hands the
 * freed object back to the thread that freed it (a per-thread cache, LIFO) keeps the threads
 * writing into one cache line, which then bounces between cores on every write; one that returns
 * remote frees to the owner's memory gives each thread a line of its own.
 * Usage: false_sharing [iterations] [threads] [writes]   (defaults 4000000 total, 2, 64)
 * Timed: from the start barrier until every thread is joined. Prints one result line; the extra
 *        field sharing_threads counts threads whose first object of the loop shared a cache line
 *        with another thread's first object (the cause when the timing is bad). */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>

#define WORKLOAD "false_sharing"
#define THREADS_MAX 256
#define OBJECT_BYTES 16u
#define CACHE_LINE_BYTES 64u
#define HANDED_PATTERN 0xC0FFEE0000000000ull

struct worker {
	pthread_t thread;
	unsigned idx;
	unsigned long long iterations;
	uint64_t *handed;                  /* malloc'd by main, freed by this thread */
	uintptr_t first_object;            /* address of the loop's first object */
};

static struct worker workers[THREADS_MAX];
static unsigned long long write_count;
static pthread_barrier_t start_barrier;

static void *worker_main(void *arg)
{
	struct worker *self = arg;
	uint64_t tag = (uint64_t)self->idx << 32;
	pthread_barrier_wait(&start_barrier);

	if (self->handed[0] != (HANDED_PATTERN | self->idx) || self->handed[1] != self->idx)
		bench_fail(WORKLOAD, "handed object overwritten", self->handed);
	free(self->handed);

	for (unsigned long long i = 0; i < self->iterations; i++) {
		volatile uint64_t *object = malloc(OBJECT_BYTES);
		if (object == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL", NULL);
		if (i == 0)
			self->first_object = (uintptr_t)object;
		object[0] = tag;
		object[1] = self->idx;
		for (unsigned long long w = 0; w < write_count; w++)
			object[0] = object[0] + 1;
		if (object[0] != (tag | write_count) || object[1] != self->idx)
			bench_fail(WORKLOAD, "object written by another thread", (void *)object);
		free((void *)object);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long iterations = argc > 1 ? bench_arg_count(argv[1]) : 4000000ull;
	unsigned long long threads = argc > 2 ? bench_arg_count(argv[2]) : 2;
	unsigned long long writes = argc > 3 ? bench_arg_count(argv[3]) : 64;
	if (iterations == 0 || threads == 0 || threads > THREADS_MAX || writes == 0 ||
	    writes > 0xFFFFFFFFull || argc > 4) {
		fprintf(stderr, "usage: %s [iterations] [threads 1..%d] [writes]\n", argv[0], THREADS_MAX);
		return 2;
	}
	unsigned thread_count = (unsigned)threads;
	write_count = writes;
	if (pthread_barrier_init(&start_barrier, NULL, thread_count + 1) != 0)
		bench_fail(WORKLOAD, "pthread_barrier_init failed", NULL);

	/* Back to back, before any thread exists: the objects most likely to share lines. */
	for (unsigned t = 0; t < thread_count; t++) {
		workers[t].idx = t;
		workers[t].iterations = iterations / thread_count + (t < iterations % thread_count ? 1 : 0);
		workers[t].handed = malloc(OBJECT_BYTES);
		if (workers[t].handed == NULL)
			bench_fail(WORKLOAD, "malloc of a handed object returned NULL", NULL);
		workers[t].handed[0] = HANDED_PATTERN | t;
		workers[t].handed[1] = t;
	}
	for (unsigned t = 0; t < thread_count; t++)
		if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0)
			bench_fail(WORKLOAD, "pthread_create failed", NULL);

	pthread_barrier_wait(&start_barrier);
	double t0 = bench_now_s();
	for (unsigned t = 0; t < thread_count; t++)
		pthread_join(workers[t].thread, NULL);
	double t1 = bench_now_s();

	unsigned sharing_threads = 0;
	for (unsigned t = 0; t < thread_count; t++) {
		uintptr_t line = workers[t].first_object / CACHE_LINE_BYTES;
		for (unsigned u = 0; u < thread_count; u++) {
			if (u != t && workers[u].first_object / CACHE_LINE_BYTES == line) {
				sharing_threads++;
				break;
			}
		}
	}

	char extra[96];
	snprintf(extra, sizeof extra, "threads=%u writes=%llu sharing_threads=%u", thread_count,
		 write_count, sharing_threads);
	bench_result(WORKLOAD, t1 - t0, iterations, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
