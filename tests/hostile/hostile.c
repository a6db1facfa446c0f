/* tests/hostile/hostile.c - helpers shared by the hostile-caller tests (see
 * hostile.h): the tcm check, the hang detectors, the allocating threads. */
#define _GNU_SOURCE
#include "hostile.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIB ((size_t)1024)

void hostile_print(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
	fflush(stderr);
}

bool hostile_is_baseline(void)
{
	const char *baseline = getenv("HOSTILE_BASELINE");
	return baseline != NULL && strcmp(baseline, "1") == 0;
}

static const char *file_name_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash != NULL ? slash + 1 : path;
}

bool hostile_require_tcm(const char *test_name)
{
	const char *expected = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	if (expected == NULL || expected[0] == '\0')
		expected = "libtcm.so";
	Dl_info info;
	void *malloc_address = dlsym(RTLD_DEFAULT, "malloc");
	const char *path = malloc_address != NULL && dladdr(malloc_address, &info) != 0 &&
			   info.dli_fname != NULL ? info.dli_fname : "(unknown)";
	bool has_tcm_api = dlsym(RTLD_DEFAULT, "tcm_malloc") != NULL;
	bool is_tcm = has_tcm_api && strcmp(file_name_of(path), expected) == 0;
	if (hostile_is_baseline()) {
		HOSTILE_CHECK(!has_tcm_api, "%s: HOSTILE_BASELINE=1 but tcm is loaded (malloc from %s)",
			      test_name, path);
		hostile_print("%s: baseline run, malloc from %s (no tcm)", test_name, path);
		return false;
	}
	HOSTILE_CHECK(is_tcm, "%s: not running under tcm: malloc resolves to %s (expected %s), tcm_malloc %s",
		      test_name, path, expected, has_tcm_api ? "found" : "missing");
	hostile_print("%s: malloc served by %s", test_name, path);
	return true;
}

/* ---- hang detectors ------------------------------------------------------ */

static const char *volatile watchdog_what = "";

static void write_all(const char *text)
{
	size_t len = strlen(text);
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, text, len);
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

static void on_watchdog_alarm(int signo)
{
	(void)signo;
	write_all("FAIL (hang): ");
	write_all(watchdog_what);
	write_all("\n");
	_exit(1);
}

void hostile_watchdog(unsigned seconds, const char *what)
{
	watchdog_what = what;
	if (seconds > 0) {
		struct sigaction action = { .sa_handler = on_watchdog_alarm };
		sigemptyset(&action.sa_mask);
		sigaction(SIGALRM, &action, NULL);
	}
	alarm(seconds);
}

void hostile_child_alarm(unsigned seconds)
{
	struct sigaction default_action = { .sa_handler = SIG_DFL };
	sigemptyset(&default_action.sa_mask);
	sigaction(SIGALRM, &default_action, NULL);
	alarm(seconds);
}

bool hostile_wait(pid_t pid, int *status, unsigned timeout_ms)
{
	long long deadline = hostile_now_ms() + timeout_ms;
	for (;;) {
		pid_t got = waitpid(pid, status, WNOHANG);
		if (got == pid)
			return true;
		if (got < 0 && errno != EINTR)
			HOSTILE_FAIL("waitpid(%d): %s", (int)pid, strerror(errno));
		if (hostile_now_ms() >= deadline)
			break;
		hostile_sleep_ms(1);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return false;
}

const char *hostile_describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "status %#x", status);
	return buf;
}

void hostile_sleep_ms(long ms)
{
	struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
		;
}

long long hostile_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int hostile_count_tasks(void)
{
	DIR *dir = opendir("/proc/self/task");
	if (dir == NULL)
		return -1;
	int count = 0;
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL)
		if (entry->d_name[0] != '.')
			count++;
	closedir(dir);
	return count;
}

/* ---- allocation churn ---------------------------------------------------- */

static unsigned next_random(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return *seed >> 8;
}

/* Mostly small blocks, one in 16 between 256 KiB and 1 MiB (a span of its own). */
static size_t pick_size(unsigned *seed)
{
	unsigned r = next_random(seed);
	if (r % 16 == 0)
		return 256 * KIB + next_random(seed) % (768 * KIB);
	return 1 + next_random(seed) % (r % 4 == 0 ? 32 * KIB : 2 * KIB);
}

/* Writes the first and last 64 bytes: enough to see a block handed out twice,
 * cheap enough for megabyte blocks. */
static void mark(unsigned char *p, size_t len, unsigned char value)
{
	size_t edge = len < 64 ? len : 64;
	memset(p, value, edge);
	memset(p + len - edge, value, edge);
}

static bool is_marked(const unsigned char *p, size_t len, unsigned char value)
{
	size_t edge = len < 64 ? len : 64;
	for (size_t i = 0; i < edge; i++)
		if (p[i] != value || p[len - edge + i] != value)
			return false;
	return true;
}

#define CHURN_SLOTS 64

int hostile_churn(unsigned seed, int count)
{
	unsigned char *ring[CHURN_SLOTS] = { 0 };
	size_t len[CHURN_SLOTS] = { 0 };
	int bad = 0;
	for (int i = 0; i < count && !bad; i++) {
		unsigned slot = next_random(&seed) % CHURN_SLOTS;
		unsigned char value = (unsigned char)(slot + 1);
		if (ring[slot] != NULL && !is_marked(ring[slot], len[slot], value)) {
			bad = 1;
			break;
		}
		size_t n = pick_size(&seed);
		if (ring[slot] != NULL && next_random(&seed) % 4 == 0) {
			unsigned char *grown = realloc(ring[slot], n);
			if (grown == NULL) {
				bad = 1;
				break;
			}
			ring[slot] = grown;
		} else {
			free(ring[slot]);
			ring[slot] = malloc(n);
			if (ring[slot] == NULL) {
				bad = 1;
				break;
			}
		}
		len[slot] = n;
		mark(ring[slot], n, value);
	}
	for (unsigned slot = 0; slot < CHURN_SLOTS; slot++) {
		if (ring[slot] != NULL && !is_marked(ring[slot], len[slot], (unsigned char)(slot + 1)))
			bad = 1;
		free(ring[slot]);
	}
	return bad;
}

#define CHURN_MAX_THREADS 16

static pthread_t churn_threads[CHURN_MAX_THREADS];
static unsigned churn_thread_count;
static atomic_bool churn_stop;
static atomic_ulong churn_ops;

static void *churn_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned long rounds = 0;
	while (!atomic_load_explicit(&churn_stop, memory_order_relaxed)) {
		if (hostile_churn(seed + (unsigned)rounds, 256) != 0) {
			hostile_print("FAIL: churn thread: allocation failed or a block changed");
			_exit(1);
		}
		rounds++;
	}
	atomic_fetch_add(&churn_ops, rounds * 256);
	return NULL;
}

void hostile_churn_start(unsigned n_threads)
{
	atomic_store(&churn_stop, false);
	atomic_store(&churn_ops, 0);
	churn_thread_count = n_threads < CHURN_MAX_THREADS ? n_threads : CHURN_MAX_THREADS;
	for (unsigned i = 0; i < churn_thread_count; i++) {
		int err = pthread_create(&churn_threads[i], NULL, churn_main, (void *)(uintptr_t)(i * 7919 + 1));
		HOSTILE_CHECK(err == 0, "pthread_create: %s", strerror(err));
	}
}

unsigned long hostile_churn_stop(void)
{
	atomic_store(&churn_stop, true);
	for (unsigned i = 0; i < churn_thread_count; i++)
		pthread_join(churn_threads[i], NULL);
	churn_thread_count = 0;
	return atomic_load(&churn_ops);
}

uint64_t hostile_vm_rss_bytes(void)
{
	FILE *status = fopen("/proc/self/status", "r");
	HOSTILE_CHECK(status != NULL, "fopen /proc/self/status: %s", strerror(errno));
	char line[256];
	unsigned long kib = 0;
	while (fgets(line, sizeof(line), status) != NULL)
		if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
			break;
	fclose(status);
	return (uint64_t)kib * 1024;
}
