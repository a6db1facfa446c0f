/* tests/stress/stress.c - threaded allocation stress with content checks (not a benchmark).
 *
 * Usage: stress [threads [scale [iterations]]]   (defaults 8 100 10; fixed seed)
 * Each iteration starts `threads` threads; each keeps up to 10*scale live objects and
 * does 100*scale operations: malloc or calloc (calloc must be all zero) of mixed sizes
 * (about 91% 16 B..1 KiB, 8.5% 1..64 KiB, 0.5% 256 KiB..2 MiB), realloc grow/shrink (the
 * kept prefix must survive), free, and frees handed to another thread through that
 * thread's mutex-protected mailbox (the receiver checks, then frees, so objects and the
 * mailbox nodes are freed by a thread that did not allocate them). At thread exit half
 * of the live objects are left in a transfer area that the next iteration's threads
 * adopt, so objects also outlive the thread (and its cache) that allocated them.
 * Every object is filled with a pattern derived from (address, size, seed, tag) and
 * checked in full before each free and realloc and on every hand-over. Any mismatch,
 * a too-small malloc_usable_size or an allocation failure prints one line and exits 1.
 * Runs with any allocator: plain (glibc) or under LD_PRELOAD=libtcm.so. If the
 * environment sets TCM_TESTING_EXPECT_LIB_NAME (CTest sets libtcm.so), malloc must be defined in
 * a file of that name (dladdr), so a preload the loader ignored cannot pass silently.
 * If STRESS_SHUTDOWN_BEGIN is set, the run starts by calling tcm_shutdown_begin() (found
 * with dlsym; missing = failure), so the whole stress runs in DRAINING while tcm's worker
 * drains the central lists and releases free pages, inside partly used spans too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STRESS_SEED 0x7c3a5e11d2b94f07ull
#define KIB ((size_t)1024)

struct object {
	unsigned char *p;   /* NULL = empty slot */
	size_t size;        /* requested bytes */
	uint64_t seed;      /* per-object pattern seed */
};

struct mail {               /* one object in flight to another thread */
	struct object obj;
	struct mail *next;
};

struct mailbox {
	pthread_mutex_t lock;
	struct mail *head;      /* guarded by lock */
};

struct worker {
	unsigned index;         /* 0..threads-1 */
	unsigned iteration;
	uint64_t rng;           /* owner thread */
	struct object *slots;   /* owner thread; n_slots entries */
	unsigned long ops, sent, received, adopted;
};

static unsigned n_threads = 8;
static unsigned scale = 100;
static unsigned iterations = 10;
static size_t n_slots;              /* per thread: 10 * scale */
static size_t n_transfer;           /* per thread: n_slots / 2 */
static struct mailbox *mailboxes;   /* one per thread index */
static struct object *transfer;     /* n_threads * n_transfer; region i owned by thread i */
static pthread_barrier_t barrier;
static atomic_ulong total_ops, total_sent, total_adopted, total_bytes;

static void die(const char *what, unsigned thread, const struct object *o, size_t off,
                unsigned expected, unsigned got)
{
	fprintf(stderr,
	        "stress: FAIL thread %u: %s: object %p size %zu seed %016llx: byte %zu "
	        "expected 0x%02x got 0x%02x\n",
	        thread, what, (void *)o->p, o->size, (unsigned long long)o->seed, off, expected,
	        got);
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

static void die_msg(unsigned thread, const char *msg, size_t size)
{
	fprintf(stderr, "stress: FAIL thread %u: %s (size %zu)\n", thread, msg, size);
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

static uint64_t rng_next(uint64_t *s)  /* xorshift64* */
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t mix(uint64_t x)  /* splitmix64 finaliser */
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t pattern_base(const struct object *o)
{
	return mix((uint64_t)(uintptr_t)o->p ^ mix(o->size ^ o->seed));
}

static uint64_t pattern_word(uint64_t base, size_t i)
{
	return base ^ (i * 0x9E3779B97F4A7C15ull);
}

static unsigned char pattern_tail_byte(uint64_t base, size_t off)
{
	return (unsigned char)((base >> ((off & 7) * 8)) ^ off);
}

static void pattern_fill(const struct object *o)
{
	uint64_t base = pattern_base(o);
	size_t words = o->size / 8;
	uint64_t *w = (uint64_t *)(void *)o->p;  /* malloc results are >= 8-byte aligned */
	for (size_t i = 0; i < words; i++)
		w[i] = pattern_word(base, i);
	for (size_t off = words * 8; off < o->size; off++)
		o->p[off] = pattern_tail_byte(base, off);
}

/* Checks the first `len` bytes (len <= o->size) against o's pattern. */
static void pattern_check(const struct object *o, size_t len, const char *what, unsigned thread)
{
	uint64_t base = pattern_base(o);
	size_t words = len / 8;
	const uint64_t *w = (const uint64_t *)(const void *)o->p;
	for (size_t i = 0; i < words; i++) {
		if (w[i] != pattern_word(base, i)) {
			uint64_t want = pattern_word(base, i);
			for (size_t b = 0; b < 8; b++) {
				unsigned char e = (unsigned char)(want >> (8 * b));
				if (o->p[i * 8 + b] != e)
					die(what, thread, o, i * 8 + b, e, o->p[i * 8 + b]);
			}
		}
	}
	for (size_t off = words * 8; off < len; off++)
		if (o->p[off] != pattern_tail_byte(base, off))
			die(what, thread, o, off, pattern_tail_byte(base, off), o->p[off]);
}

static void object_check(const struct object *o, const char *what, unsigned thread)
{
	pattern_check(o, o->size, what, thread);
	if (malloc_usable_size(o->p) < o->size)
		die_msg(thread, "malloc_usable_size smaller than the request", o->size);
}

static size_t pick_size(uint64_t *rng)
{
	uint64_t r = rng_next(rng);
	unsigned bucket = (unsigned)(r % 1000);
	r >>= 10;
	if (bucket < 5)
		return 256 * KIB + (size_t)(r % (1792 * KIB + 1));  /* 256 KiB .. 2 MiB */
	if (bucket < 90)
		return KIB + (size_t)(r % (63 * KIB + 1));          /* 1 .. 64 KiB */
	return 16 + (size_t)(r % (1024 - 16 + 1));                /* 16 B .. 1 KiB */
}

static void object_new(struct worker *w, struct object *o)
{
	o->size = pick_size(&w->rng);
	o->seed = rng_next(&w->rng);
	if (rng_next(&w->rng) % 10 == 0) {
		o->p = calloc(1, o->size);
		if (o->p == NULL)
			die_msg(w->index, "calloc returned NULL", o->size);
		for (size_t i = 0; i < o->size; i++)
			if (o->p[i] != 0) {
				struct object z = *o;
				fprintf(stderr, "stress: calloc result not zero\n");
				die("calloc zero check", w->index, &z, i, 0, o->p[i]);
			}
	} else {
		o->p = malloc(o->size);
		if (o->p == NULL)
			die_msg(w->index, "malloc returned NULL", o->size);
	}
	pattern_fill(o);
	atomic_fetch_add_explicit(&total_bytes, o->size, memory_order_relaxed);
}

static void object_free(struct worker *w, struct object *o, const char *what)
{
	object_check(o, what, w->index);
	free(o->p);
	o->p = NULL;
}

static void object_realloc(struct worker *w, struct object *o)
{
	object_check(o, "before realloc", w->index);
	struct object old = *o;
	size_t new_size;
	uint64_t r = rng_next(&w->rng);
	if (r % 3 == 0)
		new_size = pick_size(&w->rng);                      /* anywhere, across classes */
	else if (r % 3 == 1)
		new_size = old.size + old.size / 2 + 1;             /* grow */
	else
		new_size = old.size / 2 + 1;                        /* shrink */
	if (new_size > 4 * 1024 * KIB)
		new_size = 4 * 1024 * KIB;
	unsigned char *q = realloc(old.p, new_size);
	if (q == NULL)
		die_msg(w->index, "realloc returned NULL", new_size);
	/* The kept prefix still holds the old pattern, computed from the old address. */
	struct object moved = { .p = q, .size = old.size, .seed = old.seed };
	size_t kept = old.size < new_size ? old.size : new_size;
	uint64_t base = pattern_base(&old);
	for (size_t off = 0; off < kept; off++) {
		unsigned char want = off < old.size / 8 * 8
			? (unsigned char)(pattern_word(base, off / 8) >> (8 * (off & 7)))
			: pattern_tail_byte(base, off);
		if (q[off] != want)
			die("after realloc (kept prefix)", w->index, &moved, off, want, q[off]);
	}
	o->p = q;
	o->size = new_size;
	o->seed = rng_next(&w->rng);
	pattern_fill(o);
}

static void mailbox_send(struct worker *w, struct object *o)
{
	unsigned to = (w->index + 1 + (unsigned)(rng_next(&w->rng) % (n_threads > 1 ? n_threads - 1 : 1))) % n_threads;
	struct mail *m = malloc(sizeof(*m));
	if (m == NULL)
		die_msg(w->index, "malloc of a mail node returned NULL", sizeof(*m));
	m->obj = *o;
	o->p = NULL;
	pthread_mutex_lock(&mailboxes[to].lock);
	m->next = mailboxes[to].head;
	mailboxes[to].head = m;
	pthread_mutex_unlock(&mailboxes[to].lock);
	w->sent++;
}

static void mailbox_drain(struct worker *w)
{
	pthread_mutex_lock(&mailboxes[w->index].lock);
	struct mail *m = mailboxes[w->index].head;
	mailboxes[w->index].head = NULL;
	pthread_mutex_unlock(&mailboxes[w->index].lock);
	while (m != NULL) {
		struct mail *next = m->next;
		object_free(w, &m->obj, "received from another thread");
		free(m);
		w->received++;
		m = next;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->slots = calloc(n_slots, sizeof(struct object));
	if (w->slots == NULL)
		die_msg(w->index, "calloc of the slot table returned NULL", n_slots);
	/* Adopt what the previous iteration's thread (index - 1) left behind. */
	if (w->iteration > 0) {
		unsigned from = (w->index + n_threads - 1) % n_threads;
		struct object *region = &transfer[(size_t)from * n_transfer];
		for (size_t i = 0; i < n_transfer; i++) {
			if (region[i].p == NULL)
				continue;
			object_check(&region[i], "adopted from an exited thread", w->index);
			w->slots[i] = region[i];
			region[i].p = NULL;
			w->adopted++;
		}
	}
	/* Everyone has adopted before anyone writes its own transfer region below. */
	pthread_barrier_wait(&barrier);

	unsigned long n_ops = 100ul * scale;
	for (unsigned long op = 0; op < n_ops; op++) {
		struct object *o = &w->slots[rng_next(&w->rng) % n_slots];
		unsigned action = (unsigned)(rng_next(&w->rng) % 100);
		if (o->p == NULL)
			object_new(w, o);
		else if (action < 50) {
			object_free(w, o, "before free");
			object_new(w, o);
		} else if (action < 70)
			object_realloc(w, o);
		else if (action < 85)
			mailbox_send(w, o);
		else
			object_check(o, "periodic check", w->index);
		if (op % 64 == 0)
			mailbox_drain(w);
	}
	/* All sends of this iteration happen before the barrier, so the drain after it is final. */
	pthread_barrier_wait(&barrier);
	mailbox_drain(w);

	struct object *mine = &transfer[(size_t)w->index * n_transfer];
	for (size_t i = 0; i < n_slots; i++) {
		if (w->slots[i].p == NULL)
			continue;
		if (i < n_transfer && (i & 1) == 0) {
			object_check(&w->slots[i], "before hand-over at thread exit", w->index);
			mine[i] = w->slots[i];     /* outlives this thread */
		} else
			object_free(w, &w->slots[i], "free at thread exit");
	}
	free(w->slots);
	w->ops = n_ops;
	atomic_fetch_add(&total_ops, w->ops);
	atomic_fetch_add(&total_sent, w->sent);
	atomic_fetch_add(&total_adopted, w->adopted);
	return NULL;
}

/* Exits 1 unless malloc is defined in a file named $TCM_TESTING_EXPECT_LIB_NAME (if set). */
static void check_malloc_provider(void)
{
	const char *want = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	const char *path = sym != NULL && dladdr(sym, &info) != 0 && info.dli_fname != NULL
		? info.dli_fname : "(unknown)";
	printf("stress: malloc is defined in %s\n", path);
	if (want == NULL || want[0] == '\0')
		return;
	const char *slash = strrchr(path, '/');
	if (strcmp(slash != NULL ? slash + 1 : path, want) != 0) {
		fprintf(stderr, "stress: FAIL: malloc is defined in %s, expected %s\n", path, want);
		exit(1);
	}
}

static unsigned parse_arg(const char *s, const char *name, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v == 0 || v > max) {
		fprintf(stderr, "stress: bad %s '%s' (1..%u)\n", name, s, max);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	if (argc > 4) {
		fprintf(stderr, "usage: %s [threads [scale [iterations]]]\n", argv[0]);
		return 2;
	}
	if (argc > 1)
		n_threads = parse_arg(argv[1], "threads", 1024);
	if (argc > 2)
		scale = parse_arg(argv[2], "scale", 100000);
	if (argc > 3)
		iterations = parse_arg(argv[3], "iterations", 100000);
	check_malloc_provider();
	if (getenv("STRESS_SHUTDOWN_BEGIN") != NULL) {
		void (*shutdown_begin)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "tcm_shutdown_begin");
		if (shutdown_begin == NULL)
			die_msg(0, "STRESS_SHUTDOWN_BEGIN is set but tcm_shutdown_begin is not defined", 0);
		shutdown_begin();
	}
	n_slots = 10ul * scale;
	n_transfer = n_slots / 2;

	mailboxes = calloc(n_threads, sizeof(*mailboxes));
	transfer = calloc((size_t)n_threads * n_transfer, sizeof(*transfer));
	struct worker *workers = calloc(n_threads, sizeof(*workers));
	pthread_t *tids = calloc(n_threads, sizeof(*tids));
	if (mailboxes == NULL || transfer == NULL || workers == NULL || tids == NULL)
		die_msg(0, "calloc of the test's tables returned NULL", n_threads);
	for (unsigned i = 0; i < n_threads; i++)
		pthread_mutex_init(&mailboxes[i].lock, NULL);
	pthread_barrier_init(&barrier, NULL, n_threads);

	printf("stress: %u threads, scale %u, %u iterations, seed %016llx\n", n_threads, scale,
	       iterations, STRESS_SEED);
	fflush(stdout);
	for (unsigned it = 0; it < iterations; it++) {
		for (unsigned i = 0; i < n_threads; i++) {
			workers[i] = (struct worker){
				.index = i,
				.iteration = it,
				.rng = mix(STRESS_SEED ^ ((uint64_t)it << 32) ^ i) | 1,
			};
			if (pthread_create(&tids[i], NULL, worker_main, &workers[i]) != 0)
				die_msg(i, "pthread_create failed", 0);
		}
		for (unsigned i = 0; i < n_threads; i++)
			pthread_join(tids[i], NULL);
	}
	/* Objects left by the last iteration: checked and freed by the main thread. */
	struct worker main_worker = { .index = n_threads };
	for (size_t i = 0; i < (size_t)n_threads * n_transfer; i++)
		if (transfer[i].p != NULL)
			object_free(&main_worker, &transfer[i], "free by main after all threads exited");
	for (unsigned i = 0; i < n_threads; i++) {
		if (mailboxes[i].head != NULL)
			die_msg(i, "mailbox not empty at the end", 0);
		pthread_mutex_destroy(&mailboxes[i].lock);
	}
	pthread_barrier_destroy(&barrier);
	unsigned long ops = atomic_load(&total_ops);
	if (ops != 100ul * scale * n_threads * iterations)
		die_msg(0, "operation count mismatch", ops);
	printf("stress: OK: %lu operations, %lu cross-thread frees, %lu objects adopted across "
	       "thread exits, %llu MiB allocated\n",
	       ops, atomic_load(&total_sent), atomic_load(&total_adopted),
	       (unsigned long long)(atomic_load(&total_bytes) >> 20));
	free(tids);
	free(workers);
	free(transfer);
	free(mailboxes);
	return 0;
}
