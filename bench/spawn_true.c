/* bench/spawn_true.c - start-up cost driver: posix_spawn + waitpid of a program (default
 * /bin/true) count times in a tight loop, with LD_PRELOAD set for the children only, so the
 * driver itself always runs on glibc and measures the same way for every allocator.
 * Usage: spawn_true count preload|- [program]   ("-": children get no LD_PRELOAD)
 * Prints one result line: seconds for all spawns, ops = count, maxrss_kib = the largest child's
 * peak RSS (RUSAGE_CHILDREN). Fails if any child does not exit 0. */
#define _GNU_SOURCE
#include "bench.h"

#include <spawn.h>
#include <sys/wait.h>

#define WORKLOAD "startup"
#define ENV_MAX 512

extern char **environ;

int main(int argc, char **argv)
{
	unsigned long long count = argc > 1 ? bench_arg_count(argv[1]) : 0;
	if (count == 0 || argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s count preload|- [program]\n", argv[0]);
		return 2;
	}
	const char *preload = argv[2];
	const char *program = argc > 3 ? argv[3] : "/bin/true";

	/* The children's environment: ours minus any LD_PRELOAD, plus the one under test. */
	static char *envp[ENV_MAX];
	static char preload_var[4096];
	size_t n = 0;
	for (char **e = environ; *e != NULL && n < ENV_MAX - 2; e++)
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
			envp[n++] = *e;
	if (strcmp(preload, "-") != 0) {
		snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", preload);
		envp[n++] = preload_var;
	}
	envp[n] = NULL;
	char *child_argv[] = { (char *)program, NULL };

	double t0 = bench_now_s();
	for (unsigned long long i = 0; i < count; i++) {
		pid_t pid;
		int status;
		int err = posix_spawn(&pid, program, NULL, NULL, child_argv, envp);
		if (err != 0) {
			fprintf(stderr, "FAIL workload=%s posix_spawn %s: %s\n", WORKLOAD, program,
				strerror(err));
			return 1;
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "FAIL workload=%s child %s (LD_PRELOAD=%s) status 0x%x\n",
				WORKLOAD, program, preload, status);
			return 1;
		}
	}
	double t1 = bench_now_s();

	char extra[4200];
	snprintf(extra, sizeof extra, "preload=%s", preload);
	bench_result(WORKLOAD, t1 - t0, count, bench_maxrss_kib(RUSAGE_CHILDREN), extra);
	return 0;
}
