/* bench/bench.h - helpers shared by the bench workloads: fixed-seed xorshift, the size mix,
 * object stamps checked before every free, a monotonic clock, and the one result line that
 * bench/run parses.
 * Invariants: a stamped object holds its size (uint32, first 4 bytes) and a check byte (last
 *             byte); every workload checks the stamp before it frees, so an allocator that hands
 *             out overlapping or recycled-while-live memory fails the run instead of timing it.
 * Never: nothing here allocates except bench_new_stamped() (the workload's own malloc) and
 *        bench_result() (stdio), which runs after the clock stops.
 * Each workload defines _GNU_SOURCE before including this (dladdr, RTLD_DEFAULT). */
#ifndef TCM_BENCH_H
#define TCM_BENCH_H

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_SIZE_MIN_BYTES   16u
#define BENCH_SIZE_SMALL_BYTES 512u   /* 15 of 16 draws are uniform in [16, 512] */
#define BENCH_SIZE_MAX_BYTES   4096u  /* 1 of 16 draws is uniform in (512, 4096] */

/* xorshift64* (Vigna): fast, fixed seed, same sequence under every allocator. */
static inline uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t bench_seed(unsigned stream)
{
	return 0x9E3779B97F4A7C15ull ^ ((uint64_t)stream * 0xBF58476D1CE4E5B9ull + 1);
}

/* The size mix: mostly small objects, a tail to 4 KiB. Uses the high bits of one draw. */
static inline uint32_t bench_size_draw(uint64_t *state)
{
	uint64_t r = bench_rand(state);
	uint32_t pick = (uint32_t)(r >> 60);              /* 0..15 */
	uint32_t span = (uint32_t)(r >> 20);
	if (pick == 0)
		return BENCH_SIZE_SMALL_BYTES + 1 + span % (BENCH_SIZE_MAX_BYTES - BENCH_SIZE_SMALL_BYTES);
	return BENCH_SIZE_MIN_BYTES + span % (BENCH_SIZE_SMALL_BYTES - BENCH_SIZE_MIN_BYTES + 1);
}

static inline void bench_fail(const char *workload, const char *what, const void *ptr)
{
	fprintf(stderr, "FAIL workload=%s %s ptr=%p\n", workload, what, ptr);
	fflush(stderr);
	abort();
}

/* Writes the first 4 and the last byte: the object's pages are touched at both ends. */
static inline void bench_stamp(unsigned char *p, uint32_t size_bytes)
{
	memcpy(p, &size_bytes, sizeof size_bytes);
	p[size_bytes - 1] = (unsigned char)(0x5A ^ size_bytes);
}

/* Returns the stamped size, or 0 if the object was overwritten while live (a size outside
 * [BENCH_SIZE_MIN_BYTES, max_bytes] or a wrong check byte). */
static inline uint32_t bench_stamp_check_upto(const unsigned char *p, uint32_t max_bytes)
{
	uint32_t size_bytes;
	memcpy(&size_bytes, p, sizeof size_bytes);
	if (size_bytes < BENCH_SIZE_MIN_BYTES || size_bytes > max_bytes)
		return 0;
	if (p[size_bytes - 1] != (unsigned char)(0x5A ^ size_bytes))
		return 0;
	return size_bytes;
}

/* bench_stamp_check_upto for the churn size mix. */
static inline uint32_t bench_stamp_check(const unsigned char *p)
{
	return bench_stamp_check_upto(p, BENCH_SIZE_MAX_BYTES);
}

/* Writes one byte in every 4 KiB page past the first, so a large object is resident as a
 * service's heap would be. Call it before bench_stamp, whose check byte it may overwrite. */
static inline void bench_touch_pages(unsigned char *p, uint32_t size_bytes)
{
	for (uint32_t offset = 4096; offset < size_bytes; offset += 4096)
		p[offset] = 1;
}

/* A stamped object of size_bytes from malloc, made resident first when is_resident; a failed
 * malloc ends the run. */
static inline unsigned char *bench_new_stamped(const char *workload, uint32_t size_bytes, bool is_resident)
{
	unsigned char *p = malloc(size_bytes);
	if (p == NULL)
		bench_fail(workload, "malloc returned NULL", NULL);
	if (is_resident)
		bench_touch_pages(p, size_bytes);
	bench_stamp(p, size_bytes);   /* after: the last page's touch may be the check byte */
	return p;
}

static inline double bench_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A setup step failed (not the allocator under test): one FAIL line with errno, exit 1. */
static inline void bench_die(const char *workload, const char *what)
{
	fprintf(stderr, "FAIL workload=%s %s: %s\n", workload, what, strerror(errno));
	exit(1);
}

static inline long bench_maxrss_kib(int who)
{
	struct rusage ru;
	if (getrusage(who, &ru) != 0)
		return -1;
	return ru.ru_maxrss;   /* Linux: KiB */
}

/* The file that defines the symbol the dynamic linker resolves for name: proof of which
 * allocator served the run (glibc: libc.so.6; a preloaded one: its path as preloaded). */
static inline const char *bench_symbol_from(const char *name)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, name);
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return "unknown";
	return info.dli_fname;
}

/* One line, key=value, parsed by bench/run; extra is appended as is (may be ""). */
static inline void bench_result(const char *workload, double seconds, unsigned long long ops,
				long maxrss_kib, const char *extra)
{
	printf("result workload=%s seconds=%.6f ops=%llu maxrss_kib=%ld malloc_from=%s free_from=%s%s%s\n",
	       workload, seconds, ops, maxrss_kib, bench_symbol_from("malloc"),
	       bench_symbol_from("free"), extra[0] ? " " : "", extra);
	fflush(stdout);
}

/* Parses a positive count argument; 0 on garbage so the caller can print usage. */
static inline unsigned long long bench_arg_count(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	return (*s != '\0' && *end == '\0') ? v : 0;
}

#endif
