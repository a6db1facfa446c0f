/* bench/malloc_free_pair.c - the fast path alone: `malloc_free_pair PAIRS SIZE` mallocs and frees
 * one SIZE-byte object PAIRS times after 1000 warm-up pairs. Not timed: bench/fast_path.sh runs it
 * under callgrind for PAIRS = 0 and 100000 and divides the difference in instructions by 100000,
 * which gives instructions per malloc+free pair (including the loop, about 10), a count that does
 * not change with the load of a shared machine. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s PAIRS SIZE\n", argv[0]);
		return 2;
	}
	long pairs = atol(argv[1]);
	size_t size = (size_t)atol(argv[2]);
	void *volatile sink;
	for (int i = 0; i < 1000; i++) {
		void *object = malloc(size);
		sink = object;
		free(object);
	}
	for (long i = 0; i < pairs; i++) {
		void *object = malloc(size);
		sink = object;
		free(object);
	}
	(void)sink;
	return 0;
}
