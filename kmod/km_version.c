// SPDX-License-Identifier: GPL-2.0
/*
 * The kernels this module agrees to run on.
 *
 * The sync gate hooks kvm_arch_vcpu_ioctl_run() and kvm_sigset_deactivate()
 * and relies on how 6.1 completes a PIO exit (complete_userspace_io on the
 * next KVM_RUN). Those are internals, not an ABI: on any other series the
 * module refuses to load rather than guess. vermagic already ties a build
 * to one kernel release; this table ties the source to kernel series that
 * were checked, which matters when DKMS rebuilds it for a new kernel.
 */
#include "km_int.h"

#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/printk.h>

struct km_series {
	unsigned int major;
	unsigned int minor;
};

static const struct km_series km_supported[] = {
	{ 6, 1 },
};

static bool series_supported(unsigned int major, unsigned int minor)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(km_supported); i++) {
		if (km_supported[i].major == major &&
		    km_supported[i].minor == minor)
			return true;
	}
	return false;
}

int km__kernel_check(const char *release)
{
	unsigned int major, minor;

	if (sscanf(release, "%u.%u", &major, &minor) != 2) {
		pr_err("cannot parse kernel release \"%s\": expected MAJOR.MINOR...\n",
		       release);
		return -EINVAL;
	}
	if (!series_supported(major, minor)) {
		pr_err("kernel %s is not supported: kemari hooks KVM internals checked only on 6.1.x; use a 6.1 kernel or port km_version.c and the gate\n",
		       release);
		return -EOPNOTSUPP;
	}
	return 0;
}
