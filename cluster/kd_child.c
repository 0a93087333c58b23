// SPDX-License-Identifier: GPL-2.0
/*
 * Child processes (fence-peer handler, backend commands), watched from the
 * loop through a pidfd so that no SIGCHLD handler is needed and no other
 * library's children are reaped by mistake.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kemarid_int.h"

struct kd_child {
	qb_loop_t *loop;
	pid_t pid;
	int pidfd;
	qb_loop_timer_handle timer;
	bool timed_out;
	kd_child_done_fn done;
	void *arg;
};

static void child_exec(char *const argv[], char *const env[])
{
	int fd = open("/dev/null", O_RDONLY);

	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		close(fd);
	}
	for (; env && *env; env++)
		putenv(*env);
	execv(argv[0], argv);
	_exit(127);
}

static void child_free(struct kd_child *c)
{
	qb_loop_poll_del(c->loop, c->pidfd);
	qb_loop_timer_del(c->loop, c->timer);
	close(c->pidfd);
	free(c);
}

static int32_t child_exited(int32_t fd, int32_t revents, void *data)
{
	struct kd_child *c = data;
	int status, code = -1;

	(void)fd;
	(void)revents;
	if (waitpid(c->pid, &status, WNOHANG) != c->pid)
		return 0;
	if (WIFEXITED(status) && !c->timed_out)
		code = WEXITSTATUS(status);
	if (c->done)
		c->done(c->arg, code);
	child_free(c);
	return 0;
}

static void child_timeout(void *data)
{
	struct kd_child *c = data;

	qb_log(LOG_WARNING, "%s: pid %d timed out, killing it", "child",
	       (int)c->pid);
	c->timed_out = true;
	kill(c->pid, SIGKILL);
}

int kd_child_spawn(qb_loop_t *loop, char *const argv[], char *const env[],
		   uint32_t timeout_ms, kd_child_done_fn done, void *arg,
		   struct kd_child **out)
{
	struct kd_child *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->done = done;
	c->arg = arg;
	c->pid = fork();
	if (c->pid < 0) {
		r = -errno;
		goto err_free;
	}
	if (c->pid == 0)
		child_exec(argv, env);
	c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (c->pidfd < 0) {
		r = -errno;
		goto err_kill;
	}
	r = qb_loop_poll_add(loop, QB_LOOP_MED, c->pidfd, POLLIN, c,
			     child_exited);
	if (r)
		goto err_close;
	r = qb_loop_timer_add(loop, QB_LOOP_MED,
			      (uint64_t)timeout_ms * QB_TIME_NS_IN_MSEC, c,
			      child_timeout, &c->timer);
	if (r)
		goto err_poll;
	if (out)
		*out = c;
	return 0;

err_poll:
	qb_loop_poll_del(loop, c->pidfd);
err_close:
	close(c->pidfd);
err_kill:
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
err_free:
	free(c);
	return r;
}

void kd_child_abandon(struct kd_child *c)
{
	if (!c)
		return;
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	child_free(c);
}
