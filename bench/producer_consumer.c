/* bench/producer_consumer.c - one-way cross-thread frees: P producer threads malloc objects
 * (bench.h size mix), stamp them and pass them through a bounded lock-free SPSC ring to their
 * consumer thread, which checks and frees them. Every free is remote and memory only ever flows
 * from producer to consumer, so an allocator must move freed objects back to where they are
 * malloc'd (or let the consumer's side grow): the message-passing pattern of pipelines.
 * Usage: producer_consumer [objects] [pairs]   (defaults 40000000 total, 2 producer/consumer pairs)
 * Timed: from the start barrier until every consumer has freed its producer's last object and all
 *        threads are joined. Prints one result line.
 * Invariants: ring r has one producer and one consumer; the producer publishes its tail in
 *             batches and always before it waits or finishes, so the consumer never waits on
 *             objects that are written but unpublished. */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define WORKLOAD "producer_consumer"
#define PAIRS_MAX 128
#define RING_SLOTS 4096u               /* power of two */
#define PUBLISH_EVERY 32u              /* the producer stores its tail this often */

struct ring {
	_Alignas(64) atomic_size_t head;   /* next slot to read; written by the consumer */
	_Alignas(64) atomic_size_t tail;   /* next slot to write; written by the producer */
	_Alignas(64) atomic_bool producer_done;
	_Alignas(64) void *slot[RING_SLOTS];
	unsigned idx;
	unsigned long long objects;        /* this pair's share */
	unsigned long long consumed;       /* written by the consumer */
};

static struct ring rings[PAIRS_MAX];
static pthread_barrier_t start_barrier;

static void *producer_main(void *arg)
{
	struct ring *ring = arg;
	uint64_t rng = bench_seed(1 + ring->idx);
	size_t tail = 0, head_seen = 0;
	pthread_barrier_wait(&start_barrier);
	for (unsigned long long i = 0; i < ring->objects; i++) {
		uint32_t size_bytes = bench_size_draw(&rng);
		unsigned char *p = malloc(size_bytes);
		if (p == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL", NULL);
		bench_stamp(p, size_bytes);
		while (tail - head_seen >= RING_SLOTS) {
			atomic_store_explicit(&ring->tail, tail, memory_order_release);
			head_seen = atomic_load_explicit(&ring->head, memory_order_acquire);
			if (tail - head_seen >= RING_SLOTS)
				sched_yield();
		}
		ring->slot[tail % RING_SLOTS] = p;
		tail++;
		if (tail % PUBLISH_EVERY == 0)
			atomic_store_explicit(&ring->tail, tail, memory_order_release);
	}
	atomic_store_explicit(&ring->tail, tail, memory_order_release);
	atomic_store_explicit(&ring->producer_done, 1, memory_order_release);
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct ring *ring = arg;
	size_t head = 0;
	pthread_barrier_wait(&start_barrier);
	for (;;) {
		/* Done is read before the tail: once done and the ring is then empty, nothing more
		 * can arrive. */
		int done = atomic_load_explicit(&ring->producer_done, memory_order_acquire);
		size_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
		if (head == tail) {
			if (done)
				break;
			sched_yield();
			continue;
		}
		for (; head != tail; head++) {
			unsigned char *p = ring->slot[head % RING_SLOTS];
			if (bench_stamp_check(p) == 0)
				bench_fail(WORKLOAD, "passed object overwritten", p);
			free(p);
			ring->consumed++;
		}
		atomic_store_explicit(&ring->head, head, memory_order_release);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long objects = argc > 1 ? bench_arg_count(argv[1]) : 40000000ull;
	unsigned long long pairs = argc > 2 ? bench_arg_count(argv[2]) : 2;
	if (objects == 0 || pairs == 0 || pairs > PAIRS_MAX || argc > 3) {
		fprintf(stderr, "usage: %s [objects] [pairs 1..%d]\n", argv[0], PAIRS_MAX);
		return 2;
	}
	unsigned pair_count = (unsigned)pairs;
	if (pthread_barrier_init(&start_barrier, NULL, 2 * pair_count + 1) != 0)
		bench_fail(WORKLOAD, "pthread_barrier_init failed", NULL);

	pthread_t producer[PAIRS_MAX], consumer[PAIRS_MAX];
	for (unsigned i = 0; i < pair_count; i++) {
		rings[i].idx = i;
		rings[i].objects = objects / pair_count + (i < objects % pair_count ? 1 : 0);
		if (pthread_create(&producer[i], NULL, producer_main, &rings[i]) != 0 ||
		    pthread_create(&consumer[i], NULL, consumer_main, &rings[i]) != 0)
			bench_fail(WORKLOAD, "pthread_create failed", NULL);
	}

	pthread_barrier_wait(&start_barrier);
	double t0 = bench_now_s();
	unsigned long long consumed = 0;
	for (unsigned i = 0; i < pair_count; i++) {
		pthread_join(producer[i], NULL);
		pthread_join(consumer[i], NULL);
		consumed += rings[i].consumed;
	}
	double t1 = bench_now_s();
	if (consumed != objects)
		bench_fail(WORKLOAD, "consumed and produced counts differ", NULL);

	char extra[64];
	snprintf(extra, sizeof extra, "pairs=%u ring_slots=%u", pair_count, RING_SLOTS);
	bench_result(WORKLOAD, t1 - t0, objects, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
