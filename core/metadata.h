/* core/metadata.h - tcm's own structures (span records, page-map leaves)
 * carved from pages tcm maps itself; never from malloc.
 *
 * Metadata is never freed to the kernel: callers recycle records themselves
 * (the page heap keeps a pool of span records). */
#ifndef TCM_CORE_METADATA_H
#define TCM_CORE_METADATA_H

#include <stddef.h>
#include <stdint.h>

/* Returns size_bytes of zeroed memory aligned to 64 bytes, or NULL (ENOMEM).
 * REQUIRES: the caller holds no tcm lock (it may map memory). */
void *tcm_metadata_alloc(size_t size_bytes);

/* Bytes of metadata handed out so far. */
uint64_t tcm_metadata_bytes(void);

struct tcm_lock;
struct tcm_lock *tcm_metadata_lock_object(void);   /* for core/fork.c */

#endif
