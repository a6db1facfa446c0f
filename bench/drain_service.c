/* bench/drain_service.c - a service that drains: T threads hold a heap (exit_storm's size mix:
 * 255 in 256 objects in 16-1024 B, 1 in 256 in 4-256 KiB) of total_mib together and serve
 * (malloc/free of small objects in a window of live slots, in paced batches). On SIGTERM each
 * thread frees nine objects in ten of its heap and keeps serving for drain_ms (from the signal),
 * timing every malloc and free of the service loop; then the threads exit, main reads its own VmRSS and
 * prints one result line and returns 0. bench/drain.sh samples VmRSS from outside meanwhile.
 * Usage: drain_service threads total_mib drain_ms
 * Protocol: prints "ready" (flushed) once the heap is built; after the drain prints
 *   result workload=drain threads=.. total_mib=.. drain_ms=.. heap_freed_s=.. exit_after_sig_s=..
 *          live_kib=.. live_pages_kib=.. rss_exit_kib=.. hwm_kib=.. mallocs=.. lat_p50_us=.. lat_p99_us=..
 *          lat_p999_us=.. lat_max_us=.. mallocs_over_100us=.. free_p999_us=.. free_max_us=..
 *          frees_over_100us=.. malloc_from=.. free_from=..
 * lat_*: the service loop's mallocs; free_*: its frees (an allocator may do work in free).
 * heap_freed_s: SIGTERM to the last thread done freeing its heap. rss_exit_kib: VmRSS read just
 * before main returns (after the last join). live_kib: bytes the program still holds then;
 * live_pages_kib: the kernel pages those bytes touch (what no allocator can give back). */
#define _GNU_SOURCE
#include "bench.h"
#include "service_heap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#define WORKLOAD        "drain"
#define THREADS_MAX     64u
#define KEEP_EVERY      10u            /* at SIGTERM keep one heap object in ten */
#define WINDOW_SLOTS    4096u          /* the service's working set per thread */
#define BATCH_OPS       64u            /* ops between two 1 ms sleeps: a paced, not spinning, service */
#define LAT_CAP         (1u << 21)     /* latency samples per thread (mmap'd) */

struct worker {
	pthread_t thread;
	unsigned idx;
	unsigned char **obj;           /* heap objects; mmap'd table */
	unsigned char **window;        /* the serving window's WINDOW_SLOTS objects; mmap'd table */
	size_t nobj, cap;
	size_t live_bytes;             /* bytes held after the drain's frees (owner thread) */
	uint32_t *lat_ns;              /* one sample per timed malloc (owner thread); mmap'd */
	size_t nlat;
	uint32_t *free_lat_ns;         /* one sample per timed free (owner thread); mmap'd */
	size_t nfree_lat;
	uint64_t freed_ns;             /* monotonic time this thread finished freeing its heap */
};

static struct worker workers[THREADS_MAX];
static unsigned thread_count;
static size_t bytes_per_thread;
static uint64_t drain_ns;
static pthread_barrier_t built_barrier;
static atomic_int draining;           /* 0 until main saw SIGTERM */
static volatile uint64_t sig_ns;      /* written by the handler before the pipe write */
static int sig_pipe[2] = { -1, -1 };

static uint64_t now_ns(void)
{
	return bench_now_ns();
}

static void die(const char *what)
{
	bench_die(WORKLOAD, what);
}

static void *map_or_die(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	return p;
}

static unsigned char *obj_new(uint32_t size)
{
	return bench_new_stamped(WORKLOAD, size, true);
}

static uint32_t obj_check(const unsigned char *p)
{
	return service_heap_check(WORKLOAD, p);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void *worker_main(void *arg)
{
	struct worker *self = arg;
	uint64_t rng = bench_seed(self->idx + 1000);
	size_t bytes = 0;
	unsigned char **window = self->window;

	while (bytes < bytes_per_thread) {
		if (self->nobj == self->cap)
			die("object table full");
		uint32_t size = service_heap_size_draw(&rng);
		self->obj[self->nobj++] = obj_new(size);
		bytes += size;
	}
	size_t window_bytes = 0;
	for (unsigned i = 0; i < WINDOW_SLOTS; i++) {
		uint32_t size = SMALL_MIN_BYTES + (uint32_t)(bench_rand(&rng) >> 40) % (SMALL_MAX_BYTES - SMALL_MIN_BYTES + 1);
		window[i] = obj_new(size);
		window_bytes += size;
	}
	pthread_barrier_wait(&built_barrier);

	int timed = 0;
	for (;;) {
		if (!timed && atomic_load_explicit(&draining, memory_order_acquire)) {
			/* Shutdown: drop nine objects in ten of the heap, then serve on, timed. */
			size_t kept = 0;
			for (size_t i = 0; i < self->nobj; i++) {
				uint32_t size = obj_check(self->obj[i]);
				if (i % KEEP_EVERY == 0)
					kept += size;
				else
					free(self->obj[i]);
			}
			self->live_bytes = kept;
			self->freed_ns = now_ns();
			timed = 1;
		}
		if (timed && now_ns() - sig_ns >= drain_ns)
			break;
		for (unsigned op = 0; op < BATCH_OPS; op++) {
			unsigned slot = (unsigned)(bench_rand(&rng) >> 52) % WINDOW_SLOTS;
			window_bytes -= obj_check(window[slot]);
			uint64_t free_t0 = now_ns();
			free(window[slot]);
			uint64_t free_dt = now_ns() - free_t0;
			if (timed && self->nfree_lat < LAT_CAP)
				self->free_lat_ns[self->nfree_lat++] =
					free_dt > UINT32_MAX ? UINT32_MAX : (uint32_t)free_dt;
			uint32_t size = SMALL_MIN_BYTES + (uint32_t)(bench_rand(&rng) >> 40) % (SMALL_MAX_BYTES - SMALL_MIN_BYTES + 1);
			uint64_t t0 = now_ns();
			unsigned char *p = malloc(size);
			uint64_t dt = now_ns() - t0;
			if (p == NULL)
				die("malloc");
			memcpy(p, &size, sizeof size);
			p[size - 1] = (unsigned char)(0x5A ^ size);
			window[slot] = p;
			window_bytes += size;
			if (timed && self->nlat < LAT_CAP)
				self->lat_ns[self->nlat++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		}
		sleep_ms(1);
	}
	self->live_bytes += window_bytes;
	return NULL;   /* the kept objects and the window stay allocated: they are the live set */
}

static void on_sigterm(int sig)
{
	(void)sig;
	int saved = errno;
	sig_ns = now_ns();
	char c = 1;
	(void)!write(sig_pipe[1], &c, 1);
	errno = saved;
}

/* VmRSS or VmHWM of this process in KiB, read with no allocation; -1 on error. */
static long self_status_kib(const char *key)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *line = strstr(buf, key);
	return line ? strtol(line + strlen(key), NULL, 10) : -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Appends the numbers of the kernel pages object p touches. */
static size_t add_pages(uint64_t *pages, size_t count, const unsigned char *p, size_t page_bytes)
{
	uint32_t size = obj_check(p);
	for (uintptr_t page = (uintptr_t)p / page_bytes; page <= ((uintptr_t)p + size - 1) / page_bytes; page++)
		pages[count++] = page;
	return count;
}

/* KiB of the distinct kernel pages the live objects touch: the least RSS any allocator that does
 * not move objects could keep for them (read after the RSS at exit: this walk touches memory). */
static size_t live_pages_kib(void)
{
	size_t page_bytes = (size_t)sysconf(_SC_PAGESIZE);
	size_t cap = 0;
	for (unsigned i = 0; i < thread_count; i++)
		cap += (workers[i].nobj / KEEP_EVERY + 1 + WINDOW_SLOTS) * (LARGE_MAX_BYTES / page_bytes + 2);
	uint64_t *pages = map_or_die(cap * sizeof(uint64_t));
	size_t count = 0;
	for (unsigned i = 0; i < thread_count; i++) {
		for (size_t j = 0; j < workers[i].nobj; j += KEEP_EVERY)
			count = add_pages(pages, count, workers[i].obj[j], page_bytes);
		for (unsigned j = 0; j < WINDOW_SLOTS; j++)
			count = add_pages(pages, count, workers[i].window[j], page_bytes);
	}
	qsort(pages, count, sizeof *pages, cmp_u64);
	size_t distinct = 0;
	for (size_t i = 0; i < count; i++)
		distinct += i == 0 || pages[i] != pages[i - 1];
	return distinct * page_bytes / 1024;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Every thread's samples of one kind (the service loop's frees, or its mallocs) pooled and
 * sorted; *count gets their number and *over_100us those above 100 us. */
static uint32_t *pooled_sorted(bool frees, size_t *count, size_t *over_100us)
{
	*count = 0;
	*over_100us = 0;
	for (unsigned i = 0; i < thread_count; i++)
		*count += frees ? workers[i].nfree_lat : workers[i].nlat;
	uint32_t *all = map_or_die((*count + 1) * sizeof(uint32_t));
	size_t k = 0;
	for (unsigned i = 0; i < thread_count; i++) {
		const uint32_t *samples = frees ? workers[i].free_lat_ns : workers[i].lat_ns;
		size_t n = frees ? workers[i].nfree_lat : workers[i].nlat;
		for (size_t j = 0; j < n; j++) {
			all[k++] = samples[j];
			*over_100us += samples[j] > 100000u;
		}
	}
	qsort(all, *count, sizeof *all, cmp_u32);
	return all;
}

static double percentile_us(const uint32_t *sorted, size_t count, double quantile)
{
	return count ? (double)sorted[(size_t)((double)(count - 1) * quantile)] / 1000.0 : 0.0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s threads total_mib drain_ms\n", argv[0]);
		return 2;
	}
	thread_count = (unsigned)bench_arg_count(argv[1]);
	unsigned long long total_mib = bench_arg_count(argv[2]);
	unsigned long long drain_ms = bench_arg_count(argv[3]);
	if (thread_count == 0 || thread_count > THREADS_MAX || total_mib == 0 || drain_ms == 0) {
		fprintf(stderr, "%s: threads 1..%u, total_mib > 0, drain_ms > 0\n", argv[0], THREADS_MAX);
		return 2;
	}
	bytes_per_thread = ((size_t)total_mib << 20) / thread_count;
	drain_ns = drain_ms * 1000000ull;

	if (pipe(sig_pipe) != 0)
		die("pipe");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigterm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0)
		die("sigaction");
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);   /* workers inherit it: main takes the signal */

	size_t cap = bytes_per_thread / 256 + 1024;
	pthread_barrier_init(&built_barrier, NULL, thread_count + 1);
	for (unsigned i = 0; i < thread_count; i++) {
		workers[i].idx = i;
		workers[i].cap = cap;
		workers[i].obj = map_or_die(cap * sizeof(void *));
		workers[i].window = map_or_die(WINDOW_SLOTS * sizeof(void *));
		workers[i].lat_ns = map_or_die(LAT_CAP * sizeof(uint32_t));
		workers[i].free_lat_ns = map_or_die(LAT_CAP * sizeof(uint32_t));
		int err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (err != 0) {
			errno = err;
			die("pthread_create");
		}
	}
	pthread_barrier_wait(&built_barrier);
	printf("ready\n");
	fflush(stdout);

	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	char c;
	while (read(sig_pipe[0], &c, 1) != 1)
		if (errno != EINTR)
			die("read signal pipe");
	atomic_store_explicit(&draining, 1, memory_order_release);
	for (unsigned i = 0; i < thread_count; i++)
		pthread_join(workers[i].thread, NULL);
	long rss_exit_kib = self_status_kib("VmRSS:");
	long hwm_kib = self_status_kib("VmHWM:");
	uint64_t t_exit = now_ns();
	size_t live_pages = live_pages_kib();

	size_t live = 0;
	uint64_t freed_last = 0;
	for (unsigned i = 0; i < thread_count; i++) {
		live += workers[i].live_bytes;
		if (workers[i].freed_ns > freed_last)
			freed_last = workers[i].freed_ns;
	}
	size_t total, over_100us, frees, frees_over_100us;
	uint32_t *all = pooled_sorted(false, &total, &over_100us);
	uint32_t *free_all = pooled_sorted(true, &frees, &frees_over_100us);
	printf("result workload=%s threads=%u total_mib=%llu drain_ms=%llu heap_freed_s=%.6f "
	       "exit_after_sig_s=%.6f live_kib=%zu live_pages_kib=%zu rss_exit_kib=%ld hwm_kib=%ld mallocs=%zu "
	       "lat_p50_us=%.3f lat_p99_us=%.3f lat_p999_us=%.3f lat_max_us=%.3f mallocs_over_100us=%zu "
	       "free_p999_us=%.3f free_max_us=%.3f frees_over_100us=%zu malloc_from=%s free_from=%s\n",
	       WORKLOAD, thread_count, total_mib, drain_ms, (double)(freed_last - sig_ns) * 1e-9,
	       (double)(t_exit - sig_ns) * 1e-9, live / 1024, live_pages, rss_exit_kib, hwm_kib, total,
	       percentile_us(all, total, 0.5), percentile_us(all, total, 0.99), percentile_us(all, total, 0.999),
	       percentile_us(all, total, 1.0), over_100us, percentile_us(free_all, frees, 0.999),
	       percentile_us(free_all, frees, 1.0), frees_over_100us, bench_symbol_from("malloc"),
	       bench_symbol_from("free"));
	fflush(stdout);
	return 0;
}
