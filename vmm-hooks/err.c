// SPDX-License-Identifier: GPL-2.0
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

void km_err_set(struct km_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->msg[0])
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}
