/* bench/realloc_growth.c - realloc growth, as string builders and growing arrays do it: B buffers
 * each start at 16 B and grow by realloc in small steps (uniform in 1 B..max(64 B, size/8)) up to
 * a maximum (default 1 MiB), then are checked (one byte in 61), freed and started again. Each
 * step grows a randomly chosen buffer, so neighbours interleave and in-place growth is not free.
 * Every byte written is a function of the buffer and the offset; after each realloc the first
 * byte, the last old byte and one random old byte are checked, so a realloc that loses or shifts
 * content fails the run.
 * Usage: realloc_growth [reallocs] [buffers] [max_kib]   (defaults 4000000, 64, 1024)
 * Timed: all the reallocs, fills and checks, plus the final checks and frees. Prints one result
 *        line (ops = reallocs; extra: lifetimes = buffers that reached the maximum). */
#define _GNU_SOURCE
#include "bench.h"

#define WORKLOAD "realloc_growth"
#define START_BYTES 16u
#define MIN_STEP_CAP_BYTES 64u
#define CHECK_STRIDE_BYTES 61u         /* coprime to the period: samples see every pattern value */
#define PATTERN_PERIOD 251u
#define FILL_CHUNK_BYTES 4096u

struct buffer {
	unsigned char *data;
	size_t size;
	unsigned seed;                     /* changes at every restart */
};

/* The content at offset of a buffer with seed is (offset + seed) % PATTERN_PERIOD: a prime
 * period, so a copy shifted by any power-of-two amount, or left over from the buffer's previous
 * life, differs. pattern_table[k] = k % PATTERN_PERIOD lets fill() copy it in chunks. */
static unsigned char pattern_table[PATTERN_PERIOD + FILL_CHUNK_BYTES];

static inline unsigned char pattern_byte(unsigned seed, size_t offset)
{
	return (unsigned char)((offset + seed) % PATTERN_PERIOD);
}

static void fill(struct buffer *b, size_t from, size_t to)
{
	while (from < to) {
		size_t len = to - from < FILL_CHUNK_BYTES ? to - from : FILL_CHUNK_BYTES;
		memcpy(b->data + from, pattern_table + (from + b->seed) % PATTERN_PERIOD, len);
		from += len;
	}
}

static void check_byte(const struct buffer *b, size_t offset)
{
	if (b->data[offset] != pattern_byte(b->seed, offset))
		bench_fail(WORKLOAD, "content lost by realloc", b->data + offset);
}

/* One byte in every CHECK_STRIDE_BYTES and the last: a shift or a lost page anywhere shows. */
static void check_spread(const struct buffer *b)
{
	for (size_t i = 0; i < b->size; i += CHECK_STRIDE_BYTES)
		check_byte(b, i);
	check_byte(b, b->size - 1);
}

static void start(struct buffer *b, unsigned seed)
{
	b->data = realloc(NULL, START_BYTES);
	if (b->data == NULL)
		bench_fail(WORKLOAD, "realloc(NULL) returned NULL", NULL);
	b->size = START_BYTES;
	b->seed = seed;
	fill(b, 0, b->size);
}

int main(int argc, char **argv)
{
	unsigned long long reallocs = argc > 1 ? bench_arg_count(argv[1]) : 4000000ull;
	unsigned long long buffers = argc > 2 ? bench_arg_count(argv[2]) : 64;
	unsigned long long max_kib = argc > 3 ? bench_arg_count(argv[3]) : 1024;
	if (reallocs == 0 || buffers == 0 || buffers > 65536 || max_kib == 0 || max_kib > 1048576 ||
	    argc > 4) {
		fprintf(stderr, "usage: %s [reallocs] [buffers 1..65536] [max_kib]\n", argv[0]);
		return 2;
	}
	size_t max_bytes = (size_t)max_kib * 1024;
	uint64_t rng = bench_seed(0);
	struct buffer *buf = calloc(buffers, sizeof *buf);
	if (buf == NULL)
		bench_die(WORKLOAD, "calloc of the buffer table");

	for (size_t i = 0; i < sizeof pattern_table; i++)
		pattern_table[i] = (unsigned char)(i % PATTERN_PERIOD);

	double t0 = bench_now_s();
	for (size_t i = 0; i < buffers; i++)
		start(&buf[i], (unsigned)i);
	unsigned long long lifetimes = 0;
	for (unsigned long long n = 0; n < reallocs; n++) {
		uint64_t r = bench_rand(&rng);
		struct buffer *b = &buf[r % buffers];
		size_t step_cap = b->size / 8 > MIN_STEP_CAP_BYTES ? b->size / 8 : MIN_STEP_CAP_BYTES;
		size_t old_size = b->size;
		size_t new_size = old_size + 1 + (size_t)(r >> 32) % step_cap;
		if (new_size > max_bytes)
			new_size = max_bytes;
		unsigned char *p = realloc(b->data, new_size);
		if (p == NULL)
			bench_fail(WORKLOAD, "realloc returned NULL", b->data);
		b->data = p;
		b->size = new_size;
		check_byte(b, 0);
		check_byte(b, old_size - 1);
		check_byte(b, (size_t)(bench_rand(&rng) % old_size));
		fill(b, old_size, new_size);
		if (new_size == max_bytes) {
			check_spread(b);
			free(b->data);
			start(b, b->seed + 1);
			lifetimes++;
		}
	}
	for (size_t i = 0; i < buffers; i++) {
		check_spread(&buf[i]);
		free(buf[i].data);
	}
	double t1 = bench_now_s();
	free(buf);

	char extra[96];
	snprintf(extra, sizeof extra, "buffers=%llu max_kib=%llu lifetimes=%llu", buffers, max_kib,
		 lifetimes);
	bench_result(WORKLOAD, t1 - t0, reallocs, bench_maxrss_kib(RUSAGE_SELF), extra);
	return 0;
}
