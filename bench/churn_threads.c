/* bench/churn_threads.c - multi-thread churn with cross-thread frees: T threads each keep a
 * window of live objects (bench.h size mix); each step replaces a random slot, and one freed
 * object in four is handed to the next thread (ring order) through a bounded SPSC queue, whose
 * receiver checks and frees it. The allocator under test thus sees remote frees on every path.
 * Usage: churn_threads [ops] [threads] [window]   (defaults 48000000 total, 4, 8192 per thread)
 * Timed: from the start barrier until every thread has drained its queue, freed its window and
 *        been joined (so thread-exit cache teardown is counted). Prints one result line.
 * Invariants: queue q[i] has one producer (thread i-1) and one consumer (thread i); a thread
 *             waiting on a full queue drains its own meanwhile, so the ring cannot deadlock. */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define WORKLOAD "churn_threads"
#define THREADS_MAX 64
#define QUEUE_SLOTS 1024u            /* power of two */
#define DRAIN_EVERY_OPS 16u          /* the consumer polls its queue this often */

struct handoff_queue {
	_Alignas(64) atomic_size_t head;   /* next slot to read; written by the consumer */
	_Alignas(64) atomic_size_t tail;   /* next slot to write; written by the producer */
	_Alignas(64) void *slot[QUEUE_SLOTS];
};

struct worker {
	struct handoff_queue inbox;        /* filled by the previous thread */
	_Alignas(64) atomic_bool done;     /* set once this thread stops producing */
	pthread_t thread;
	unsigned idx;
	unsigned long long ops;            /* steps this thread runs */
	unsigned long long handed;         /* objects sent to the next thread (owner thread) */
	unsigned long long received;       /* objects freed for the previous thread (owner thread) */
};

static struct worker workers[THREADS_MAX];
static unsigned thread_count;
static size_t window_slots;
static pthread_barrier_t start_barrier;

static void queue_drain(struct worker *self)
{
	struct handoff_queue *q = &self->inbox;
	size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
	for (; head != tail; head++) {
		unsigned char *p = q->slot[head % QUEUE_SLOTS];
		if (bench_stamp_check(p) == 0)
			bench_fail(WORKLOAD, "handed-off object overwritten", p);
		free(p);
		self->received++;
	}
	atomic_store_explicit(&q->head, head, memory_order_release);
}

static int queue_is_empty(struct worker *self)
{
	struct handoff_queue *q = &self->inbox;
	return atomic_load_explicit(&q->head, memory_order_relaxed) ==
	       atomic_load_explicit(&q->tail, memory_order_acquire);
}

static void queue_push(struct worker *self, struct worker *next, void *p)
{
	struct handoff_queue *q = &next->inbox;
	size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	while (tail - atomic_load_explicit(&q->head, memory_order_acquire) >= QUEUE_SLOTS) {
		queue_drain(self);   /* keeps the ring moving: our producer may be waiting on us */
		sched_yield();
	}
	q->slot[tail % QUEUE_SLOTS] = p;
	atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
	self->handed++;
}

static void *worker_main(void *arg)
{
	struct worker *self = arg;
	struct worker *next = &workers[(self->idx + 1) % thread_count];
	struct worker *prev = &workers[(self->idx + thread_count - 1) % thread_count];
	uint64_t rng = bench_seed(1 + self->idx);

	unsigned char **window = calloc(window_slots, sizeof *window);
	if (window == NULL)
		bench_fail(WORKLOAD, "calloc of the window failed", NULL);
	for (size_t i = 0; i < window_slots; i++) {
		uint32_t size_bytes = bench_size_draw(&rng);
		window[i] = malloc(size_bytes);
		if (window[i] == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL while filling", NULL);
		bench_stamp(window[i], size_bytes);
	}
	pthread_barrier_wait(&start_barrier);

	for (unsigned long long i = 0; i < self->ops; i++) {
		uint64_t r = bench_rand(&rng);
		size_t idx = (size_t)(r % window_slots);
		unsigned char *old = window[idx];
		if ((r >> 62) == 0) {                /* one in four goes to the next thread */
			queue_push(self, next, old);
		} else {
			if (bench_stamp_check(old) == 0)
				bench_fail(WORKLOAD, "live object overwritten", old);
			free(old);
		}
		uint32_t size_bytes = bench_size_draw(&rng);
		unsigned char *p = malloc(size_bytes);
		if (p == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL", NULL);
		bench_stamp(p, size_bytes);
		window[idx] = p;
		if (i % DRAIN_EVERY_OPS == 0)
			queue_drain(self);
	}
	atomic_store_explicit(&self->done, 1, memory_order_release);

	/* Done is read before the drain: once prev is done and the queue is then empty, nothing
	 * more can arrive. */
	for (;;) {
		int prev_done = atomic_load_explicit(&prev->done, memory_order_acquire);
		queue_drain(self);
		if (prev_done && queue_is_empty(self))
			break;
		sched_yield();
	}
	for (size_t i = 0; i < window_slots; i++) {
		if (bench_stamp_check(window[i]) == 0)
			bench_fail(WORKLOAD, "live object overwritten at teardown", window[i]);
		free(window[i]);
	}
	free(window);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long ops = argc > 1 ? bench_arg_count(argv[1]) : 48000000ull;
	unsigned long long threads = argc > 2 ? bench_arg_count(argv[2]) : 4;
	unsigned long long window = argc > 3 ? bench_arg_count(argv[3]) : 8192;
	if (ops == 0 || threads == 0 || threads > THREADS_MAX || window == 0 || argc > 4) {
		fprintf(stderr, "usage: %s [ops] [threads 1..%d] [window]\n", argv[0], THREADS_MAX);
		return 2;
	}
	thread_count = (unsigned)threads;
	window_slots = (size_t)window;

	if (pthread_barrier_init(&start_barrier, NULL, thread_count + 1) != 0)
		bench_fail(WORKLOAD, "pthread_barrier_init failed", NULL);
	for (unsigned t = 0; t < thread_count; t++) {
		workers[t].idx = t;
		workers[t].ops = ops / thread_count + (t < ops % thread_count ? 1 : 0);
	}
	for (unsigned t = 0; t < thread_count; t++)
		if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0)
			bench_fail(WORKLOAD, "pthread_create failed", NULL);

	pthread_barrier_wait(&start_barrier);
	double t0 = bench_now_s();
	unsigned long long handed = 0, received = 0;
	for (unsigned t = 0; t < thread_count; t++) {
		pthread_join(workers[t].thread, NULL);
		handed += workers[t].handed;
		received += workers[t].received;
	}
	double t1 = bench_now_s();
	if (handed != received)
		bench_fail(WORKLOAD, "handed-off and received counts differ", NULL);

	char extra[96];
	snprintf(extra, sizeof extra, "threads=%u window=%zu handed=%llu", thread_count, window_slots,
		 handed);
	bench_result(WORKLOAD, t1 - t0, ops, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
