/* SPDX-License-Identifier: GPL-2.0 */
/* Where the UART's output goes: stdout, a file, or a unix socket. */
#ifndef KEMARI_VMM_CONSOLE_H
#define KEMARI_VMM_CONSOLE_H

#include "err.h"

/*
 * km_console_open() - "stdout", "file:PATH" (created or truncated),
 * "unix:PATH" (connect to a listening stream socket) or "none". Returns an
 * fd (-1 for none, with 0 returned in @fd's place) or -errno with @err.
 */
int km_console_open(const char *spec, int *fd, struct km_err *err);

/* km_console_close() - close @fd unless it is stdout or -1. */
void km_console_close(int fd);

#endif
