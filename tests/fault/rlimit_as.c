/* tests/fault/rlimit_as.c - a whole process under libtcm.so runs out of address
 * space: RLIMIT_AS is set to what it uses plus 256 MiB, then each phase
 * allocates until the first failure (small malloc, large malloc, calloc, one
 * block grown by realloc, posix_memalign, aligned_alloc), checks that failure,
 * checks and frees everything, and the next phase starts. Three rounds.
 *
 * Checks: every failure is the documented one (NULL and ENOMEM;
 * posix_memalign returns ENOMEM and leaves *memptr and errno alone; a failed
 * realloc keeps the old block, contents intact); calloc memory is zero, even
 * where an earlier phase wrote; blocks keep their contents; each phase gets
 * at least a quarter of the headroom; after each round every byte tcm mapped
 * is accounted for in its stats (address space a failure path kept would
 * not be), every size class and some large (up to 20 MiB) and aligned blocks
 * can be allocated again, and rounds 2 and 3 get as much memory in every
 * phase as round 1 did, less a small tolerance.
 * "rounds": one thread. "threads": four threads run each phase at once,
 * all hitting the limit concurrently (their stacks exist before the limit). */
#include "fault_process.h"

#include <pthread.h>

#define MIB             FAULT_MIB
#define HEADROOM_BYTES  (256 * MIB)
#define CAP_BYTES       (4 * HEADROOM_BYTES)   /* a phase that gets this much never met the limit */
#define ROUNDS          3
#define THREADS         4
/* Later rounds may get this much less than round 1: caches keep some free
 * memory (thread caches, central stacks, partly used spans). */
#define TOLERANCE_BYTES (HEADROOM_BYTES / 8)

enum phase { SMALL, LARGE, CALLOC, REALLOC, POSIX_MEMALIGN, ALIGNED_ALLOC, PHASES };
static const char *const phase_names[PHASES] = { "malloc small", "malloc large", "calloc", "realloc growth",
						 "posix_memalign", "aligned_alloc" };

static _Atomic int failures;

#define CHECK(condition, ...)                                      \
	do {                                                       \
		if (!(condition)) {                                \
			fault_say("FAIL %s:%d: ", __FILE__, __LINE__); \
			fault_say(__VA_ARGS__);                    \
			fault_say("\n");                           \
			failures++;                                \
		}                                                  \
	} while (0)

/* A held block: its first word links to the next, then its size and seed;
 * its last byte and a few after the header carry the pattern. */
struct header {
	struct header *next;
	size_t         size_bytes;
	unsigned       seed;
};

static unsigned char pattern(unsigned seed, size_t offset)
{
	return (unsigned char)(seed * 13u + offset * 7u + 1u);
}

static void push(struct header **list, void *ptr, size_t size_bytes, unsigned seed)
{
	struct header *block = ptr;
	block->next = *list;
	block->size_bytes = size_bytes;
	block->seed = seed;
	unsigned char *bytes = ptr;
	size_t end = size_bytes < 256 ? size_bytes : 256;
	for (size_t i = sizeof(*block); i < end; i++)
		bytes[i] = pattern(seed, i);
	bytes[size_bytes - 1] = pattern(seed, size_bytes - 1);
	*list = block;
}

/* Checks and frees the list; returns the bytes it held. */
static size_t free_list(struct header *list, const char *phase)
{
	size_t total = 0;
	while (list != NULL) {
		struct header *next = list->next;
		unsigned char *bytes = (unsigned char *)list;
		size_t end = list->size_bytes < 256 ? list->size_bytes : 256;
		bool intact = bytes[list->size_bytes - 1] == pattern(list->seed, list->size_bytes - 1);
		for (size_t i = sizeof(*list); i < end; i++)
			intact = intact && bytes[i] == pattern(list->seed, i);
		CHECK(intact, "%s: block %p of %zu bytes was overwritten", phase, (void *)list, list->size_bytes);
		total += list->size_bytes;
		free(list);
		list = next;
	}
	return total;
}

static bool check_null(void *ptr, int err, const char *phase, size_t size_bytes)
{
	if (ptr != NULL)
		return false;
	CHECK(err == ENOMEM, "%s(%zu) returned NULL with errno %d, not ENOMEM", phase, size_bytes, err);
	return true;
}

/* Allocates with phase until the first failure (checked), holding every block;
 * returns the list and the bytes obtained. */
static struct header *fill(enum phase phase, unsigned seed, size_t *obtained)
{
	struct header *list = NULL;
	size_t total = 0;
	for (unsigned i = 0; total < CAP_BYTES; i++) {
		size_t size;
		void *ptr;
		int err;
		switch (phase) {
		case SMALL:
			size = 32 + (i * 37u) % 4000;
			errno = 0;
			ptr = malloc(size);
			if (check_null(ptr, errno, "malloc", size))
				goto full;
			break;
		case LARGE:
			size = 300 * 1024 + (i % 24) * 333 * 1024;
			errno = 0;
			ptr = malloc(size);
			if (check_null(ptr, errno, "malloc", size))
				goto full;
			break;
		case CALLOC: {
			size_t count = i % 4 == 0 ? 1 : 100 + i % 900, each = i % 4 == 0 ? MIB + i : 8 + i % 200;
			size = count * each;
			errno = 0;
			ptr = calloc(count, each);
			if (check_null(ptr, errno, "calloc", size))
				goto full;
			const unsigned char *bytes = ptr;
			size_t step = size > 65536 ? 61 : 1, nonzero = size;
			for (size_t k = 0; k < size && nonzero == size; k += step)
				if (bytes[k] != 0)
					nonzero = k;
			CHECK(nonzero == size && bytes[size - 1] == 0, "calloc(%zu, %zu): byte %zu is not zero", count,
			      each, nonzero);
			break;
		}
		case POSIX_MEMALIGN: {
			size_t alignment = (size_t)64 << (i % 15);   /* 64 B .. 1 MiB */
			size = 100 + (i * 7919u) % (2 * MIB);
			void *result = (void *)0x5a5a5a50;
			errno = 4242;
			int ret = posix_memalign(&result, alignment, size);
			err = errno;
			if (ret != 0) {
				CHECK(ret == ENOMEM, "posix_memalign(%zu, %zu) returned %d, not ENOMEM", alignment,
				      size, ret);
				CHECK(result == (void *)0x5a5a5a50, "failed posix_memalign wrote *memptr");
				CHECK(err == 4242, "failed posix_memalign changed errno to %d", err);
				goto full;
			}
			CHECK((uintptr_t)result % alignment == 0, "posix_memalign(%zu) = %p", alignment, result);
			ptr = result;
			break;
		}
		case ALIGNED_ALLOC: {
			size_t alignment = (size_t)64 << (i % 15);
			size = alignment * (1 + i % 5);
			errno = 0;
			ptr = aligned_alloc(alignment, size);
			if (check_null(ptr, errno, "aligned_alloc", size))
				goto full;
			CHECK((uintptr_t)ptr % alignment == 0, "aligned_alloc(%zu) = %p", alignment, ptr);
			break;
		}
		default:
			return NULL;
		}
		push(&list, ptr, size, seed + i);
		total += size;
	}
	CHECK(false, "%s: got %zu MiB without failing: the limit did not hold", phase_names[phase], total / MIB);
full:
	*obtained = total;
	return list;
}

/* One block grown by a quarter at a time until realloc fails; returns the
 * largest size it reached. Every byte is written and checked at the end. */
static size_t grow_until_failure(unsigned seed)
{
	size_t size = 64 * 1024;
	unsigned char *block = malloc(size);
	CHECK(block != NULL, "malloc(64 KiB) failed at the start of a phase");
	if (block == NULL)
		return 0;
	for (size_t i = 0; i < size; i++)
		block[i] = pattern(seed, i);
	while (size < CAP_BYTES) {
		size_t bigger = size + size / 4 + 4096;
		errno = 0;
		unsigned char *grown = realloc(block, bigger);
		if (check_null(grown, errno, "realloc", bigger))
			break;
		block = grown;
		for (size_t i = size; i < bigger; i++)
			block[i] = pattern(seed, i);
		size = bigger;
	}
	size_t bad = size;
	for (size_t i = 0; i < size && bad == size; i++)
		if (block[i] != pattern(seed, i))
			bad = i;
	CHECK(bad == size, "the block of %zu bytes realloc failed to grow changed at offset %zu", size, bad);
	free(block);
	return size;
}

static size_t run_phase(enum phase phase, unsigned seed)
{
	if (phase == REALLOC)
		return grow_until_failure(seed);
	size_t obtained = 0;
	struct header *list = fill(phase, seed, &obtained);
	size_t freed = free_list(list, phase_names[phase]);
	CHECK(freed == obtained, "%s: %zu bytes held, %zu freed", phase_names[phase], obtained, freed);
	return obtained;
}

/* Every size class, a few large and aligned blocks: allocated, written in
 * full, checked, freed. */
static void check_usable(const char *when)
{
	enum { MAX = 128 };
	unsigned char *blocks[MAX];
	size_t sizes[MAX], n = 0;
	for (size_t size = 16; size <= 256 * 1024 && n < MAX; size += size / 8 > 16 ? size / 8 : 16)
		sizes[n++] = size;
	static const size_t large[] = { 300 * 1024, 5 * MIB, 20 * MIB };
	for (size_t i = 0; i < 3; i++)
		sizes[n++] = large[i];
	size_t aligned_from = n;
	for (size_t alignment = 64; alignment <= MIB && n < MAX; alignment *= 8)
		sizes[n++] = alignment;
	for (size_t i = 0; i < n; i++) {
		void *ptr = NULL;
		if (i < aligned_from) {
			ptr = malloc(sizes[i]);
		} else {
			int ret = posix_memalign(&ptr, sizes[i], 3 * sizes[i]);
			CHECK(ret == 0 && (uintptr_t)ptr % sizes[i] == 0, "%s: posix_memalign(%zu) = %d", when,
			      sizes[i], ret);
			sizes[i] *= 3;
		}
		CHECK(ptr != NULL, "%s: allocating %zu bytes failed with everything freed", when, sizes[i]);
		if (ptr == NULL)
			sizes[i] = 0;
		blocks[i] = ptr;
		for (size_t k = 0; k < sizes[i]; k++)
			blocks[i][k] = pattern((unsigned)i, k);
	}
	for (size_t i = 0; i < n; i++) {
		size_t bad = sizes[i];
		for (size_t k = 0; k < sizes[i] && bad == sizes[i]; k++)
			if (blocks[i][k] != pattern((unsigned)i, k))
				bad = k;
		CHECK(bad == sizes[i], "%s: block of %zu bytes overwritten at %zu", when, sizes[i], bad);
		free(blocks[i]);
	}
}

/* ---- threads ------------------------------------------------------------------------------------- */

static pthread_barrier_t start_barrier;   /* the threads and main, once the limit is set */
static pthread_barrier_t barrier;         /* the threads */
static size_t thread_obtained[ROUNDS][PHASES][THREADS];

static void *thread_main(void *arg)
{
	size_t me = (size_t)(uintptr_t)arg;
	pthread_barrier_wait(&start_barrier);
	for (int round = 0; round < ROUNDS; round++)
		for (int phase = 0; phase < PHASES; phase++) {
			pthread_barrier_wait(&barrier);   /* start together */
			unsigned seed = (unsigned)(round * 1000 + phase * 100 + (int)me * 10);
			if (phase == REALLOC) {
				thread_obtained[round][phase][me] = grow_until_failure(seed);
				pthread_barrier_wait(&barrier);
				continue;
			}
			size_t obtained = 0;
			struct header *list = fill((enum phase)phase, seed, &obtained);
			thread_obtained[round][phase][me] = obtained;
			pthread_barrier_wait(&barrier);   /* everyone at the limit */
			free_list(list, phase_names[phase]);
		}
	return NULL;
}

/* ---- main ---------------------------------------------------------------------------------------- */

/* Rounds 2 and 3 get what round 1 got, less the tolerance. Not for realloc in
 * threads mode: there four blocks race for the contiguous room, and the sum of
 * their sizes depends on who wins. */
static void compare_rounds(size_t obtained[ROUNDS][PHASES], bool threaded)
{
	for (int phase = 0; phase < PHASES; phase++) {
		fault_say("%-15s", phase_names[phase]);
		for (int round = 0; round < ROUNDS; round++)
			fault_say(" %6zu MiB", obtained[round][phase] / MIB);
		fault_say("\n");
		for (int round = 1; round < ROUNDS && !(threaded && phase == REALLOC); round++)
			CHECK(obtained[round][phase] + TOLERANCE_BYTES >= obtained[0][phase],
			      "%s: round %d got %zu MiB, round 1 %zu MiB: memory freed before is not usable again",
			      phase_names[phase], round + 1, obtained[round][phase] / MIB, obtained[0][phase] / MIB);
		for (int round = 0; round < ROUNDS; round++)
			CHECK(obtained[round][phase] >= HEADROOM_BYTES / 4,
			      "%s: round %d got only %zu MiB of the %zu MiB headroom", phase_names[phase], round + 1,
			      obtained[round][phase] / MIB, HEADROOM_BYTES / MIB);
	}
}

int main(int argc, char **argv)
{
	bool threaded = argc == 2 && strcmp(argv[1], "threads") == 0;
	if (argc != 2 || (!threaded && strcmp(argv[1], "rounds") != 0)) {
		fault_say("usage: %s rounds|threads\n", argv[0]);
		return 2;
	}
	if (!fault_malloc_is_tcm())
		return 1;
	check_usable("before the limit");
	pthread_t threads[THREADS];
	if (threaded) {
		pthread_barrier_init(&start_barrier, NULL, THREADS + 1);
		pthread_barrier_init(&barrier, NULL, THREADS);
		/* Stacks first: they count against the limit. */
		static pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		for (size_t t = 0; t < THREADS; t++)
			if (pthread_create(&threads[t], &attr, thread_main, (void *)(uintptr_t)t) != 0)
				return 1;
	}
	if (!fault_limit_address_space(HEADROOM_BYTES))
		return 1;
	size_t obtained[ROUNDS][PHASES] = { { 0 } };
	if (threaded) {
		pthread_barrier_wait(&start_barrier);
		for (size_t t = 0; t < THREADS; t++)
			pthread_join(threads[t], NULL);
		for (int round = 0; round < ROUNDS; round++)
			for (int phase = 0; phase < PHASES; phase++)
				for (size_t t = 0; t < THREADS; t++)
					obtained[round][phase] += thread_obtained[round][phase][t];
	} else {
		for (int round = 0; round < ROUNDS; round++) {
			for (int phase = 0; phase < PHASES; phase++)
				obtained[round][phase] = run_phase((enum phase)phase, (unsigned)(round * 100 + phase));
			CHECK(fault_tcm_address_space_accounted("after a round"), "address space lost");
			check_usable("after a round");
		}
	}
	CHECK(fault_tcm_address_space_accounted("at the end"), "address space lost");
	check_usable("at the end");
	compare_rounds(obtained, threaded);
	fault_say("%d failures\n", (int)failures);
	return failures == 0 ? 0 : 1;
}
