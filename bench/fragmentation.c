/* bench/fragmentation.c - fragmentation: (1) malloc N small objects (bench.h size mix, about
 * 390 B on average); (2) free all but a random one in K, leaving survivors scattered over every
 * page the small objects used; (3) malloc larger objects (uniform in 1-16 KiB, pages touched)
 * until they add up to half the bytes freed in (2). An allocator that can neither reuse the
 * holes for the larger sizes nor return the emptied pages to the kernel ends with a resident set
 * far above what is live. Reports RSS as well as time: peak (ru_maxrss, the maxrss field),
 * rss_after_free_kib (VmRSS after phase 2), rss_final_kib (VmRSS after phase 3) and
 * live_final_kib (bytes requested and still live after phase 3).
 * Usage: fragmentation [objects] [keep_one_in]   (defaults 1000000, 8)
 * Timed: all three phases plus the final checks and frees. Prints one result line
 *        (ops = mallocs + frees). */
#define _GNU_SOURCE
#include "bench.h"

#include <fcntl.h>
#include <unistd.h>

#define WORKLOAD "fragmentation"
#define LARGER_MIN_BYTES 1024u
#define LARGER_MAX_BYTES 16384u

/* VmRSS from /proc/self/status, read with plain system calls so nothing is malloc'd. */
static long rss_now_kib(void)
{
	char text[8192];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die(WORKLOAD, "open /proc/self/status");
	ssize_t len = read(fd, text, sizeof text - 1);
	close(fd);
	if (len <= 0)
		bench_die(WORKLOAD, "read /proc/self/status");
	text[len] = '\0';
	const char *field = strstr(text, "\nVmRSS:");
	if (field == NULL)
		bench_die(WORKLOAD, "no VmRSS in /proc/self/status");
	return strtol(field + strlen("\nVmRSS:"), NULL, 10);
}

static void check_and_free(unsigned char *p, uint32_t max_bytes)
{
	if (bench_stamp_check_upto(p, max_bytes) == 0)
		bench_fail(WORKLOAD, "live object overwritten", p);
	free(p);
}

int main(int argc, char **argv)
{
	unsigned long long objects = argc > 1 ? bench_arg_count(argv[1]) : 1000000ull;
	unsigned long long keep_one_in = argc > 2 ? bench_arg_count(argv[2]) : 8;
	if (objects == 0 || keep_one_in == 0 || argc > 3) {
		fprintf(stderr, "usage: %s [objects] [keep_one_in]\n", argv[0]);
		return 2;
	}
	uint64_t rng = bench_seed(0);
	unsigned char **small = calloc(objects, sizeof *small);
	if (small == NULL)
		bench_die(WORKLOAD, "calloc of the small-object table");

	double t0 = bench_now_s();
	for (unsigned long long i = 0; i < objects; i++) {
		uint32_t size_bytes = bench_size_draw(&rng);
		small[i] = malloc(size_bytes);
		if (small[i] == NULL)
			bench_fail(WORKLOAD, "malloc returned NULL while filling", NULL);
		bench_stamp(small[i], size_bytes);
	}

	unsigned long long kept = 0, freed_bytes = 0, kept_bytes = 0;
	for (unsigned long long i = 0; i < objects; i++) {
		uint32_t size_bytes = bench_stamp_check(small[i]);
		if (size_bytes == 0)
			bench_fail(WORKLOAD, "live object overwritten", small[i]);
		if (bench_rand(&rng) % keep_one_in == 0) {
			small[kept++] = small[i];
			kept_bytes += size_bytes;
		} else {
			free(small[i]);
			freed_bytes += size_bytes;
		}
	}
	long rss_after_free_kib = rss_now_kib();

	unsigned long long larger_target = freed_bytes / 2, larger_bytes = 0, larger_count = 0;
	unsigned char **larger = calloc(larger_target / LARGER_MIN_BYTES + 1, sizeof *larger);
	if (larger == NULL)
		bench_die(WORKLOAD, "calloc of the larger-object table");
	while (larger_bytes < larger_target) {
		uint32_t size_bytes = LARGER_MIN_BYTES +
				      (uint32_t)(bench_rand(&rng) >> 32) % (LARGER_MAX_BYTES - LARGER_MIN_BYTES + 1);
		unsigned char *p = malloc(size_bytes);
		if (p == NULL)
			bench_fail(WORKLOAD, "malloc of a larger object returned NULL", NULL);
		bench_touch_pages(p, size_bytes);
		bench_stamp(p, size_bytes);
		larger[larger_count++] = p;
		larger_bytes += size_bytes;
	}
	long rss_final_kib = rss_now_kib();

	for (unsigned long long i = 0; i < kept; i++)
		check_and_free(small[i], BENCH_SIZE_MAX_BYTES);
	for (unsigned long long i = 0; i < larger_count; i++)
		check_and_free(larger[i], LARGER_MAX_BYTES);
	double t1 = bench_now_s();
	free(larger);
	free(small);

	char extra[192];
	snprintf(extra, sizeof extra,
		 "keep_one_in=%llu rss_after_free_kib=%ld rss_final_kib=%ld live_final_kib=%llu",
		 keep_one_in, rss_after_free_kib, rss_final_kib, (kept_bytes + larger_bytes) / 1024);
	bench_result(WORKLOAD, t1 - t0, 2 * (objects + larger_count), bench_maxrss_kib(RUSAGE_SELF),
		     extra);
	return 0;
}
