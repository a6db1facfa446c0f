/* shim/malloc.c - the C malloc family: glibc's argument rules and errno, then one
 * call into core/. Also the tcm_* aliases of the same functions (tcm.h).
 *
 * Rules kept here (glibc 2.36 unless noted): calloc and reallocarray fail with
 * ENOMEM on count * size overflow; realloc(NULL, n) is malloc(n); realloc(p, 0)
 * frees p and returns NULL; memalign rounds a non-power-of-two alignment up;
 * posix_memalign returns EINVAL for an alignment that is not a power of two
 * multiple of sizeof(void *) and leaves errno alone; aligned_alloc fails with
 * EINVAL for an alignment that is not a power of two (glibc >= 2.38, C17 DR 460);
 * valloc and pvalloc align to the kernel page, pvalloc also rounds the size. */
#include "shim.h"

#include "../core/core.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

TCM_EXPORT void *malloc(size_t size_bytes)
{
	return tcm_core_malloc(size_bytes);
}

TCM_EXPORT void free(void *ptr)
{
	tcm_core_free(ptr);
}

TCM_EXPORT void *calloc(size_t count, size_t size_bytes)
{
	size_t total_bytes;
	if (__builtin_mul_overflow(count, size_bytes, &total_bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return tcm_core_zalloc(total_bytes);
}

TCM_EXPORT void *realloc(void *ptr, size_t size_bytes)
{
	if (ptr == NULL)
		return tcm_core_malloc(size_bytes);
	if (size_bytes == 0) {
		tcm_core_free(ptr);
		return NULL;
	}
	return tcm_core_realloc(ptr, size_bytes);
}

TCM_EXPORT void *reallocarray(void *ptr, size_t count, size_t size_bytes)
{
	size_t total_bytes;
	if (__builtin_mul_overflow(count, size_bytes, &total_bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(ptr, total_bytes);
}

TCM_EXPORT void *memalign(size_t alignment_bytes, size_t size_bytes)
{
	size_t alignment = tcm_round_up_alignment(alignment_bytes);
	if (alignment == 0) {
		errno = EINVAL;
		return NULL;
	}
	return tcm_core_aligned_alloc(alignment, size_bytes);
}

TCM_EXPORT int posix_memalign(void **result, size_t alignment_bytes, size_t size_bytes)
{
	if (alignment_bytes % sizeof(void *) != 0 || !tcm_is_power_of_two(alignment_bytes))
		return EINVAL;
	int saved_errno = errno;
	void *ptr = tcm_core_aligned_alloc(alignment_bytes, size_bytes);
	errno = saved_errno;
	if (ptr == NULL)
		return ENOMEM;
	*result = ptr;
	return 0;
}

TCM_EXPORT void *aligned_alloc(size_t alignment_bytes, size_t size_bytes)
{
	if (!tcm_is_power_of_two(alignment_bytes)) {
		errno = EINVAL;
		return NULL;
	}
	return tcm_core_aligned_alloc(alignment_bytes, size_bytes);
}

TCM_EXPORT void *valloc(size_t size_bytes)
{
	return tcm_core_aligned_alloc(tcm_os_kernel_page_bytes(), size_bytes);
}

TCM_EXPORT void *pvalloc(size_t size_bytes)
{
	size_t page_bytes = tcm_os_kernel_page_bytes();
	size_t rounded_bytes = (size_bytes + page_bytes - 1) & ~(page_bytes - 1);
	if (rounded_bytes < size_bytes) {
		errno = ENOMEM;
		return NULL;
	}
	return tcm_core_aligned_alloc(page_bytes, rounded_bytes == 0 ? page_bytes : rounded_bytes);
}

TCM_EXPORT size_t malloc_usable_size(void *ptr)
{
	return tcm_core_usable_size(ptr);
}

/* C23. The size is not trusted for the size class: a block realloc shrank in
 * place lives in a larger class than its size says. */
TCM_EXPORT void free_sized(void *ptr, size_t size_bytes)
{
	(void)size_bytes;
	tcm_core_free(ptr);
}

TCM_EXPORT void free_aligned_sized(void *ptr, size_t alignment_bytes, size_t size_bytes)
{
	(void)alignment_bytes;
	(void)size_bytes;
	tcm_core_free(ptr);
}

/* The tcm.h names of the same functions. */
TCM_EXPORT void *tcm_malloc(size_t size_bytes) __attribute__((alias("malloc"), copy(malloc)));
TCM_EXPORT void tcm_free(void *ptr) __attribute__((alias("free"), copy(free)));
TCM_EXPORT void *tcm_calloc(size_t count, size_t size_bytes) __attribute__((alias("calloc"), copy(calloc)));
TCM_EXPORT void *tcm_realloc(void *ptr, size_t size_bytes) __attribute__((alias("realloc"), copy(realloc)));
TCM_EXPORT void *tcm_aligned_alloc(size_t alignment_bytes, size_t size_bytes) __attribute__((alias("aligned_alloc"), copy(aligned_alloc)));
TCM_EXPORT size_t tcm_malloc_usable_size(void *ptr) __attribute__((alias("malloc_usable_size"), copy(malloc_usable_size)));

/* glibc's internal names, which some programs and libraries call directly. */
TCM_EXPORT void *__libc_malloc(size_t size_bytes) __attribute__((alias("malloc"), copy(malloc)));
TCM_EXPORT void __libc_free(void *ptr) __attribute__((alias("free"), copy(free)));
TCM_EXPORT void *__libc_calloc(size_t count, size_t size_bytes) __attribute__((alias("calloc"), copy(calloc)));
TCM_EXPORT void *__libc_realloc(void *ptr, size_t size_bytes) __attribute__((alias("realloc"), copy(realloc)));
TCM_EXPORT void *__libc_memalign(size_t alignment_bytes, size_t size_bytes) __attribute__((alias("memalign"), copy(memalign)));
TCM_EXPORT void *__libc_valloc(size_t size_bytes) __attribute__((alias("valloc"), copy(valloc)));
TCM_EXPORT void *__libc_pvalloc(size_t size_bytes) __attribute__((alias("pvalloc"), copy(pvalloc)));
