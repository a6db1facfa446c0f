/* bench/exit_storm.c - the incident's workload: T threads each hold a live heap of mixed sizes
 * (255 in 256 objects uniform in 16-1024 B, 1 in 256 uniform in 4-256 KiB, about half the bytes
 * each) totalling size_mib per thread; after a short churn phase one object in four of each thread
 * is owned by the next thread (ring order), so a quarter of all frees are remote. On SIGTERM every
 * thread frees all it owns and exits; main joins them, prints one result line and returns 0.
 * Usage: exit_storm --sigwait|--handler|--signalfd threads size_mib_per_thread
 *   --sigwait   SIGTERM is blocked in every thread and main takes it with sigwait() (tcm sees
 *               that through its interposed sigwait; a hook on the handler alone does not).
 *   --handler   a SIGTERM handler writes to a self-pipe; main waits on the pipe.
 *   --signalfd  as --sigwait, but main reads SIGTERM from a signalfd: no allocator can see it,
 *               only thread exit and atexit matter (the storm with no notice).
 * Protocol: prints "ready" (flushed) once every heap is built; after SIGTERM prints
 *   result workload=exit_storm mode=.. threads=.. size_mib=.. storm_s=.. free_max_us=..
 *          frees_over_1ms=.. frees_over_100us=.. frees=.. cpu_s=.. nvcsw=.. nivcsw=..
 *          malloc_from=.. free_from=..
 * storm_s: from main's release of the threads to the last join. free_max_us: the longest single
 * free() in any thread (CLOCK_MONOTONIC around each free). cpu_s, nvcsw, nivcsw: RUSAGE_SELF deltas
 * across the storm. Objects are stamped at both ends and checked before each free.
 * Never: allocates between the storm start and the last join except inside the frees it times. */
#define _GNU_SOURCE
#include "bench.h"
#include "service_heap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define WORKLOAD         "exit_storm"
#define THREADS_MAX      1024u
#define STACK_BYTES      (256u << 10)
#define CHURN_PER_OBJECT 8u          /* the churn phase replaces one object in eight */
#define HANDOFF_EVERY    4u          /* object i with i % 4 == 3 is freed by the next thread */

struct worker {
	pthread_t thread;
	unsigned idx;
	unsigned char **obj;          /* this thread's objects; mmap'd, not from the allocator */
	size_t nobj;                  /* entries used in obj */
	size_t cap;                   /* entries mapped */
	/* results, written by the owner thread before it exits */
	uint64_t free_max_ns;
	uint64_t frees_over_1ms;
	uint64_t frees_over_100us;
	uint64_t frees;
};

static struct worker workers[THREADS_MAX];
static unsigned thread_count;
static size_t bytes_per_thread;
static pthread_barrier_t built_barrier;   /* every heap built (T workers + main) */
static pthread_barrier_t storm_barrier;   /* main says: free everything (T workers + main) */
static int sig_pipe[2] = { -1, -1 };

static uint64_t now_ns(void)
{
	return bench_now_ns();
}

static void die(const char *what)
{
	bench_die(WORKLOAD, what);
}

/* The object holds its size in its first 4 bytes and a check byte at the end; large objects get
 * one write per 4 KiB page so the whole heap is resident, as a real service's would be. */
static unsigned char *obj_new(uint64_t *rng, size_t *bytes)
{
	uint32_t size = service_heap_size_draw(rng);
	*bytes += size;
	return bench_new_stamped(WORKLOAD, size, true);
}

static void obj_check(const unsigned char *p)
{
	service_heap_check(WORKLOAD, p);
}

static void timed_free(struct worker *self, unsigned char *p)
{
	obj_check(p);
	uint64_t t0 = now_ns();
	free(p);
	uint64_t dt = now_ns() - t0;
	if (dt > self->free_max_ns)
		self->free_max_ns = dt;
	self->frees_over_1ms += dt > 1000000u;
	self->frees_over_100us += dt > 100000u;
	self->frees++;
}

static void *worker_main(void *arg)
{
	struct worker *self = arg;
	uint64_t rng = bench_seed(self->idx);
	size_t bytes = 0;

	/* Build: objects until the thread holds bytes_per_thread (plus one object at most). */
	while (bytes < bytes_per_thread) {
		if (self->nobj == self->cap)
			die("object table full");
		self->obj[self->nobj++] = obj_new(&rng, &bytes);
	}
	/* Churn: replace one object in eight by a fresh one of another size, leaving holes. */
	for (size_t i = 0; i < self->nobj; i += CHURN_PER_OBJECT) {
		size_t j = bench_rand(&rng) % self->nobj;
		obj_check(self->obj[j]);
		free(self->obj[j]);
		self->obj[j] = obj_new(&rng, &bytes);
	}
	pthread_barrier_wait(&built_barrier);
	/* Wait for SIGTERM (main releases every thread at once: the storm). */
	pthread_barrier_wait(&storm_barrier);

	/* Free what this thread owns: its own objects but every fourth, which the previous thread
	 * handed over at setup (its table, read-only since the barrier, is the mailbox). */
	struct worker *prev = &workers[(self->idx + thread_count - 1) % thread_count];
	for (size_t i = 0; i < self->nobj; i++)
		if (i % HANDOFF_EVERY != HANDOFF_EVERY - 1)
			timed_free(self, self->obj[i]);
	for (size_t i = HANDOFF_EVERY - 1; i < prev->nobj; i += HANDOFF_EVERY)
		timed_free(self, prev->obj[i]);
	return NULL;
}

static void on_sigterm(int sig)
{
	(void)sig;
	int saved = errno;
	char c = 1;
	(void)!write(sig_pipe[1], &c, 1);
	errno = saved;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[1], "--sigwait") != 0 && strcmp(argv[1], "--handler") != 0 &&
			  strcmp(argv[1], "--signalfd") != 0)) {
		fprintf(stderr, "usage: %s --sigwait|--handler|--signalfd threads size_mib_per_thread\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1] + 2;
	int handler_mode = strcmp(mode, "handler") == 0;
	thread_count = (unsigned)bench_arg_count(argv[2]);
	unsigned long long size_mib = bench_arg_count(argv[3]);
	if (thread_count < 2 || thread_count > THREADS_MAX || size_mib == 0) {
		fprintf(stderr, "%s: threads must be 2..%u and size_mib > 0\n", argv[0], THREADS_MAX);
		return 2;
	}
	bytes_per_thread = (size_t)size_mib << 20;

	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (handler_mode) {
		if (pipe(sig_pipe) != 0)
			die("pipe");
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sigterm;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGTERM, &sa, NULL) != 0)
			die("sigaction");
	}
	/* Workers inherit a mask blocking SIGTERM, so main is the one thread that takes it (in
	 * handler mode too: the handler then always runs on main). */
	if (pthread_sigmask(SIG_BLOCK, &term, NULL) != 0)
		die("pthread_sigmask");

	/* Object tables: mean object ~1 KiB, so size/256 entries is ample; mmap keeps them off
	 * the heap being measured. */
	size_t cap = bytes_per_thread / 256 + 1024;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK_BYTES);
	pthread_barrier_init(&built_barrier, NULL, thread_count + 1);
	pthread_barrier_init(&storm_barrier, NULL, thread_count + 1);
	for (unsigned i = 0; i < thread_count; i++) {
		workers[i].idx = i;
		workers[i].cap = cap;
		workers[i].obj = mmap(NULL, cap * sizeof(void *), PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (workers[i].obj == MAP_FAILED)
			die("mmap object table");
		int err = pthread_create(&workers[i].thread, &attr, worker_main, &workers[i]);
		if (err != 0) {
			errno = err;
			die("pthread_create");
		}
	}
	pthread_barrier_wait(&built_barrier);
	printf("ready\n");
	fflush(stdout);

	if (handler_mode) {
		if (pthread_sigmask(SIG_UNBLOCK, &term, NULL) != 0)
			die("pthread_sigmask");
		char c;
		while (read(sig_pipe[0], &c, 1) != 1)
			if (errno != EINTR)
				die("read signal pipe");
	} else if (strcmp(mode, "sigwait") == 0) {
		int sig;
		if (sigwait(&term, &sig) != 0)
			die("sigwait");
	} else {
		int fd = signalfd(-1, &term, SFD_CLOEXEC);
		if (fd < 0)
			die("signalfd");
		struct signalfd_siginfo info;
		while (read(fd, &info, sizeof info) != (ssize_t)sizeof info)
			if (errno != EINTR)
				die("read signalfd");
		close(fd);
	}

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	double t0 = bench_now_s();
	pthread_barrier_wait(&storm_barrier);
	for (unsigned i = 0; i < thread_count; i++)
		pthread_join(workers[i].thread, NULL);
	double t1 = bench_now_s();
	getrusage(RUSAGE_SELF, &ru1);

	uint64_t max_ns = 0, over_1ms = 0, over_100us = 0, frees = 0;
	for (unsigned i = 0; i < thread_count; i++) {
		if (workers[i].free_max_ns > max_ns)
			max_ns = workers[i].free_max_ns;
		over_1ms += workers[i].frees_over_1ms;
		over_100us += workers[i].frees_over_100us;
		frees += workers[i].frees;
	}
	double cpu = tv_s(ru1.ru_utime) + tv_s(ru1.ru_stime) - tv_s(ru0.ru_utime) - tv_s(ru0.ru_stime);
	printf("result workload=%s mode=%s threads=%u size_mib=%llu storm_s=%.6f free_max_us=%.1f "
	       "frees_over_1ms=%llu frees_over_100us=%llu frees=%llu cpu_s=%.6f nvcsw=%ld nivcsw=%ld "
	       "malloc_from=%s free_from=%s\n",
	       WORKLOAD, mode, thread_count, size_mib, t1 - t0,
	       (double)max_ns / 1000.0, (unsigned long long)over_1ms, (unsigned long long)over_100us,
	       (unsigned long long)frees, cpu, ru1.ru_nvcsw - ru0.ru_nvcsw,
	       ru1.ru_nivcsw - ru0.ru_nivcsw, bench_symbol_from("malloc"), bench_symbol_from("free"));
	fflush(stdout);
	return 0;
}
