/* tools/example_service.c - a small threaded "service" for the quick-start demo:
 * worker threads keep a live heap of mixed sizes and churn it, handing some
 * objects to a neighbour to free, until SIGTERM; then every worker frees its
 * heap and exits, main joins them, prints how long that took, and returns 0
 * (tcm's own report comes from stats.on_exit in tools/demo.conf).
 * After the workers are joined, main keeps "finishing in-flight requests" for
 * drain_ms (allocating and freeing small objects) before it returns: the time
 * a real service spends between SIGTERM and exit, in which tcm gives memory back.
 * Usage: example_service [threads] [live_objects_per_thread] [drain_ms] */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct worker {
	pthread_t thread;
	unsigned index;
	size_t live_objects;
	void **slots;
	_Atomic(void *) mailbox;          /* one object handed over by a neighbour */
};

static atomic_bool stopping;
static struct worker *workers;
static unsigned worker_count;

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static size_t random_size(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	uint64_t r = *state;
	if (r % 64 == 0)
		return 4096 + r % (256 * 1024);      /* some large */
	return 16 + r % 1008;                     /* mostly 16-1024 B */
}

static void *work(void *arg)
{
	struct worker *self = arg;
	uint64_t state = 0x9e3779b97f4a7c15ull ^ self->index;
	for (size_t i = 0; i < self->live_objects; i++) {
		size_t size = random_size(&state);
		self->slots[i] = malloc(size);
		memset(self->slots[i], (int)i, size < 64 ? size : 64);
	}
	struct worker *next = &workers[(self->index + 1) % worker_count];
	while (!atomic_load(&stopping)) {
		size_t i = state % self->live_objects;
		void *old = self->slots[i];
		self->slots[i] = malloc(random_size(&state));
		void *previous = atomic_exchange(&next->mailbox, old);
		free(previous);
	}
	for (size_t i = 0; i < self->live_objects; i++)
		free(self->slots[i]);
	free(self->slots);
	return NULL;
}

static void on_sigterm(int signo)
{
	(void)signo;
	atomic_store(&stopping, true);
}

int main(int argc, char **argv)
{
	worker_count = argc > 1 ? (unsigned)atoi(argv[1]) : 8;
	size_t live = argc > 2 ? (size_t)atol(argv[2]) : 100000;
	long drain_ms = argc > 3 ? atol(argv[3]) : 500;
	if (worker_count == 0 || live == 0 || drain_ms < 0) {
		fprintf(stderr, "usage: %s [threads >= 1] [live_objects_per_thread >= 1] [drain_ms >= 0]\n", argv[0]);
		return 2;
	}
	Dl_info info;
	void *malloc_address = dlsym(RTLD_DEFAULT, "malloc");
	printf("example_service: pid %d, %u threads x %zu live objects, malloc from %s\n", getpid(),
	       worker_count, live, dladdr(malloc_address, &info) && info.dli_fname ? info.dli_fname : "?");
	fflush(stdout);
	struct sigaction action = { .sa_handler = on_sigterm };
	sigaction(SIGTERM, &action, NULL);
	workers = calloc(worker_count, sizeof(*workers));
	for (unsigned i = 0; i < worker_count; i++) {
		workers[i].index = i;
		workers[i].live_objects = live;
		workers[i].slots = calloc(live, sizeof(void *));
		pthread_create(&workers[i].thread, NULL, work, &workers[i]);
	}
	while (!atomic_load(&stopping))
		pause();
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < worker_count; i++)
		pthread_join(workers[i].thread, NULL);
	for (unsigned i = 0; i < worker_count; i++)
		free(atomic_load(&workers[i].mailbox));
	free(workers);
	uint64_t t1 = now_ns();
	printf("example_service: SIGTERM -> all workers joined and heaps freed in %.2f ms\n", (double)(t1 - t0) / 1e6);
	uint64_t state = 0x2545f4914f6cdd1dull;
	while (now_ns() - t1 < (uint64_t)drain_ms * 1000000u) {
		void *request = malloc(random_size(&state) % 2048 + 16);
		memset(request, 1, 16);
		free(request);
		struct timespec pause = { 0, 100000 };
		nanosleep(&pause, NULL);
	}
	printf("example_service: finished in-flight work for %ld ms; exiting\n", drain_ms);
	fflush(stdout);
	return 0;
}
