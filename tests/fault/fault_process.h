/* tests/fault/fault_process.h - what the whole-process fault tests share (C and
 * C++): proof that libtcm.so serves malloc, printing that allocates nothing (the
 * programs print while the address space is exhausted), the RLIMIT_AS budget,
 * and running one case in a forked child that reports a line or dies.
 *
 * The programs run with LD_PRELOAD=libtcm.so and TCM_TESTING_EXPECT_LIB_NAME naming it;
 * some of them also run themselves without the preload, as glibc's reference. */
#ifndef TCM_TESTS_FAULT_FAULT_PROCESS_H
#define TCM_TESTS_FAULT_FAULT_PROCESS_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* tcm.h's function tcm_stats shares its name with its struct, which C++'s
 * -Wshadow reports; the header is right for C, which it is written for. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include "tcm.h"
#pragma GCC diagnostic pop

#define FAULT_MIB ((size_t)1 << 20)

/* printf to fd 2 through a stack buffer: no stdio buffer to allocate. */
static inline void __attribute__((format(printf, 1, 2))) fault_say(const char *format, ...)
{
	char line[512];
	va_list args;
	va_start(args, format);
	int length = vsnprintf(line, sizeof(line), format, args);
	va_end(args);
	if (length < 0)
		return;
	size_t n = (size_t)length < sizeof(line) ? (size_t)length : sizeof(line) - 1;
	for (size_t done = 0; done < n;) {
		ssize_t written = write(2, line + done, n - done);
		if (written <= 0)
			return;
		done += (size_t)written;
	}
}

/* The file that defines malloc, which must be the preloaded library. */
static inline bool fault_malloc_is_tcm(void)
{
	const char *lib = getenv("TCM_TESTING_EXPECT_LIB_NAME");
	if (lib == NULL || lib[0] == '\0')
		lib = "libtcm.so";
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) {
		fault_say("FAIL: cannot tell which library defines malloc\n");
		return false;
	}
	size_t n = strlen(info.dli_fname), m = strlen(lib);
	if (n < m || strcmp(info.dli_fname + n - m, lib) != 0 || (n > m && info.dli_fname[n - m - 1] != '/')) {
		fault_say("FAIL: malloc comes from %s, not %s: the preload did not take\n", info.dli_fname, lib);
		return false;
	}
	return true;
}

/* tcm's own view (tcm_stats, looked up at run time: the programs do not link
 * libtcm.so); false without tcm. */
static inline bool fault_tcm_stats(struct tcm_stats *out)
{
	void (*stats_of)(struct tcm_stats *) = (void (*)(struct tcm_stats *))dlsym(RTLD_DEFAULT, "tcm_stats");
	if (stats_of == NULL)
		return false;
	stats_of(out);
	return true;
}

/* Every byte tcm mapped is handed out, cached, free in its page heap, or
 * metadata; metadata is mapped in 4 MiB regions whose unused rests are at
 * most what it handed out, plus the current region. Memory a failure path
 * kept mapped but lost is none of these: prints the figures and returns
 * false when more than that is unaccounted. */
static inline bool fault_tcm_address_space_accounted(const char *when)
{
	struct tcm_stats stats;
	if (!fault_tcm_stats(&stats))
		return true;
	uint64_t heap = stats.allocated_bytes + stats.central_cached_bytes + stats.thread_cached_bytes +
			stats.page_heap_free_bytes + stats.page_heap_released_bytes;
	uint64_t known = heap + stats.metadata_bytes;
	uint64_t unaccounted = stats.mapped_bytes > known ? stats.mapped_bytes - known : 0;
	bool ok = unaccounted <= stats.metadata_bytes + 8 * FAULT_MIB;
	fault_say("%s %s: tcm maps %llu MiB: allocated %llu, central %llu, thread caches %llu, page heap free "
		  "%llu + released %llu, metadata %llu; unaccounted %llu MiB\n", ok ? "    " : "FAIL", when,
		  (unsigned long long)(stats.mapped_bytes / FAULT_MIB),
		  (unsigned long long)(stats.allocated_bytes / FAULT_MIB),
		  (unsigned long long)(stats.central_cached_bytes / FAULT_MIB),
		  (unsigned long long)(stats.thread_cached_bytes / FAULT_MIB),
		  (unsigned long long)(stats.page_heap_free_bytes / FAULT_MIB),
		  (unsigned long long)(stats.page_heap_released_bytes / FAULT_MIB),
		  (unsigned long long)(stats.metadata_bytes / FAULT_MIB),
		  (unsigned long long)(unaccounted / FAULT_MIB));
	return ok;
}

/* VmSize of this process from /proc/self/status (read without stdio). */
static inline size_t fault_vm_size_bytes(void)
{
	char text[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got <= 0)
		return 0;
	text[got] = '\0';
	const char *line = strstr(text, "VmSize:");
	return line != NULL ? (size_t)strtoull(line + 7, NULL, 10) * 1024 : 0;
}

/* Lowers RLIMIT_AS to the address space in use now plus headroom_bytes. */
static inline bool fault_limit_address_space(size_t headroom_bytes)
{
	size_t in_use = fault_vm_size_bytes();
	struct rlimit limit;
	if (in_use == 0 || getrlimit(RLIMIT_AS, &limit) != 0) {
		fault_say("FAIL: cannot read VmSize or RLIMIT_AS\n");
		return false;
	}
	limit.rlim_cur = in_use + headroom_bytes;
	if (setrlimit(RLIMIT_AS, &limit) != 0) {
		fault_say("FAIL: setrlimit(RLIMIT_AS, %zu): %s\n", in_use + headroom_bytes, strerror(errno));
		return false;
	}
	fault_say("RLIMIT_AS = %zu MiB in use + %zu MiB\n", in_use / FAULT_MIB, headroom_bytes / FAULT_MIB);
	return true;
}

/* Runs body(arg, line, size) in a forked child with default signal actions and
 * a 10 s alarm; the child's line (what happened) is copied to out, or a
 * description of how the child died. Returns false when it died. */
typedef void (*fault_case_body)(const void *arg, char *line, size_t line_bytes);

static inline bool fault_run_in_child(fault_case_body body, const void *arg, char *out, size_t out_bytes)
{
	int fds[2];
	if (pipe(fds) != 0) {
		snprintf(out, out_bytes, "pipe: %s", strerror(errno));
		return false;
	}
	pid_t pid = fork();
	if (pid == 0) {
		static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE };
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], SIG_DFL);
		close(fds[0]);
		alarm(10);
		char line[256] = "";
		body(arg, line, sizeof(line));
		ssize_t written = write(fds[1], line, strlen(line));
		_exit(written < 0 ? 3 : 0);
	}
	close(fds[1]);
	size_t got = 0;
	ssize_t n;
	while (pid > 0 && got + 1 < out_bytes && (n = read(fds[0], out + got, out_bytes - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fds[0]);
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		snprintf(out, out_bytes, "fork/waitpid failed");
		return false;
	}
	if (WIFSIGNALED(status)) {
		snprintf(out, out_bytes, "CRASH: killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WTERMSIG(status) == SIGALRM ? ": hung" : "");
		return false;
	}
	if (WEXITSTATUS(status) != 0) {
		snprintf(out, out_bytes, "CRASH: exited with status %d", WEXITSTATUS(status));
		return false;
	}
	return true;
}

/* Runs this program again without the preload, with argument mode, and
 * returns its standard output (malloc'd; NULL on failure): glibc's answers. */
static inline char *fault_run_reference(const char *mode)
{
	extern char **environ;
	static char *clean_env[256];
	size_t n = 0;
	for (char **var = environ; *var != NULL && n + 1 < sizeof(clean_env) / sizeof(clean_env[0]); var++)
		if (strncmp(*var, "LD_PRELOAD=", 11) != 0 && strncmp(*var, "TCM_", 4) != 0)
			clean_env[n++] = *var;
	clean_env[n] = NULL;
	int fds[2];
	if (pipe(fds) != 0)
		return NULL;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		char self[] = "/proc/self/exe";
		char *argv[] = { self, (char *)mode, NULL };
		execve(self, argv, clean_env);
		_exit(127);
	}
	close(fds[1]);
	size_t size = 0, capacity = 65536;
	char *text = (char *)malloc(capacity);
	ssize_t got;
	while (text != NULL && (got = read(fds[0], text + size, capacity - 1 - size)) > 0)
		size += (size_t)got;
	close(fds[0]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (text == NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fault_say("FAIL: the reference run without preload ended with status %#x\n", status);
		free(text);
		return NULL;
	}
	text[size] = '\0';
	return text;
}

#endif
