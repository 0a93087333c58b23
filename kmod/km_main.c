// SPDX-License-Identifier: GPL-2.0
/*
 * kemari.ko: module load and unload.
 *
 * Load order: check the kernel, then create /dev/kemari last, so userspace
 * never sees a device whose module is about to refuse to load. Unload
 * undoes it in reverse.
 */
#include "km_int.h"

#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/utsname.h>

#include <uapi/linux/kemari.h>

/*
 * For tests of the refusal path only: check this release string instead
 * of the running kernel's. Not writable after load.
 */
static char *assume_release;
module_param(assume_release, charp, 0);
MODULE_PARM_DESC(assume_release, "test only: kernel release to check instead");

static int __init km_init(void)
{
	const char *release = assume_release ?: init_utsname()->release;
	int ret;

	ret = km__kernel_check(release);
	if (ret)
		return ret;
	ret = km__dev_register();
	if (ret) {
		pr_err("cannot register /dev/%s: error %d\n",
		       KEMARI_DEVICE_NAME, ret);
		return ret;
	}
	pr_info("/dev/%s ready (ABI %u, kernel %s)\n", KEMARI_DEVICE_NAME,
		KEMARI_ABI_VERSION, release);
	return 0;
}

static void __exit km_exit(void)
{
	km__dev_unregister();
	pr_info("unloaded\n");
}

module_init(km_init);
module_exit(km_exit);

MODULE_DESCRIPTION("kemari: sync gate and fault containment for lockstep VMs");
MODULE_AUTHOR("The kemari authors");
MODULE_LICENSE("GPL");
MODULE_VERSION("0.1.0");
