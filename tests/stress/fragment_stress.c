/* tests/stress/fragment_stress.c - threaded fragmentation with content checks (not a
 * benchmark): the shape that makes tcm release the free pages inside partly used spans
 * while other threads use those spans.
 *
 * Usage: fragment_stress [threads [objects [rounds]]]   (defaults 4 16000 3; fixed seeds)
 * Each round, every thread mallocs `objects` objects of 256 B..4 KiB (the classes whose
 * spans can release pages inside), frees seven in eight, mallocs 1..16 KiB objects in
 * their place, then checks and frees everything. After the frees the spans hold far more
 * free bytes than a quarter of the memory in use, so the fresh spans of the larger sizes
 * first release whole free pages inside the old ones (their objects become stranded);
 * meanwhile the other threads fetch from those spans, get stranded objects back (their
 * pages fault in again) and return objects to them. Every object is filled with a
 * pattern derived from its address, size and slot and checked in full before it is freed.
 * A mismatch, an allocation failure or, under tcm, no memory released at all prints one
 * line and exits 1. TCM_TESTING_EXPECT_LIB_NAME works as in stress.c. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcm.h"

#define SMALL_MIN_BYTES 256u
#define SMALL_SPREAD_BYTES 3841u    /* 256 B .. 4 KiB */
#define LARGER_MIN_BYTES 1024u
#define LARGER_SPREAD_BYTES 15361u  /* 1 KiB .. 16 KiB */
#define KEEP_ONE_IN 8

struct worker {
	pthread_t thread;
	uint64_t seed;
	size_t objects;
	unsigned rounds;
};

static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static unsigned char pattern_byte(const unsigned char *object, size_t size_bytes, size_t slot, size_t offset)
{
	return (unsigned char)(((uintptr_t)object >> 4) + size_bytes * 31 + slot * 7 + offset);
}

static void fill(unsigned char *object, size_t size_bytes, size_t slot)
{
	for (size_t offset = 0; offset < size_bytes; offset++)
		object[offset] = pattern_byte(object, size_bytes, slot, offset);
}

static void fail(const char *what)
{
	fprintf(stderr, "fragment_stress: %s\n", what);
	exit(1);
}

static void check_and_free(unsigned char *object, size_t size_bytes, size_t slot)
{
	for (size_t offset = 0; offset < size_bytes; offset++)
		if (object[offset] != pattern_byte(object, size_bytes, slot, offset))
			fail("an object's content changed while it was live");
	free(object);
}

static unsigned char *new_object(size_t size_bytes, size_t slot)
{
	unsigned char *object = malloc(size_bytes);
	if (object == NULL)
		fail("malloc returned NULL");
	fill(object, size_bytes, slot);
	return object;
}

static void *worker_main(void *arg)
{
	struct worker *self = arg;
	unsigned char **objects = calloc(self->objects, sizeof *objects);
	size_t *sizes = calloc(self->objects, sizeof *sizes);
	if (objects == NULL || sizes == NULL)
		fail("calloc of the slot tables failed");
	for (unsigned round = 0; round < self->rounds; round++) {
		for (size_t slot = 0; slot < self->objects; slot++) {
			sizes[slot] = SMALL_MIN_BYTES + next_random(&self->seed) % SMALL_SPREAD_BYTES;
			objects[slot] = new_object(sizes[slot], slot);
		}
		for (size_t slot = 0; slot < self->objects; slot++)
			if (slot % KEEP_ONE_IN != 0) {
				check_and_free(objects[slot], sizes[slot], slot);
				objects[slot] = NULL;
			}
		for (size_t slot = 0; slot < self->objects; slot++)
			if (objects[slot] == NULL) {
				sizes[slot] = LARGER_MIN_BYTES + next_random(&self->seed) % LARGER_SPREAD_BYTES;
				objects[slot] = new_object(sizes[slot], slot);
			}
		for (size_t slot = 0; slot < self->objects; slot++)
			check_and_free(objects[slot], sizes[slot], slot);
	}
	free(sizes);
	free(objects);
	return NULL;
}

static void check_library(void)
{
	const char *expected = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	if (expected == NULL)
		return;
	Dl_info info;
	if (dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) == 0 || info.dli_fname == NULL ||
	    strstr(info.dli_fname, expected) == NULL)
		fail("malloc is not the expected library's");
}

/* Under tcm (tcm_stats found with dlsym), the run must have released memory: the
 * frees leave most pages of the small objects' spans free. */
static void check_released(void)
{
	void (*stats)(struct tcm_stats *) = (void (*)(struct tcm_stats *))dlsym(RTLD_DEFAULT, "tcm_stats");
	if (stats == NULL)
		return;
	struct tcm_stats snapshot;
	stats(&snapshot);
	if (snapshot.released_total_bytes == 0)
		fail("tcm released no memory");
	printf("fragment_stress: tcm released %llu MiB in %llu madvise calls\n",
	       (unsigned long long)(snapshot.released_total_bytes >> 20),
	       (unsigned long long)snapshot.release_calls);
}

int main(int argc, char **argv)
{
	unsigned threads = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 4;
	size_t objects = argc > 2 ? strtoul(argv[2], NULL, 10) : 16000;
	unsigned rounds = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 3;
	if (threads == 0 || threads > 64 || objects == 0 || rounds == 0) {
		fprintf(stderr, "usage: %s [threads 1..64 [objects [rounds]]]\n", argv[0]);
		return 2;
	}
	check_library();
	struct worker workers[64];
	for (unsigned t = 0; t < threads; t++) {
		workers[t] = (struct worker){ .seed = 0x9E3779B97F4A7C15ull * (t + 1), .objects = objects,
					      .rounds = rounds };
		if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0)
			fail("pthread_create failed");
	}
	for (unsigned t = 0; t < threads; t++)
		pthread_join(workers[t].thread, NULL);
	check_released();
	printf("fragment_stress: %u threads x %zu objects x %u rounds checked\n", threads, objects, rounds);
	return 0;
}
