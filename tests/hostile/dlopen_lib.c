/* tests/hostile/dlopen_lib.c - a library loaded and unloaded again and again
 * (dlopen.c): its constructor allocates blocks (16 B .. 400 KiB, each filled
 * with a pattern); some it keeps to check and free in its destructor, the
 * others it hands to the program (hostile_dl_handoff), which frees them on
 * another thread after dlclose has unmapped this library. A destructor that
 * finds a kept block changed says so and _exits with 3. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../process/pattern.h"

#define EXPORTED __attribute__((visibility("default")))
#define HOSTILE_DL_BLOCKS 32

EXPORTED void *hostile_dl_handoff[HOSTILE_DL_BLOCKS];
EXPORTED size_t hostile_dl_handoff_len[HOSTILE_DL_BLOCKS];
EXPORTED unsigned hostile_dl_handoff_seed[HOSTILE_DL_BLOCKS];
EXPORTED int hostile_dl_constructed;

static void *kept[HOSTILE_DL_BLOCKS];
static size_t kept_len[HOSTILE_DL_BLOCKS];

static size_t block_size(unsigned i)
{
	return i % 8 == 7 ? 100 * 1024 + i * 10000 : 16 + (size_t)i * i * 37;
}

__attribute__((constructor)) static void allocate_at_load(void)
{
	for (unsigned i = 0; i < HOSTILE_DL_BLOCKS; i++) {
		hostile_dl_handoff_len[i] = block_size(i);
		hostile_dl_handoff_seed[i] = i * 7u + 1u;
		hostile_dl_handoff[i] = malloc(hostile_dl_handoff_len[i]);
		kept_len[i] = block_size(HOSTILE_DL_BLOCKS - 1 - i);
		kept[i] = malloc(kept_len[i]);
		if (hostile_dl_handoff[i] == NULL || kept[i] == NULL)
			return;   /* hostile_dl_constructed stays 0: the program fails the round */
		fill(hostile_dl_handoff[i], hostile_dl_handoff_len[i], hostile_dl_handoff_seed[i]);
		fill(kept[i], kept_len[i], i);
	}
	hostile_dl_constructed = 1;
}

__attribute__((destructor)) static void free_at_unload(void)
{
	for (unsigned i = 0; i < HOSTILE_DL_BLOCKS; i++) {
		if (kept[i] != NULL && check_fill(kept[i], kept_len[i], i) != kept_len[i]) {
			static const char message[] = "FAIL: dlopen_lib: a block kept by the library changed\n";
			(void)!write(STDERR_FILENO, message, sizeof(message) - 1);
			_exit(3);
		}
		free(kept[i]);
		kept[i] = NULL;
	}
}
