/* tests/process/early_malloc_main.c - checks what early_malloc_lib.c's
 * constructor recorded: every allocation it made before libtcm.so's constructor
 * ran worked, and the library named by $TCM_TESTING_EXPECT_LIB_NAME served it.
 * Exit 0 only then. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	const char **result = dlsym(RTLD_DEFAULT, "early_malloc_result");
	const char *served_by = dlsym(RTLD_DEFAULT, "early_malloc_served_by");
	const char *expected = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	if (result == NULL || served_by == NULL || expected == NULL) {
		fprintf(stderr, "FAIL: the early library is not preloaded or TCM_TESTING_EXPECT_LIB_NAME is unset\n");
		return 1;
	}
	if (strcmp(*result, "ok") != 0) {
		fprintf(stderr, "FAIL: allocation before tcm's constructor: %s\n", *result);
		return 1;
	}
	const char *base = strrchr(served_by, '/');
	if (strcmp(base != NULL ? base + 1 : served_by, expected) != 0) {
		fprintf(stderr, "FAIL: malloc before tcm's constructor came from '%s', expected %s\n", served_by, expected);
		return 1;
	}
	printf("allocations before libtcm.so's constructor worked, served by %s\n", served_by);
	return 0;
}
