// SPDX-License-Identifier: GPL-2.0
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int open_unix(const char *path, int *fd, struct km_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s, e;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		km_err_set(err,
			   "--serial unix:%s: the socket path is longer "
			   "than %zu bytes",
			   path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		km_err_set(err,
			   "--serial unix:%s: cannot connect (%s); start "
			   "the listener first",
			   path, strerror(e));
		if (s >= 0)
			close(s);
		return -e;
	}
	*fd = s;
	return 0;
}

int km_console_open(const char *spec, int *fd, struct km_err *err)
{
	int e;

	if (!strcmp(spec, "stdout")) {
		*fd = STDOUT_FILENO;
		return 0;
	}
	if (!strcmp(spec, "none")) {
		*fd = -1;
		return 0;
	}
	if (!strncmp(spec, "unix:", 5))
		return open_unix(spec + 5, fd, err);
	if (strncmp(spec, "file:", 5)) {
		km_err_set(err,
			   "--serial '%s' is not understood; use stdout, "
			   "file:PATH, unix:PATH or none",
			   spec);
		return -EINVAL;
	}
	*fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0) {
		e = errno;
		km_err_set(err, "--serial %s: cannot open the file (%s)", spec,
			   strerror(e));
		return -e;
	}
	return 0;
}

void km_console_close(int fd)
{
	if (fd > STDERR_FILENO)
		close(fd);
}
