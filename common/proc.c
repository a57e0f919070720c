#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/xalloc.h"

extern char **environ;

#define PROC_OUTPUT_MAX (1 << 20)

static void buf_read(int fd, struct pk_buf *b, int *open_fds)
{
	char chunk[4096];
	ssize_t n = read(fd, chunk, sizeof(chunk));

	if (n <= 0) {
		if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			(*open_fds)--;
			close(fd);
		}
		return;
	}
	if (b->len + (size_t)n > PROC_OUTPUT_MAX) {
		return; /* keep draining, drop the excess */
	}
	pk_buf_append(b, chunk, (size_t)n);
}

int pk_proc_run(const char *const *argv, int timeout_ms, struct pk_proc_result *ret,
		struct pk_error *err)
{
	posix_spawn_file_actions_t fa;
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	struct pk_buf out = PK_BUF_INIT, errb = PK_BUF_INIT;
	long long deadline = timeout_ms > 0 ? (long long)pk_clock_monotonic_ms() + timeout_ms : 0;
	int open_fds = 2, status = 0, rc, timed_out = 0;
	pid_t pid;

	if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
		int e = errno;
		if (out_pipe[0] >= 0) {
			close(out_pipe[0]);
			close(out_pipe[1]);
		}
		return pk_error_set(err, PK_E_INTERNAL, e, "cannot create pipes: %s", strerror(e));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (rc != 0) {
		close(out_pipe[0]);
		close(err_pipe[0]);
		return pk_error_set(err, rc == ENOENT ? PK_E_UNAVAILABLE : PK_E_INTERNAL, rc,
				    "cannot run '%s': %s", argv[0], strerror(rc));
	}
	{
		int fds[2] = { out_pipe[0], err_pipe[0] };
		bool open_out = true, open_err = true;
		while (open_out || open_err) {
			struct pollfd p[2];
			int np = 0, wait_ms = -1, before;
			if (open_out) {
				p[np++] = (struct pollfd){ fds[0], POLLIN, 0 };
			}
			if (open_err) {
				p[np++] = (struct pollfd){ fds[1], POLLIN, 0 };
			}
			if (deadline) {
				long long left = deadline - (long long)pk_clock_monotonic_ms();
				if (left <= 0) {
					kill(pid, SIGKILL);
					timed_out = 1;
					break;
				}
				wait_ms = (int)left;
			}
			if (poll(p, (nfds_t)np, wait_ms) < 0 && errno != EINTR) {
				break;
			}
			for (int i = 0; i < np; i++) {
				if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
					continue;
				}
				before = open_fds;
				buf_read(p[i].fd, p[i].fd == fds[0] ? &out : &errb, &open_fds);
				if (open_fds != before) {
					if (p[i].fd == fds[0]) {
						open_out = false;
					} else {
						open_err = false;
					}
				}
			}
		}
		if (open_out) {
			close(fds[0]);
		}
		if (open_err) {
			close(fds[1]);
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (timed_out) {
		pk_buf_release(&out);
		pk_buf_release(&errb);
		return pk_error_set(err, PK_E_TIMEOUT, ETIMEDOUT, "'%s' did not finish within %d ms",
				    argv[0], timeout_ms);
	}
	ret->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	ret->out = pk_buf_steal(&out, NULL);
	ret->err = pk_buf_steal(&errb, NULL);
	return 0;
}

void pk_proc_result_release(struct pk_proc_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

int pk_proc_check(const char *const *argv, int timeout_ms, enum pk_errc code_on_failure,
		  char **ret_out, struct pk_error *err)
{
	struct pk_proc_result res;
	int r = pk_proc_run(argv, timeout_ms, &res, err);

	if (r < 0) {
		return r;
	}
	if (res.exit_status != 0) {
		/* The last non-empty stderr line is what the tool had to say. */
		char *msg = res.err;
		size_t n = strlen(msg);
		while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
			msg[--n] = '\0';
		}
		char *last = strrchr(msg, '\n');
		r = pk_error_set(err, code_on_failure ? code_on_failure : PK_E_INTERNAL, EIO,
				 "%s failed (exit %d): %s", argv[0], res.exit_status,
				 last ? last + 1 : msg);
		pk_proc_result_release(&res);
		return r;
	}
	if (ret_out) {
		*ret_out = res.out;
		res.out = NULL;
	}
	pk_proc_result_release(&res);
	return 0;
}
