/* tests/hostile/hostile.h - helpers shared by the hostile-caller tests: the
 * "served by tcm" check every test starts with, hang detectors (a SIGALRM
 * watchdog, waitpid with a deadline) so a deadlock fails fast instead of
 * hanging CI, and background threads that keep the allocator busy.
 *
 * Reference runs: with HOSTILE_BASELINE=1 in the environment the same programs
 * check that tcm is NOT loaded (the run is the glibc reference the tcm run is
 * compared with); otherwise malloc must resolve to the preloaded library, whose
 * file name is TCM_TESTING_EXPECT_LIB_NAME (default libtcm.so). */
#ifndef TCM_TESTS_HOSTILE_H
#define TCM_TESTS_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HOSTILE_FAIL(...) \
	do { hostile_print("FAIL: " __VA_ARGS__); _exit(1); } while (0)
#define HOSTILE_CHECK(condition, ...) \
	do { if (!(condition)) HOSTILE_FAIL(__VA_ARGS__); } while (0)

/* printf to stderr with a newline, flushed; for normal context only. */
void hostile_print(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Exits 1 with a message unless the process runs as its mode says (see the
 * file comment). Returns true under tcm, false in a baseline run. */
bool hostile_require_tcm(const char *test_name);

/* True in a HOSTILE_BASELINE=1 run. */
bool hostile_is_baseline(void);

/* Arms alarm(seconds): if it fires, "FAIL (hang): <what>" goes to stderr and the
 * process _exits with 1 (async-signal-safe). `what` must outlive the alarm.
 * seconds = 0 disarms. */
void hostile_watchdog(unsigned seconds, const char *what);

/* For a fork child: SIGALRM back to SIG_DFL (the parent's watchdog handler is
 * inherited), then alarm(seconds), so a hang in the child ends it by SIGALRM. */
void hostile_child_alarm(unsigned seconds);

/* Waits for `pid` at most timeout_ms. On time: stores the status, returns true.
 * Otherwise SIGKILLs and reaps it and returns false (a hang). */
bool hostile_wait(pid_t pid, int *status, unsigned timeout_ms);

/* "exit 0", "killed by signal 15 (Terminated)", ... into buf. */
const char *hostile_describe_status(int status, char *buf, size_t len);

/* Allocates, fills, checks and frees `count` blocks of mixed sizes (16 B .. 1 MiB,
 * some grown by realloc) on the calling thread. Returns 0, or 1 on an allocation
 * failure or a block whose contents changed. Not async-signal-safe. */
int hostile_churn(unsigned seed, int count);

/* Starts n threads that malloc/free/realloc mixed sizes (some > 256 KiB) until
 * hostile_churn_stop(), which joins them and returns their operation count. */
void hostile_churn_start(unsigned n_threads);
unsigned long hostile_churn_stop(void);

/* Entries of /proc/self/task (the process's threads), or -1. */
int hostile_count_tasks(void);

/* The process's resident set (VmRSS of /proc/self/status) in bytes. */
uint64_t hostile_vm_rss_bytes(void);

/* Sleeps ms milliseconds (restarted after signals). */
void hostile_sleep_ms(long ms);

/* CLOCK_MONOTONIC in milliseconds. */
long long hostile_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
