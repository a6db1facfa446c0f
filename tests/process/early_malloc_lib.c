/* tests/process/early_malloc_lib.c - a library preloaded after libtcm.so whose
 * constructor allocates. The loader runs it before libtcm.so's own constructor
 * (LD_PRELOAD="libtcm.so libearly.so": the later preload initialises first), so
 * it proves DESIGN invariant 10: malloc works before tcm's constructors ran.
 * It records what it saw in early_malloc_result for the test's main program. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) const char *early_malloc_result = "constructor did not run";
__attribute__((visibility("default"))) char early_malloc_served_by[512];

__attribute__((constructor)) static void allocate_before_tcm_init(void)
{
	Dl_info info;
	if (dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) && info.dli_fname != NULL)
		strncpy(early_malloc_served_by, info.dli_fname, sizeof(early_malloc_served_by) - 1);
	char *small = malloc(24);
	char *large = malloc(1 << 20);
	unsigned char *zeroed = calloc(1000, 8);
	void *aligned = NULL;
	if (small == NULL || large == NULL || zeroed == NULL || posix_memalign(&aligned, 4096, 100) != 0) {
		early_malloc_result = "an allocation failed";
		return;
	}
	for (size_t i = 0; i < 8000; i++)
		if (zeroed[i] != 0) {
			early_malloc_result = "calloc memory was not zero";
			return;
		}
	if ((uintptr_t)aligned % 4096 != 0) {
		early_malloc_result = "posix_memalign result misaligned";
		return;
	}
	memset(small, 0x5a, 24);
	memset(large, 0xa5, 1 << 20);
	small = realloc(small, 100000);
	if (small == NULL || small[23] != 0x5a) {
		early_malloc_result = "realloc lost the contents";
		return;
	}
	free(small);
	free(large);
	free(zeroed);
	free(aligned);
	early_malloc_result = "ok";
}
