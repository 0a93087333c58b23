// SPDX-License-Identifier: GPL-2.0
/*
 * kemari-gate on the host, where kemari.ko is never loaded: the absent and
 * unusable cases are reported as such and leak nothing.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "kemari_gate.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

Test(kmod_gate, absent_module_says_absent)
{
	struct km_gate *gate = NULL;
	char line[128];
	int fds = count_fds();
	int ret;

	ret = km_gate_open("/nonexistent/kemari", &gate);
	cr_assert_eq(ret, -ENOENT, "km_gate_open: %d", ret);
	cr_assert_null(gate);
	cr_assert_str_eq(km_gate_describe(NULL, ret, line, sizeof(line)),
			 "kernel gate: absent");
	cr_assert_eq(count_fds(), fds, "a descriptor leaked");
}

Test(kmod_gate, default_path_is_dev_kemari)
{
	struct km_gate *gate = NULL;
	char line[128];
	int ret = km_gate_open(NULL, &gate);

	/* This host cannot load modules (LAB-NOTES): /dev/kemari is absent. */
	cr_assert_eq(ret, -ENOENT, "km_gate_open(NULL): %d", ret);
	cr_assert_str_eq(KM_GATE_DEFAULT_PATH, "/dev/kemari");
	cr_assert_str_eq(km_gate_describe(NULL, ret, line, sizeof(line)),
			 "kernel gate: absent");
}

Test(kmod_gate, foreign_device_is_unusable_not_absent)
{
	struct km_gate *gate = NULL;
	char line[128];
	int fds = count_fds();
	int ret;

	ret = km_gate_open("/dev/null", &gate);
	cr_assert_eq(ret, -ENOTTY, "km_gate_open(/dev/null): %d", ret);
	cr_assert_null(gate);
	km_gate_describe(NULL, ret, line, sizeof(line));
	cr_assert(strstr(line, "kernel gate: unusable (") == line, "%s", line);
	cr_assert_eq(count_fds(), fds, "a descriptor leaked");
}

Test(kmod_gate, other_abi_and_errors_are_named)
{
	char line[128];

	km_gate_describe(NULL, -EPROTO, line, sizeof(line));
	cr_assert_str_eq(line, "kernel gate: unusable (another ABI version)");
	km_gate_describe(NULL, -EACCES, line, sizeof(line));
	cr_assert_str_eq(line, "kernel gate: unusable (Permission denied)");
	/* Truncation is safe. */
	km_gate_describe(NULL, -ENOENT, line, 8);
	cr_assert_str_eq(line, "kernel ");
}

Test(kmod_gate, close_of_nothing_is_fine)
{
	km_gate_close(NULL);
	km_gate_vm_close(NULL);
}
