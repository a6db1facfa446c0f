/* tests/process/notify_test.c - sd_notify from a service under the shim, read
 * from a real unix datagram NOTIFY_SOCKET that this test binds.
 *   notify_test sequence    READY=1 (notify.ready = init), then after SIGTERM
 *                           STOPPING=1, EXTEND_TIMEOUT_USEC within the budget,
 *                           STATUS=draining progress, and a final STATUS at
 *                           exit, in that order, every datagram from the
 *                           service's own pid (a forked child stays silent);
 *   notify_test unset       no NOTIFY_SOCKET: the service runs and exits 0 with
 *                           nothing on stderr;
 *   notify_test nowhere     NOTIFY_SOCKET names no socket: the same.
 * The service is this program run as `notify_test --service` with LD_PRELOAD
 * inherited from the test's environment. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)
#define CHECK(condition, ...) do { if (!(condition)) FAIL(__VA_ARGS__); } while (0)

/* ---- the service ------------------------------------------------------------ */

static volatile sig_atomic_t stopping;
static void on_sigterm(int signo) { (void)signo; stopping = 1; }

static int run_service(void)
{
	struct sigaction action = { .sa_handler = on_sigterm };
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, NULL);
	/* A forked child inherits NOTIFY_SOCKET and LD_PRELOAD: it must stay silent. */
	pid_t child = fork();
	if (child == 0) {
		void *block = malloc(8 << 20);
		memset(block, 1, 8 << 20);
		free(block);
		_exit(0);
	}
	waitpid(child, NULL, 0);
	enum { BLOCKS = 64 };
	void *blocks[BLOCKS];
	for (int i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc(1 << 20);
		memset(blocks[i], i, 1 << 20);
	}
	for (int i = 0; i < BLOCKS; i++)
		free(blocks[i]);
	write(STDOUT_FILENO, "up\n", 3);
	while (!stopping)
		pause();
	struct timespec drain = { 0, 300 * 1000 * 1000 };   /* the service's own drain */
	nanosleep(&drain, NULL);
	return 0;
}

/* ---- the test --------------------------------------------------------------- */

struct datagram {
	char  text[512];
	pid_t sender;
};

static int bind_socket(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0, "socket: %s", strerror(errno));
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", path);
	unlink(path);
	CHECK(bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0, "bind %s: %s", path, strerror(errno));
	int on = 1;
	CHECK(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0, "SO_PASSCRED");
	return fd;
}

/* Receives one datagram within timeout_ms; false on timeout. */
static bool receive(int fd, int timeout_ms, struct datagram *out)
{
	struct pollfd poll_fd = { .fd = fd, .events = POLLIN };
	if (poll(&poll_fd, 1, timeout_ms) <= 0)
		return false;
	char control[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { .iov_base = out->text, .iov_len = sizeof(out->text) - 1 };
	struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
				  .msg_controllen = sizeof(control) };
	ssize_t got = recvmsg(fd, &message, 0);
	CHECK(got >= 0, "recvmsg: %s", strerror(errno));
	out->text[got] = '\0';
	out->sender = 0;
	for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header))
		if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS)
			out->sender = ((struct ucred *)CMSG_DATA(header))->pid;
	return true;
}

/* Starts the service with NOTIFY_SOCKET = socket_path (NULL: unset); its stderr
 * goes to a pipe (*stderr_fd), its stdout too (*stdout_fd). */
static pid_t start_service(const char *self, const char *socket_path, int *stdout_fd, int *stderr_fd)
{
	int out_pipe[2], err_pipe[2];
	CHECK(pipe(out_pipe) == 0 && pipe(err_pipe) == 0, "pipe");
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		if (socket_path != NULL)
			setenv("NOTIFY_SOCKET", socket_path, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		char pid_text[32];
		snprintf(pid_text, sizeof(pid_text), "%d", (int)getpid());
		setenv("SYSTEMD_EXEC_PID", pid_text, 1);   /* exec keeps the pid */
		setenv("TCM_NOTIFY_READY", "init", 1);
		execl(self, self, "--service", (char *)NULL);
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	*stdout_fd = out_pipe[0];
	*stderr_fd = err_pipe[0];
	return pid;
}

static void wait_until_up(int stdout_fd)
{
	char line[8];
	CHECK(read(stdout_fd, line, 3) == 3 && memcmp(line, "up\n", 3) == 0, "the service did not start");
}

static int finish_service(pid_t pid, int stderr_fd, char *stderr_text, size_t size)
{
	int status;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	ssize_t got = read(stderr_fd, stderr_text, size - 1);
	stderr_text[got > 0 ? got : 0] = '\0';
	return status;
}

static void test_sequence(const char *self)
{
	char socket_path[64];
	snprintf(socket_path, sizeof(socket_path), "/tmp/tcm-notify-test-%d.sock", (int)getpid());
	int fd = bind_socket(socket_path);
	int stdout_fd, stderr_fd;
	pid_t pid = start_service(self, socket_path, &stdout_fd, &stderr_fd);
	wait_until_up(stdout_fd);
	struct datagram first;
	CHECK(receive(fd, 10000, &first), "no READY=1 before SIGTERM");
	CHECK(strcmp(first.text, "READY=1") == 0, "first message '%s', expected READY=1", first.text);
	kill(pid, SIGTERM);

	enum { MAX = 200 };
	static struct datagram got[MAX];
	int count = 0;
	while (count < MAX && receive(fd, 3000, &got[count]))
		count++;
	char stderr_text[4096];
	int status = finish_service(pid, stderr_fd, stderr_text, sizeof(stderr_text));
	while (count < MAX && receive(fd, 100, &got[count]))
		count++;
	unlink(socket_path);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "service status %#x; stderr: %s", status, stderr_text);

	int stopping_at = -1, extend_at = -1, draining_at = -1, exiting_at = -1;
	CHECK(first.sender == pid, "READY=1 sent by pid %d, not the service %d", (int)first.sender, (int)pid);
	for (int i = 0; i < count; i++) {
		CHECK(got[i].sender == pid, "message '%s' from pid %d, not the service %d", got[i].text,
		      (int)got[i].sender, (int)pid);
		if (strcmp(got[i].text, "STOPPING=1") == 0 && stopping_at < 0)
			stopping_at = i;
		const char *extend = "EXTEND_TIMEOUT_USEC=";
		if (strncmp(got[i].text, extend, strlen(extend)) == 0 && extend_at < 0) {
			extend_at = i;
			long long usec = atoll(got[i].text + strlen(extend));
			CHECK(usec > 0 && usec <= 1000 * 1000, "EXTEND_TIMEOUT_USEC=%lld outside the 1 s budget", usec);
		}
		const char *draining = "STATUS=draining: released ";
		if (strncmp(got[i].text, draining, strlen(draining)) == 0 && draining_at < 0)
			draining_at = i;
		const char *exiting = "STATUS=exiting: ";
		if (strncmp(got[i].text, exiting, strlen(exiting)) == 0)
			exiting_at = i;
	}
	CHECK(stopping_at >= 0, "no STOPPING=1 among %d messages", count);
	CHECK(extend_at > stopping_at, "EXTEND_TIMEOUT_USEC missing or before STOPPING=1");
	CHECK(draining_at > stopping_at, "no STATUS=draining progress after STOPPING=1");
	CHECK(exiting_at == count - 1, "the last message is not the final STATUS=exiting (got '%s')",
	      count > 0 ? got[count - 1].text : "");
	printf("sequence ok: READY=1, then %d messages from pid %d: STOPPING=1 (#%d), EXTEND (#%d), "
	       "draining (#%d), final '%s'\n", count, (int)pid, stopping_at, extend_at, draining_at, got[count - 1].text);
}

static void test_silent(const char *self, const char *socket_path)
{
	int stdout_fd, stderr_fd;
	pid_t pid = start_service(self, socket_path, &stdout_fd, &stderr_fd);
	wait_until_up(stdout_fd);
	kill(pid, SIGTERM);
	char stderr_text[4096];
	int status = finish_service(pid, stderr_fd, stderr_text, sizeof(stderr_text));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "service status %#x", status);
	CHECK(stderr_text[0] == '\0', "the service printed on stderr: %s", stderr_text);
	printf("NOTIFY_SOCKET=%s: exit 0, nothing on stderr\n", socket_path ? socket_path : "(unset)");
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--service") == 0)
		return run_service();
	if (argc != 2) {
		fprintf(stderr, "usage: %s sequence|unset|nowhere\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "sequence") == 0)
		test_sequence(argv[0]);
	else if (strcmp(argv[1], "unset") == 0)
		test_silent(argv[0], NULL);
	else if (strcmp(argv[1], "nowhere") == 0)
		test_silent(argv[0], "/nonexistent/tcm-notify.sock");
	else
		FAIL("unknown mode %s", argv[1]);
	return 0;
}
