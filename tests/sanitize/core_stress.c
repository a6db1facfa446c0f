/* tests/sanitize/core_stress.c - threaded stress of core/ through its API (core.h,
 * release.h), linked to a sanitizer flavour of the testing core (no LD_PRELOAD: the
 * ASan and TSan runtimes own malloc themselves).
 *
 * Usage: tcm_core_stress_<flavour> [threads seconds seed] (defaults 4 3 1).
 * Each worker keeps SLOTS live blocks and, at random: allocates (malloc, zalloc,
 * aligned_alloc, 1 B to 2 MiB), reallocates, frees, or hands a
 * block to the next worker through a single-producer ring; it takes the blocks the
 * previous worker handed it and frees, reallocates or keeps them (cross-thread frees).
 * Workers run in two generations: the first exits halfway (thread-exit hand-off of
 * its caches), the second picks up its blocks. A release thread races them all
 * along: tcm_core_release_free_memory and stats in NORMAL, then, three quarters in,
 * tcm_core_enter_draining and the worker's drain and release steps.
 *
 * Invariants checked (any failure prints one line and aborts):
 *   - every byte of every block holds its pattern whenever its owner looks at it,
 *     after each hand-off and after realloc (the preserved prefix);
 *   - zalloc memory reads zero, aligned_alloc honours its alignment, usable size
 *     covers the request, no call fails;
 *   - the draining move happens exactly once; every worker did work, blocks changed
 *     threads, and the release thread ran while they did;
 *   - once every block is freed and the workers have exited, a full release leaves
 *     nothing allocated or cached and the page heap consistent. */
#define _GNU_SOURCE
#include "central.h"
#include "inside_release.h"
#include "core.h"
#include "page_heap.h"
#include "size_class.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_THREADS   16
#define SLOTS         64
#define RING_ENTRIES  128             /* a power of two */
#define TAKE_PER_STEP 4               /* ring entries a worker takes per step */
#define LARGE_MAX     ((size_t)2 << 20)

struct block {
	unsigned char *ptr;           /* NULL: empty slot */
	size_t         size_bytes;    /* requested size, > 0 */
	uint64_t       seed;          /* pattern seed */
	size_t         align_bytes;   /* aligned_alloc's alignment; 0 for other blocks */
};

/* Single producer (worker i), single consumer (worker i + 1); entries are written
 * before the release store of tail and read after the acquire load of it. */
struct ring {
	struct block     entries[RING_ENTRIES];
	_Atomic uint64_t head;        /* consumer only writes */
	_Atomic uint64_t tail;        /* producer only writes */
};

struct worker {
	unsigned     index;
	uint64_t     rng;               /* xorshift64 state; the owning thread only */
	struct block slots[SLOTS];      /* live blocks; the owning thread only */
	uint64_t     ops;
	uint64_t     handed;            /* blocks pushed to the next worker */
	uint64_t     taken;             /* blocks taken from the previous worker */
};

static unsigned thread_count = 4;
static double run_seconds = 3.0;
static struct worker workers[MAX_THREADS];
static struct ring rings[MAX_THREADS];   /* ring i: worker i -> worker i + 1 */
static uint64_t start_ns;
static _Atomic uint64_t generation_end_ns;
static atomic_bool stop_release;
static _Atomic uint64_t release_rounds_racing;   /* release rounds while workers ran */
static _Atomic uint64_t released_racing_bytes;
static _Atomic unsigned workers_running;

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static uint64_t seconds_to_ns(double seconds)
{
	return (uint64_t)(seconds * 1e9);
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("core_stress: FAILED: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
	abort();
}

static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/* ---- patterns: the word at byte offset 8k is pattern_word(seed, k) ------------------- */

static uint64_t pattern_word(uint64_t seed, size_t k)
{
	uint64_t x = seed ^ ((uint64_t)k * 0x9e3779b97f4a7c15u);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9u;
	return x ^ (x >> 29);
}

static void fill(unsigned char *ptr, size_t size_bytes, uint64_t seed)
{
	size_t words = size_bytes / 8;
	for (size_t k = 0; k < words; k++)
		((uint64_t *)(void *)ptr)[k] = pattern_word(seed, k);
	uint64_t last = pattern_word(seed, words);
	for (size_t i = words * 8; i < size_bytes; i++)
		ptr[i] = (unsigned char)(last >> (8 * (i % 8)));
}

static void check(const struct block *block, size_t size_bytes, const char *when)
{
	const unsigned char *ptr = block->ptr;
	size_t words = size_bytes / 8;
	for (size_t k = 0; k < words; k++)
		if (((const uint64_t *)(const void *)ptr)[k] != pattern_word(block->seed, k))
			fail("%s: block %p (%zu bytes) differs at byte offset %zu", when, (void *)ptr,
			     block->size_bytes, k * 8);
	uint64_t last = pattern_word(block->seed, words);
	for (size_t i = words * 8; i < size_bytes; i++)
		if (ptr[i] != (unsigned char)(last >> (8 * (i % 8))))
			fail("%s: block %p (%zu bytes) differs at byte offset %zu", when, (void *)ptr,
			     block->size_bytes, i);
}

/* ---- allocation ---------------------------------------------------------------------- */

/* Mostly small objects, some of every small class range, about 1% large blocks. */
static size_t random_size(uint64_t *rng)
{
	uint64_t r = next_random(rng);
	unsigned pick = (unsigned)(r % 100);
	r >>= 8;
	if (pick < 60)
		return 1 + r % 256;
	if (pick < 85)
		return 257 + r % (4096 - 256);
	if (pick < 95)
		return 4097 + r % (65536 - 4096);
	if (pick < 99)
		return 65537 + r % (TCM_SMALL_MAX_BYTES - 65536);
	return TCM_SMALL_MAX_BYTES + 1 + r % (LARGE_MAX - TCM_SMALL_MAX_BYTES);
}

static void check_usable(const struct block *block, const char *when)
{
	if (tcm_core_usable_size(block->ptr) < block->size_bytes)
		fail("%s: usable size %zu of %p below the %zu bytes asked for", when,
		     tcm_core_usable_size(block->ptr), (void *)block->ptr, block->size_bytes);
}

static void allocate(struct worker *worker, struct block *block)
{
	uint64_t r = next_random(&worker->rng);
	size_t size_bytes = random_size(&worker->rng);
	block->size_bytes = size_bytes;
	block->seed = next_random(&worker->rng);
	block->align_bytes = 0;
	switch (r % 4) {
	case 0:
		block->ptr = tcm_core_zalloc(size_bytes);
		if (block->ptr == NULL)
			fail("zalloc(%zu) failed (errno %d)", size_bytes, errno);
		for (size_t i = 0; i < size_bytes; i++)
			if (block->ptr[i] != 0)
				fail("zalloc(%zu) = %p: byte %zu is %#x, not 0", size_bytes, (void *)block->ptr, i,
				     block->ptr[i]);
		break;
	case 1: {
		/* 32 B to 64 KiB mostly; now and then 128 KiB to 1 MiB (a large aligned span). */
		unsigned shift = (r >> 8) % 64 == 0 ? 17 + (unsigned)((r >> 16) % 4) : 5 + (unsigned)((r >> 16) % 12);
		block->align_bytes = (size_t)1 << shift;
		block->ptr = tcm_core_aligned_alloc(block->align_bytes, size_bytes);
		if (block->ptr == NULL)
			fail("aligned_alloc(%zu, %zu) failed (errno %d)", block->align_bytes, size_bytes, errno);
		if ((uintptr_t)block->ptr % block->align_bytes != 0)
			fail("aligned_alloc(%zu, %zu) = %p: misaligned", block->align_bytes, size_bytes,
			     (void *)block->ptr);
		break;
	}
	default:
		block->ptr = tcm_core_malloc(size_bytes);
		if (block->ptr == NULL)
			fail("malloc(%zu) failed (errno %d)", size_bytes, errno);
		if ((uintptr_t)block->ptr % 16 != 0)
			fail("malloc(%zu) = %p: not 16-byte aligned", size_bytes, (void *)block->ptr);
		break;
	}
	check_usable(block, "allocate");
	fill(block->ptr, size_bytes, block->seed);
}

static void release_block(struct block *block, const char *when)
{
	check(block, block->size_bytes, when);
	tcm_core_free(block->ptr);
	block->ptr = NULL;
}

static void reallocate(struct worker *worker, struct block *block, const char *when)
{
	check(block, block->size_bytes, when);
	size_t size_bytes = random_size(&worker->rng);
	unsigned char *moved = tcm_core_realloc(block->ptr, size_bytes);
	if (moved == NULL)
		fail("realloc(%p, %zu) failed (errno %d)", (void *)block->ptr, size_bytes, errno);
	block->ptr = moved;
	check(block, size_bytes < block->size_bytes ? size_bytes : block->size_bytes, "after realloc");
	block->size_bytes = size_bytes;
	block->align_bytes = 0;   /* realloc keeps only the 16-byte alignment */
	block->seed = next_random(&worker->rng);
	check_usable(block, "realloc");
	fill(block->ptr, size_bytes, block->seed);
}

/* ---- hand-off between workers ---------------------------------------------------------- */

static bool ring_push(struct ring *ring, const struct block *block)
{
	uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
	if (tail - atomic_load_explicit(&ring->head, memory_order_acquire) == RING_ENTRIES)
		return false;
	ring->entries[tail % RING_ENTRIES] = *block;
	atomic_store_explicit(&ring->tail, tail + 1, memory_order_release);
	return true;
}

static bool ring_pop(struct ring *ring, struct block *out)
{
	uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
	if (head == atomic_load_explicit(&ring->tail, memory_order_acquire))
		return false;
	*out = ring->entries[head % RING_ENTRIES];
	atomic_store_explicit(&ring->head, head + 1, memory_order_release);
	return true;
}

/* A block from the previous worker: freed here (most), reallocated then freed, or
 * kept in place of a live block, which is freed. */
static void take_handed(struct worker *worker, struct block *block)
{
	check(block, block->size_bytes, "received");
	if (block->align_bytes != 0 && (uintptr_t)block->ptr % block->align_bytes != 0)
		fail("received %p: alignment %zu lost", (void *)block->ptr, block->align_bytes);
	worker->taken++;
	uint64_t r = next_random(&worker->rng) % 10;
	if (r < 6) {
		release_block(block, "received, freeing");
		return;
	}
	if (r < 8) {
		reallocate(worker, block, "received, reallocating");
		release_block(block, "received, freeing after realloc");
		return;
	}
	struct block *slot = &worker->slots[next_random(&worker->rng) % SLOTS];
	if (slot->ptr != NULL)
		release_block(slot, "replaced by a received block");
	*slot = *block;
}

static void step(struct worker *worker)
{
	struct block *slot = &worker->slots[next_random(&worker->rng) % SLOTS];
	uint64_t r = next_random(&worker->rng) % 10;
	if (slot->ptr == NULL) {
		allocate(worker, slot);
	} else if (r < 4) {
		release_block(slot, "freeing");
	} else if (r < 6) {
		reallocate(worker, slot, "reallocating");
	} else if (r < 9) {
		check(slot, slot->size_bytes, "handing over");
		if (ring_push(&rings[worker->index], slot)) {
			worker->handed++;
			slot->ptr = NULL;
		}
	} else {
		check(slot, slot->size_bytes, "checking");
	}
	struct ring *in = &rings[(worker->index + thread_count - 1) % thread_count];
	struct block handed;
	for (int i = 0; i < TAKE_PER_STEP && ring_pop(in, &handed); i++)
		take_handed(worker, &handed);
	worker->ops++;
}

static void *worker_main(void *arg)
{
	struct worker *worker = arg;
	uint64_t end_ns = atomic_load(&generation_end_ns);
	do {
		for (int i = 0; i < 64; i++)
			step(worker);
	} while (now_ns() < end_ns);
	/* Half the live blocks go with this thread; the next generation keeps the rest. */
	for (unsigned i = 0; i < SLOTS; i += 2)
		if (worker->slots[i].ptr != NULL)
			release_block(&worker->slots[i], "freeing at thread end");
	atomic_fetch_sub(&workers_running, 1);
	return NULL;
}

/* ---- the release thread ------------------------------------------------------------------ */

static void note_release(size_t bytes)
{
	if (atomic_load(&workers_running) != 0) {
		atomic_fetch_add(&release_rounds_racing, 1);
		atomic_fetch_add(&released_racing_bytes, bytes);
	}
}

static void *release_main(void *arg)
{
	(void)arg;
	uint64_t draining_at_ns = start_ns + seconds_to_ns(run_seconds * 0.75);
	static const size_t limits[] = { (size_t)64 << 10, TCM_CORE_RELEASE_CHUNK_BYTES, SIZE_MAX };
	unsigned round = 0;
	bool is_draining = false;
	/* Runs until told to stop, and at least until it has entered DRAINING. */
	while (!atomic_load(&stop_release) || !is_draining) {
		if (!is_draining && now_ns() >= draining_at_ns) {
			if (!tcm_core_enter_draining())
				fail("tcm_core_enter_draining did not make the move");
			if (tcm_core_enter_draining())
				fail("tcm_core_enter_draining moved twice");
			if (tcm_state_get() != TCM_STATE_DRAINING)
				fail("state %d after entering DRAINING", (int)tcm_state_get());
			is_draining = true;
		}
		if (!is_draining || round % 8 == 0) {
			note_release(tcm_core_release_free_memory(limits[round % 3]));
		} else {
			/* What the release worker does in DRAINING: trim the stacks, one step each. */
			tcm_release_drain_step(round % 2 == 0);
			note_release(tcm_release_step(TCM_CORE_RELEASE_CHUNK_BYTES));
		}
		struct tcm_stats stats;
		tcm_core_stats(&stats);
		(void)tcm_release_pending_bytes();
		round++;
	}
	return NULL;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void run_generation(unsigned generation, uint64_t end_ns)
{
	pthread_t threads[MAX_THREADS];
	atomic_store(&generation_end_ns, end_ns);
	atomic_store(&workers_running, thread_count);
	for (unsigned i = 0; i < thread_count; i++)
		if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0)
			fail("pthread_create of worker %u (generation %u)", i, generation);
	for (unsigned i = 0; i < thread_count; i++)
		pthread_join(threads[i], NULL);
}

static void check_all_came_back(void)
{
	tcm_core_release_free_memory(SIZE_MAX);
	struct tcm_stats stats;
	tcm_core_stats(&stats);
	struct tcm_page_heap_stats heap;
	tcm_page_heap_stats(&heap);
	if (heap.in_use_bytes != 0 || stats.allocated_bytes != 0 || stats.large_allocated_bytes != 0 ||
	    stats.central_cached_bytes != 0 || stats.thread_cached_bytes != 0 || stats.page_heap_free_bytes != 0)
		fail("after freeing everything: in use %" PRIu64 ", allocated %" PRIu64 ", large %" PRIu64
		     ", central %" PRIu64 ", thread caches %" PRIu64 ", free committed %" PRIu64 " bytes",
		     heap.in_use_bytes, stats.allocated_bytes, stats.large_allocated_bytes,
		     stats.central_cached_bytes, stats.thread_cached_bytes, stats.page_heap_free_bytes);
	int failed_line = tcm_page_heap_check();
	if (failed_line != 0)
		fail("tcm_page_heap_check failed at page_heap.c:%d", failed_line);
	if (stats.released_total_bytes == 0)
		fail("nothing was ever released");
}

int main(int argc, char **argv)
{
	if (argc > 4) {
		fprintf(stderr, "usage: %s [threads seconds seed]\n", argv[0]);
		return 2;
	}
	uint64_t seed = 1;
	if (argc > 1)
		thread_count = (unsigned)strtoul(argv[1], NULL, 10);
	if (argc > 2)
		run_seconds = strtod(argv[2], NULL);
	if (argc > 3)
		seed = strtoull(argv[3], NULL, 10);
	if (thread_count < 2 || thread_count > MAX_THREADS || !(run_seconds > 0)) {
		fprintf(stderr, "%s: threads must be 2..%d, seconds > 0\n", argv[0], MAX_THREADS);
		return 2;
	}
	for (unsigned i = 0; i < thread_count; i++) {
		workers[i].index = i;
		workers[i].rng = (seed + 1) * 0x9e3779b97f4a7c15u + i * 0xd1b54a32d192ed03u;
	}
	/* Small budgets: caches overflow and scavenge often, so the central stacks and
	 * spans see traffic from every thread. */
	tcm_core_set_thread_cache_budget((size_t)128 << 10, (size_t)256 << 10);

	start_ns = now_ns();
	pthread_t release_thread;
	if (pthread_create(&release_thread, NULL, release_main, NULL) != 0)
		fail("pthread_create of the release thread");
	run_generation(1, start_ns + seconds_to_ns(run_seconds / 2));
	run_generation(2, start_ns + seconds_to_ns(run_seconds));

	/* The main thread frees what is left: blocks in flight and live blocks. */
	for (unsigned i = 0; i < thread_count; i++) {
		struct block handed;
		while (ring_pop(&rings[i], &handed))
			release_block(&handed, "freeing in flight at the end");
		for (unsigned s = 0; s < SLOTS; s++)
			if (workers[i].slots[s].ptr != NULL)
				release_block(&workers[i].slots[s], "freeing at the end");
	}
	atomic_store(&stop_release, true);
	pthread_join(release_thread, NULL);

	uint64_t ops = 0, handed = 0, taken = 0;
	for (unsigned i = 0; i < thread_count; i++) {
		if (workers[i].ops == 0 || workers[i].taken == 0)
			fail("worker %u did %" PRIu64 " steps and took %" PRIu64 " blocks", i, workers[i].ops,
			     workers[i].taken);
		ops += workers[i].ops;
		handed += workers[i].handed;
		taken += workers[i].taken;
	}
	if (tcm_state_get() != TCM_STATE_DRAINING)
		fail("the release thread never entered DRAINING");
	if (atomic_load(&release_rounds_racing) == 0)
		fail("no release ran while the workers did");
	check_all_came_back();
	uint64_t inside_bytes, inside_calls;
	tcm_inside_release_totals(&inside_bytes, &inside_calls);
	printf("core_stress: %u threads, %.1f s: %" PRIu64 " steps, %" PRIu64 " blocks handed over (%" PRIu64
	       " taken), %" PRIu64 " release rounds racing the workers released %" PRIu64 " bytes (%" PRIu64
	       " inside used spans)\n", thread_count, run_seconds, ops, handed, taken,
	       atomic_load(&release_rounds_racing), atomic_load(&released_racing_bytes), inside_bytes);
	return 0;
}
