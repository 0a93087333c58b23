// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's error paths that need no KVM: a missing or wrong device, and the
 * descriptions of fatal exits.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "kvm.h"

Test(kvm, a_missing_device_says_what_to_do)
{
	struct km_kvm kvm;
	struct km_err err = { 0 };

	cr_assert_eq(km_kvm_open(&kvm, "/nonexistent/kvm", &err), -ENOENT);
	cr_assert_eq(kvm.fd, -1);
	cr_assert(strstr(err.msg, "KVM is not available: /nonexistent/kvm "
				  "is missing; "),
		  "%s", err.msg);
	cr_assert(strstr(err.msg, "kvm_intel") || strstr(err.msg, "kvm_amd"),
		  "%s", err.msg);
	km_kvm_close(&kvm);
}

Test(kvm, a_device_that_is_not_kvm_is_named)
{
	struct km_kvm kvm;
	struct km_err err = { 0 };

	cr_assert_eq(km_kvm_open(&kvm, "/dev/null", &err), -ENOTTY);
	cr_assert(strstr(err.msg, "/dev/null is not a KVM device"), "%s",
		  err.msg);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(km_kvm_open(&kvm, "/etc/hostname", &err), -ENODEV);
	cr_assert(strstr(err.msg, "not a character device"), "%s", err.msg);
}

Test(kvm, cpu_probe_reads_a_vendor)
{
	struct km_kvm kvm;

	km_kvm_cpu_probe(&kvm);
	cr_assert(!strcmp(kvm.vendor, "GenuineIntel") ||
			  !strcmp(kvm.vendor, "AuthenticAMD") || kvm.vendor[0],
		  "vendor '%s'", kvm.vendor);
}

static const char *describe(struct kvm_run *run)
{
	static char buf[400];

	km_kvm_exit_describe(run, buf, sizeof(buf));
	return buf;
}

Test(kvm, fatal_exits_carry_their_detail)
{
	struct kvm_run run;

	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_FAIL_ENTRY;
	run.fail_entry.hardware_entry_failure_reason = 0x21;
	run.fail_entry.cpu = 3;
	cr_assert(strstr(describe(&run), "hardware entry failure reason "
					 "0x21 on host CPU 3"),
		  "%s", describe(&run));

	memset(&run, 0, sizeof(run));
	run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run.internal.ndata = 2;
	run.internal.data[0] = 0xabc;
	run.internal.data[1] = 0x1000;
	cr_assert(strstr(describe(&run), "suberror 1 (instruction emulation "
					 "failed), 2 data words: 0xabc "
					 "0x1000"),
		  "%s", describe(&run));

	run.exit_reason = KVM_EXIT_SHUTDOWN;
	cr_assert(strstr(describe(&run), "triple-faulted"));

	run.exit_reason = 200;
	cr_assert(strstr(describe(&run), "exit reason 200 (unknown)"), "%s",
		  describe(&run));
	cr_assert_str_eq(km_kvm_exit_name(KVM_EXIT_HLT), "HLT");
}
