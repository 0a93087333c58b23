// SPDX-License-Identifier: GPL-2.0
/*
 * kemari.ko: module load and unload.
 *
 * Load order: check the kernel and the symbols, arm fault containment,
 * hook KVM, and create /dev/kemari last, so userspace never sees a device
 * whose module is about to refuse to load. Unload undoes it in reverse;
 * km__hooks_remove() returns only when no thread runs or sleeps in module
 * code (held vCPUs get EINTR). An agent file pins the module: while one is
 * open rmmod fails with EBUSY.
 */
#include "km_int.h"

#include <linux/init.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/utsname.h>

#include <uapi/linux/kemari.h>

/*
 * For tests of the refusal path only: check this release string instead
 * of the running kernel's. Not writable after load.
 */
static char *assume_release;
module_param(assume_release, charp, 0);
MODULE_PARM_DESC(assume_release, "test only: kernel release to check instead");

/* For tests of the missing-symbol refusal only: require this symbol too. */
static char *require_symbol;
module_param(require_symbol, charp, 0);
MODULE_PARM_DESC(require_symbol,
		 "test only: one more kernel symbol to require");

static int __init km_init(void)
{
	const char *release = assume_release ?: init_utsname()->release;
	int ret;

	ret = km__kernel_check(release);
	if (ret)
		return ret;
	ret = km__syms_init(require_symbol);
	if (ret)
		return ret;
	ret = km__fault_init();
	if (ret)
		return ret;
	ret = km__hooks_install();
	if (ret)
		goto err_fault;
	ret = km__dev_register();
	if (ret) {
		pr_err("cannot register /dev/%s: error %d\n",
		       KEMARI_DEVICE_NAME, ret);
		goto err_hooks;
	}
	pr_info("/dev/%s ready (ABI %u, kernel %s%s)\n", KEMARI_DEVICE_NAME,
		KEMARI_ABI_VERSION, release,
		KM_TEST_BUILD ? ", TEST BUILD with a fault trigger" : "");
	return 0;

err_hooks:
	km__hooks_remove();
err_fault:
	km__fault_exit();
	return ret;
}

static void __exit km_exit(void)
{
	km__dev_unregister();
	km__fault_exit();
	km__hooks_remove();
	/* Records are freed by call_rcu(): let those callbacks finish. */
	rcu_barrier();
	pr_info("unloaded\n");
}

module_init(km_init);
module_exit(km_exit);

MODULE_DESCRIPTION("kemari: sync gate and fault containment for lockstep VMs");
MODULE_AUTHOR("The kemari authors");
MODULE_LICENSE("GPL");
MODULE_VERSION("0.1.0");
