/* bench/larson.c - a larson-style server: T lanes, each an array of live slots; each step frees a
 * random slot and mallocs a new random size into it (15/16 uniform in 16-1024 B, 1/16 in
 * 1025 B-8 KiB). As in the original larson benchmark, a lane is served by a chain of short-lived
 * threads: after its share of steps a thread starts a successor, hands it the slot array and
 * exits, so most frees hit objects malloc'd by a thread that has since exited (main fills the
 * arrays, so the first generation's frees are cross-thread too), and every generation creates
 * and tears down a thread cache per lane.
 * Usage: larson [ops] [threads] [slots] [generations]   (defaults 40000000 total, 4, 2048, 16)
 * Timed: from the start of the first generation until the last thread of every lane has checked
 *        and freed its slots and been joined. Prints one result line.
 * Invariants: a thread touches only its lane; it starts its successor only after its last
 *             access to the lane (pthread_create orders the hand-over), and the successor joins
 *             it, so at most one thread per lane runs steps at a time. */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <semaphore.h>

#define WORKLOAD "larson"
#define THREADS_MAX 256
#define SIZE_SMALL_MAX_BYTES 1024u
#define SIZE_LARGE_MAX_BYTES 8192u

struct lane {
	unsigned char **slot;
	size_t slot_count;
	uint64_t rng;
	unsigned long long ops;            /* steps over all generations */
	unsigned generation;               /* of the thread now serving the lane */
	pthread_t predecessor;             /* joined by the thread it started */
	pthread_t last;                    /* the final generation's thread; main joins it */
};

static struct lane lanes[THREADS_MAX];
static unsigned generation_count;
static sem_t lanes_done;

/* The size mix: 15/16 in [16, 1024], 1/16 in (1024, 8192]. */
static uint32_t larson_size_draw(uint64_t *rng)
{
	uint64_t r = bench_rand(rng);
	uint32_t span = (uint32_t)(r >> 20);
	if ((r >> 60) == 0)
		return SIZE_SMALL_MAX_BYTES + 1 + span % (SIZE_LARGE_MAX_BYTES - SIZE_SMALL_MAX_BYTES);
	return BENCH_SIZE_MIN_BYTES + span % (SIZE_SMALL_MAX_BYTES - BENCH_SIZE_MIN_BYTES + 1);
}

static unsigned char *malloc_stamped(uint64_t *rng)
{
	return bench_new_stamped(WORKLOAD, larson_size_draw(rng), false);
}

static void check_and_free(unsigned char *p, const char *when)
{
	if (bench_stamp_check_upto(p, SIZE_LARGE_MAX_BYTES) == 0)
		bench_fail(WORKLOAD, when, p);
	free(p);
}

static void *lane_thread(void *arg)
{
	struct lane *lane = arg;
	if (lane->generation > 0 && pthread_join(lane->predecessor, NULL) != 0)
		bench_fail(WORKLOAD, "pthread_join of the predecessor failed", NULL);

	/* This generation's share: ops split evenly, the remainder to the first generations. */
	unsigned long long steps = lane->ops / generation_count +
				   (lane->generation < lane->ops % generation_count ? 1 : 0);
	for (unsigned long long i = 0; i < steps; i++) {
		size_t idx = (size_t)(bench_rand(&lane->rng) % lane->slot_count);
		check_and_free(lane->slot[idx], "live object overwritten");
		lane->slot[idx] = malloc_stamped(&lane->rng);
	}

	if (lane->generation + 1 < generation_count) {
		lane->generation++;
		lane->predecessor = pthread_self();
		pthread_t successor;
		if (pthread_create(&successor, NULL, lane_thread, lane) != 0)
			bench_fail(WORKLOAD, "pthread_create of a successor failed", NULL);
		return NULL;
	}
	for (size_t i = 0; i < lane->slot_count; i++)
		check_and_free(lane->slot[i], "live object overwritten at teardown");
	lane->last = pthread_self();
	sem_post(&lanes_done);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long ops = argc > 1 ? bench_arg_count(argv[1]) : 40000000ull;
	unsigned long long threads = argc > 2 ? bench_arg_count(argv[2]) : 4;
	unsigned long long slots = argc > 3 ? bench_arg_count(argv[3]) : 2048;
	unsigned long long generations = argc > 4 ? bench_arg_count(argv[4]) : 16;
	if (ops == 0 || threads == 0 || threads > THREADS_MAX || slots == 0 || generations == 0 ||
	    generations > 100000 || argc > 5) {
		fprintf(stderr, "usage: %s [ops] [threads 1..%d] [slots] [generations]\n", argv[0],
			THREADS_MAX);
		return 2;
	}
	unsigned thread_count = (unsigned)threads;
	generation_count = (unsigned)generations;
	if (sem_init(&lanes_done, 0, 0) != 0)
		bench_die(WORKLOAD, "sem_init");

	for (unsigned t = 0; t < thread_count; t++) {
		struct lane *lane = &lanes[t];
		lane->slot_count = (size_t)slots;
		lane->rng = bench_seed(1 + t);
		lane->ops = ops / thread_count + (t < ops % thread_count ? 1 : 0);
		lane->slot = calloc(lane->slot_count, sizeof *lane->slot);
		if (lane->slot == NULL)
			bench_fail(WORKLOAD, "calloc of a slot array failed", NULL);
		for (size_t i = 0; i < lane->slot_count; i++)
			lane->slot[i] = malloc_stamped(&lane->rng);
	}

	double t0 = bench_now_s();
	for (unsigned t = 0; t < thread_count; t++) {
		pthread_t first;
		if (pthread_create(&first, NULL, lane_thread, &lanes[t]) != 0)
			bench_fail(WORKLOAD, "pthread_create failed", NULL);
	}
	for (unsigned t = 0; t < thread_count; t++)
		while (sem_wait(&lanes_done) != 0)
			;                          /* EINTR only */
	for (unsigned t = 0; t < thread_count; t++)
		if (pthread_join(lanes[t].last, NULL) != 0)
			bench_fail(WORKLOAD, "pthread_join of a lane's last thread failed", NULL);
	double t1 = bench_now_s();

	for (unsigned t = 0; t < thread_count; t++)
		free(lanes[t].slot);

	char extra[128];
	snprintf(extra, sizeof extra, "threads=%u slots=%llu generations=%u threads_started=%llu",
		 thread_count, slots, generation_count, (unsigned long long)thread_count * generation_count);
	bench_result(WORKLOAD, t1 - t0, ops, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
