/* bench/service_heap.h - the heap shape of the shutdown benchmarks (exit_storm, drain_service):
 * 255 in 256 objects uniform in 16-1024 B, 1 in 256 uniform in 4-256 KiB; every object is made
 * resident (bench_new_stamped) and stamped, and checked before it is freed.
 * Include after bench.h. */
#ifndef TCM_BENCH_SERVICE_HEAP_H
#define TCM_BENCH_SERVICE_HEAP_H

#define SMALL_MIN_BYTES  16u
#define SMALL_MAX_BYTES  1024u
#define LARGE_MIN_BYTES  (4u << 10)
#define LARGE_MAX_BYTES  (256u << 10)

static inline uint32_t service_heap_size_draw(uint64_t *rng)
{
	uint64_t r = bench_rand(rng);
	uint32_t span = (uint32_t)(r >> 16);
	if ((r >> 56) == 0)           /* 1 in 256 */
		return LARGE_MIN_BYTES + span % (LARGE_MAX_BYTES - LARGE_MIN_BYTES + 1);
	return SMALL_MIN_BYTES + span % (SMALL_MAX_BYTES - SMALL_MIN_BYTES + 1);
}

/* The object's size; an overwritten object ends the run (bench_fail). */
static inline uint32_t service_heap_check(const char *workload, const unsigned char *p)
{
	uint32_t size = bench_stamp_check_upto(p, LARGE_MAX_BYTES);
	if (size == 0)
		bench_fail(workload, "object overwritten while live", p);
	return size;
}

#endif
