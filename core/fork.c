/* core/fork.c - pthread_atfork handlers: the child of a threaded program gets a
 * working allocator (DESIGN invariant 6).
 *
 * prepare takes every allocator lock in the rank order of core/lock.h (central
 * classes in ascending order, then the page heap, then metadata), so no lock is
 * mid-update when the address space is copied; the parent gives them back; the
 * child resets them (their holder, the forking thread, is the child's only
 * thread) and recounts the live thread caches. Never: allocates. */
#include "core.h"

#include "central.h"
#include "lock.h"
#include "metadata.h"
#include "page_heap.h"
#include "size_class.h"
#include "thread_cache.h"

#include <pthread.h>

static void before_fork(void)
{
	/* The central locks exist once core is set up: a process that forks
	 * before its first allocation sets it up here (it allocates nothing). */
	tcm_core_bootstrap();
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		tcm_lock_take_for_fork(tcm_central_lock_object(size_class));
	tcm_lock_take_for_fork(tcm_page_heap_lock_object());
	tcm_lock_take_for_fork(tcm_metadata_lock_object());
	tcm_lock_set_fork_holder(true);
}

static void after_fork_in_parent(void)
{
	tcm_lock_set_fork_holder(false);
	tcm_lock_give_back_after_fork(tcm_metadata_lock_object());
	tcm_lock_give_back_after_fork(tcm_page_heap_lock_object());
	for (unsigned size_class = TCM_SIZE_CLASS_COUNT - 1; size_class >= 1; size_class--)
		tcm_lock_give_back_after_fork(tcm_central_lock_object(size_class));
}

static void after_fork_in_child(void)
{
	tcm_lock_set_fork_holder(false);
	tcm_lock_reset_in_child(tcm_metadata_lock_object());
	tcm_lock_reset_in_child(tcm_page_heap_lock_object());
	for (unsigned size_class = 1; size_class < TCM_SIZE_CLASS_COUNT; size_class++)
		tcm_lock_reset_in_child(tcm_central_lock_object(size_class));
	/* Work that a thread of the parent had out of the locks. */
	tcm_page_heap_after_fork_in_child();
	tcm_central_after_fork_in_child();
	tcm_thread_cache_after_fork_in_child();
	tcm_release_after_fork_in_child();
	tcm_os_after_fork_in_child();
}

void tcm_core_install_fork_handlers(void)
{
	pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}
