/* bench/noop_alloc.c - the do-nothing allocator, built as libnoop_alloc.so for LD_PRELOAD: the
 * floor of bench/exit_storm.sh. malloc bumps a pointer through one big MAP_NORESERVE reservation
 * with an atomic fetch-add; free does nothing; at exit the kernel tears the mapping down. Whatever
 * an allocator costs on the exit storm beyond this library's time, it added itself.
 * Invariants: every block starts 16 bytes after a header holding its usable size (so realloc and
 *             malloc_usable_size work); blocks are 16-byte aligned (or as asked); memory is never
 *             reused, so nothing can be handed out twice.
 * Never: locks, a call into libc's malloc, or a syscall after the one mmap (plus one if the first
 *        reservation is refused and a smaller one is tried).
 * Not for production: a program that allocates more than the reservation gets ENOMEM. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOOP_HEADER_BYTES  16u
#define NOOP_RESERVE_BYTES ((size_t)64 << 30)   /* address space only (MAP_NORESERVE) */
#define NOOP_RESERVE_MIN   ((size_t)1 << 30)

struct noop_header {
	size_t size_bytes;   /* usable bytes after the header; written once by the allocating thread */
	size_t pad;
};

static _Atomic uintptr_t region_base;   /* 0 until the reservation exists; set once (CAS) */
static uintptr_t region_end;            /* written before region_base is published */
static atomic_uintptr_t bump;           /* next free byte; fetch-add by every allocating thread */

#define EXPORT __attribute__((visibility("default")))

static uintptr_t region_init(void)
{
	uintptr_t base = atomic_load_explicit(&region_base, memory_order_acquire);
	if (base != 0)
		return base;
	/* Two threads may race here before main: the loser unmaps its reservation. */
	for (size_t len = NOOP_RESERVE_BYTES; len >= NOOP_RESERVE_MIN; len /= 2) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			continue;
		uintptr_t expected = 0;
		region_end = (uintptr_t)p + len;
		atomic_store_explicit(&bump, (uintptr_t)p, memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&region_base, &expected, (uintptr_t)p,
							    memory_order_acq_rel, memory_order_acquire))
			return (uintptr_t)p;
		munmap(p, len);
		return expected;
	}
	return 0;
}

/* align: a power of two >= 16. Returns a block of size usable bytes or NULL (errno ENOMEM). */
static void *noop_alloc(size_t size, size_t align)
{
	if (region_init() == 0 || size > ((size_t)1 << 40) || align > ((size_t)1 << 30)) {
		errno = ENOMEM;
		return NULL;
	}
	size = (size + 15) & ~(size_t)15;
	size_t need = size + NOOP_HEADER_BYTES + (align > 16 ? align : 0);
	uintptr_t start = atomic_fetch_add_explicit(&bump, need, memory_order_relaxed);
	if (start + need > region_end || start + need < start) {
		errno = ENOMEM;
		return NULL;
	}
	uintptr_t user = (start + NOOP_HEADER_BYTES + align - 1) & ~(uintptr_t)(align - 1);
	struct noop_header *h = (struct noop_header *)(user - NOOP_HEADER_BYTES);
	h->size_bytes = start + need - user;
	return (void *)user;
}

static int is_ours(const void *p)
{
	uintptr_t base = atomic_load_explicit(&region_base, memory_order_acquire);
	return base != 0 && (uintptr_t)p >= base + NOOP_HEADER_BYTES && (uintptr_t)p < region_end;
}

static size_t usable_size(const void *p)
{
	return ((const struct noop_header *)((uintptr_t)p - NOOP_HEADER_BYTES))->size_bytes;
}

EXPORT void *malloc(size_t size) { return noop_alloc(size, 16); }

EXPORT void free(void *p) { (void)p; }

EXPORT void cfree(void *p) { (void)p; }

EXPORT void *calloc(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return noop_alloc(total, 16);   /* fresh mmap'd memory is zero and is never reused */
}

EXPORT void *realloc(void *p, size_t size)
{
	if (p == NULL)
		return noop_alloc(size, 16);
	if (!is_ours(p)) {
		/* Only memory from before this library was loaded; it cannot happen under LD_PRELOAD. */
		static const char msg[] = "noop_alloc: realloc of a pointer it never handed out\n";
		(void)!write(2, msg, sizeof msg - 1);
		errno = ENOMEM;
		return NULL;
	}
	size_t old = usable_size(p);
	if (size <= old)
		return p;
	void *q = noop_alloc(size, 16);
	if (q != NULL)
		memcpy(q, p, old);
	return q;
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, total);
}

static int is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

EXPORT void *memalign(size_t align, size_t size)
{
	if (!is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return noop_alloc(size, align < 16 ? 16 : align);
}

EXPORT void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (!is_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	int saved = errno;
	void *p = noop_alloc(size, align < 16 ? 16 : align);
	errno = saved;
	if (p == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

EXPORT void *valloc(size_t size) { return noop_alloc(size, 4096); }

EXPORT void *pvalloc(size_t size) { return noop_alloc((size + 4095) & ~(size_t)4095, 4096); }

EXPORT size_t malloc_usable_size(void *p) { return p != NULL && is_ours(p) ? usable_size(p) : 0; }

EXPORT int malloc_trim(size_t pad) { (void)pad; return 0; }
