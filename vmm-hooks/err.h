/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One-sentence error messages for the VMM: library code fills a km_err and
 * returns -errno; the caller (kemari-vmm's main, or a test) decides whether
 * and where to print it.
 */
#ifndef KEMARI_VMM_ERR_H
#define KEMARI_VMM_ERR_H

#include <stddef.h>

struct km_err {
	char msg[512];
};

/*
 * km_err_set() - format a message into @err (which may be NULL: then the
 * message is dropped). The first message set wins, so the root cause is
 * not overwritten by the failures it causes further up.
 */
void km_err_set(struct km_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
