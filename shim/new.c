/* shim/new.c - C++ operator new and delete in every form, by their Itanium
 * mangled names (size_t = unsigned long on LP64: 'm').
 *
 * Failure of a throwing new follows the standard: call the std::new_handler
 * while one is installed and retry, then throw std::bad_alloc. Both come from
 * the program's C++ runtime through weak references (a C program has none; a
 * failing throwing new there ends the process with a clear message, as an
 * uncaught bad_alloc would). This file is built with -fexceptions so the
 * exception unwinds through it. nothrow forms call the handler the same way and
 * return NULL once none is installed; a handler that throws from inside a
 * nothrow new is not caught here (C cannot catch): the exception reaches the
 * caller, where standard C++ would have returned NULL. Sized delete takes the class from the size (the fast path); the
 * aligned forms use the page map, since an aligned block may sit in a larger
 * class than its size says. */
#include "shim.h"

#include "../core/core.h"

#include <stddef.h>

typedef void (*tcm_new_handler)(void);

/* std::get_new_handler() and std::__throw_bad_alloc() from libstdc++. */
extern tcm_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static void *allocate(size_t size_bytes, size_t alignment_bytes)
{
	return alignment_bytes <= 16 ? tcm_core_malloc(size_bytes) : tcm_core_aligned_alloc(alignment_bytes, size_bytes);
}

/* The allocation failed: run the new-handler and retry while one is installed.
 * Returns the memory, or NULL when no handler is left. */
static void *retry_with_new_handler(size_t size_bytes, size_t alignment_bytes)
{
	for (;;) {
		tcm_new_handler handler = _ZSt15get_new_handlerv != NULL ? _ZSt15get_new_handlerv() : NULL;
		if (handler == NULL)
			return NULL;
		handler();
		void *ptr = allocate(size_bytes, alignment_bytes);
		if (ptr != NULL)
			return ptr;
	}
}

/* Out of memory in a throwing new: the handler loop, then std::bad_alloc. */
__attribute__((noinline)) static void *new_failed(size_t size_bytes, size_t alignment_bytes)
{
	void *ptr = retry_with_new_handler(size_bytes, alignment_bytes);
	if (ptr != NULL)
		return ptr;
	if (_ZSt17__throw_bad_allocv != NULL)
		_ZSt17__throw_bad_allocv();
	tcm_fatal("operator new: out of memory, and no C++ runtime to throw std::bad_alloc");
}

static inline void *new_or_throw(size_t size_bytes)
{
	void *ptr = tcm_core_malloc(size_bytes);
	return TCM_LIKELY(ptr != NULL) ? ptr : new_failed(size_bytes, 0);
}

/* An alignment that is not a power of two is undefined behaviour in C++: it
 * fails like an allocation failure and never yields misaligned memory. */
static void *new_aligned_or_throw(size_t size_bytes, size_t alignment_bytes)
{
	if (!tcm_is_power_of_two(alignment_bytes))
		return new_failed(SIZE_MAX, 0);
	void *ptr = allocate(size_bytes, alignment_bytes);
	return ptr != NULL ? ptr : new_failed(size_bytes, alignment_bytes);
}

static void *new_nothrow(size_t size_bytes, size_t alignment_bytes)
{
	if (!tcm_is_power_of_two(alignment_bytes))
		return NULL;
	void *ptr = allocate(size_bytes, alignment_bytes);
	return TCM_LIKELY(ptr != NULL) ? ptr : retry_with_new_handler(size_bytes, alignment_bytes);
}

/* operator new(size_t), new[](size_t) */
TCM_EXPORT void *_Znwm(size_t size) { return new_or_throw(size); }
TCM_EXPORT void *_Znam(size_t size) { return new_or_throw(size); }
/* operator new(size_t, const std::nothrow_t &), new[] */
TCM_EXPORT void *_ZnwmRKSt9nothrow_t(size_t size, const void *nothrow) { (void)nothrow; return new_nothrow(size, 16); }
TCM_EXPORT void *_ZnamRKSt9nothrow_t(size_t size, const void *nothrow) { (void)nothrow; return new_nothrow(size, 16); }
/* operator new(size_t, std::align_val_t), new[] */
TCM_EXPORT void *_ZnwmSt11align_val_t(size_t size, size_t alignment) { return new_aligned_or_throw(size, alignment); }
TCM_EXPORT void *_ZnamSt11align_val_t(size_t size, size_t alignment) { return new_aligned_or_throw(size, alignment); }
/* operator new(size_t, std::align_val_t, const std::nothrow_t &), new[] */
TCM_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *nothrow)
{ (void)nothrow; return new_nothrow(size, alignment); }
TCM_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t alignment, const void *nothrow)
{ (void)nothrow; return new_nothrow(size, alignment); }

/* operator delete(void *), delete[] */
TCM_EXPORT void _ZdlPv(void *ptr) { tcm_core_free(ptr); }
TCM_EXPORT void _ZdaPv(void *ptr) { tcm_core_free(ptr); }
/* operator delete(void *, size_t), delete[] */
TCM_EXPORT void _ZdlPvm(void *ptr, size_t size) { tcm_core_free(ptr); }
TCM_EXPORT void _ZdaPvm(void *ptr, size_t size) { tcm_core_free(ptr); }
/* operator delete(void *, const std::nothrow_t &), delete[] */
TCM_EXPORT void _ZdlPvRKSt9nothrow_t(void *ptr, const void *nothrow) { (void)nothrow; tcm_core_free(ptr); }
TCM_EXPORT void _ZdaPvRKSt9nothrow_t(void *ptr, const void *nothrow) { (void)nothrow; tcm_core_free(ptr); }
/* operator delete(void *, std::align_val_t), delete[] */
TCM_EXPORT void _ZdlPvSt11align_val_t(void *ptr, size_t alignment) { (void)alignment; tcm_core_free(ptr); }
TCM_EXPORT void _ZdaPvSt11align_val_t(void *ptr, size_t alignment) { (void)alignment; tcm_core_free(ptr); }
/* operator delete(void *, size_t, std::align_val_t), delete[] */
TCM_EXPORT void _ZdlPvmSt11align_val_t(void *ptr, size_t size, size_t alignment)
{ (void)size; (void)alignment; tcm_core_free(ptr); }
TCM_EXPORT void _ZdaPvmSt11align_val_t(void *ptr, size_t size, size_t alignment)
{ (void)size; (void)alignment; tcm_core_free(ptr); }
/* operator delete(void *, std::align_val_t, const std::nothrow_t &), delete[] */
TCM_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *ptr, size_t alignment, const void *nothrow)
{ (void)alignment; (void)nothrow; tcm_core_free(ptr); }
TCM_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *ptr, size_t alignment, const void *nothrow)
{ (void)alignment; (void)nothrow; tcm_core_free(ptr); }
