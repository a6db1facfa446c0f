// tests/hostile/runtime_cxx.cpp - a C++17 service under LD_PRELOAD=libtcm.so:
// 4 std::thread workers allocate with new/delete, std::string and std::vector
// until told to stop; a sigaction SIGTERM handler sets an atomic flag; the
// main thread starts /bin/true with posix_spawn and with fork+execv (3 each,
// while the workers run), prints "READY <pid>" and waits (at most 30 s) for the
// SIGTERM that runtimes.sh sends; then it stops and joins the workers, checks
// their results and exits 0 after printing "HANDLER RAN 1". It first proves it
// runs under tcm (hostile.h: malloc resolves to libtcm.so, tcm_malloc exists).
#include "hostile.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char **environ;

namespace {

std::atomic<int> term_count{0};
std::atomic<bool> stop_workers{false};
thread_local char *volatile scratch_sink;   // per thread; keeps the compiler from eliding new[]/delete[]

void on_sigterm(int)
{
	term_count.fetch_add(1);
}

// Returns false if a container's contents changed under it.
bool work(unsigned seed, unsigned long *operations)
{
	std::vector<std::unique_ptr<std::string>> strings;
	std::vector<std::vector<int>> vectors;
	unsigned long count = 0;
	while (!stop_workers.load(std::memory_order_relaxed)) {
		seed = seed * 1103515245u + 12345u;
		size_t length = 1 + (seed >> 8) % ((seed & 15) == 0 ? 300000 : 500);
		strings.push_back(std::make_unique<std::string>(length, static_cast<char>('a' + length % 26)));
		vectors.emplace_back(static_cast<size_t>((seed >> 12) % 2000), static_cast<int>(length));
		if (strings.size() > 64) {
			const std::string &oldest = *strings.front();
			if (oldest.find_first_not_of(oldest[0]) != std::string::npos)
				return false;
			strings.erase(strings.begin());
			const std::vector<int> &oldest_vector = vectors.front();
			for (int value : oldest_vector)
				if (value != oldest_vector.front())   // not reached when it is empty
					return false;
			vectors.erase(vectors.begin());
		}
		scratch_sink = new char[1 + (seed >> 4) % 4096];
		scratch_sink[0] = 1;
		delete[] scratch_sink;
		count++;
	}
	*operations = count;
	return true;
}

int run_true(bool use_spawn)
{
	char true_path[] = "/bin/true";
	char *argv[] = { true_path, nullptr };
	pid_t pid;
	if (use_spawn) {
		int err = posix_spawn(&pid, true_path, nullptr, nullptr, argv, environ);
		if (err != 0)
			HOSTILE_FAIL("posix_spawn(/bin/true): %s", std::strerror(err));
	} else {
		pid = fork();
		if (pid == 0) {
			execv(true_path, argv);
			_exit(127);
		}
		if (pid < 0)
			HOSTILE_FAIL("fork: %s", std::strerror(errno));
	}
	int status = 0;
	if (!hostile_wait(pid, &status, 10000))
		HOSTILE_FAIL("/bin/true (%s) did not exit within 10 s", use_spawn ? "posix_spawn" : "fork+exec");
	return status;
}

}  // namespace

int main()
{
	hostile_require_tcm("runtime_cxx");
	hostile_watchdog(50, "runtime_cxx: did not finish in 50 s");
	struct sigaction action = {};
	action.sa_handler = on_sigterm;
	sigemptyset(&action.sa_mask);
	HOSTILE_CHECK(sigaction(SIGTERM, &action, nullptr) == 0, "sigaction: %s", std::strerror(errno));
	std::vector<std::thread> workers;
	std::vector<unsigned long> operations(4, 0);
	std::atomic<int> broken{0};
	for (unsigned i = 0; i < 4; i++)
		workers.emplace_back([i, &operations, &broken] {
			if (!work(i * 7919u + 1u, &operations[i]))
				broken.fetch_add(1);
		});
	for (int i = 0; i < 6; i++) {
		int status = run_true(i % 2 == 0);
		HOSTILE_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "/bin/true ended with status %#x", status);
	}
	std::printf("READY %d\n", static_cast<int>(getpid()));
	std::fflush(stdout);
	long long deadline = hostile_now_ms() + 30000;
	while (term_count.load() == 0 && hostile_now_ms() < deadline)
		hostile_sleep_ms(10);
	stop_workers.store(true);
	for (std::thread &worker : workers)
		worker.join();
	HOSTILE_CHECK(term_count.load() == 1, "the SIGTERM from the test driver ran the handler %d times (30 s wait)",
		      term_count.load());
	HOSTILE_CHECK(broken.load() == 0, "a worker's container contents changed");
	for (unsigned long count : operations)
		HOSTILE_CHECK(count > 0, "a worker made no allocations");
	std::printf("HANDLER RAN %d\n", term_count.load());
	return 0;
}
