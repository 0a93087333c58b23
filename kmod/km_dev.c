// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kemari: the misc device and its ioctl dispatcher.
 *
 * Every ioctl is one row of km_ioctls[], indexed by its _IOC_NR. A command
 * is accepted only if it equals the row's full number (magic, direction,
 * size and nr), so a caller built against another struct layout gets
 * ENOTTY rather than a partly copied structure.
 */
#include "km_int.h"

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/uaccess.h>

#include <uapi/linux/kemari.h>

struct km_ioctl {
	unsigned int cmd;
	long (*fn)(struct file *file, void __user *arg);
};

static long get_version(struct file *file, void __user *arg)
{
	struct kemari_version v = {
		.abi_version = KEMARI_ABI_VERSION,
		.size = sizeof(v),
		.features = KEMARI_FEATURE_GATE | KEMARI_FEATURE_FAULT |
			    (KM_TEST_BUILD ? KEMARI_FEATURE_TEST_FAULT : 0),
	};

	if (copy_to_user(arg, &v, sizeof(v)))
		return -EFAULT;
	return 0;
}

static long register_vm(struct file *file, void __user *arg)
{
	return km__vm_register(arg);
}

static long query_vm(struct file *file, void __user *arg)
{
	return km__vm_query(arg);
}

static const struct km_ioctl km_ioctls[] = {
	[_IOC_NR(KEMARI_IOC_GET_VERSION)] = { KEMARI_IOC_GET_VERSION,
					      get_version },
	[_IOC_NR(KEMARI_IOC_REGISTER_VM)] = { KEMARI_IOC_REGISTER_VM,
					      register_vm },
	[_IOC_NR(KEMARI_IOC_QUERY_VM)] = { KEMARI_IOC_QUERY_VM, query_vm },
};

static long km_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	unsigned int nr = _IOC_NR(cmd);

	if (_IOC_TYPE(cmd) != KEMARI_IOC_MAGIC || nr >= ARRAY_SIZE(km_ioctls))
		return -ENOTTY;
	nr = array_index_nospec(nr, ARRAY_SIZE(km_ioctls));
	if (!km_ioctls[nr].fn || km_ioctls[nr].cmd != cmd)
		return -ENOTTY;
	return km_ioctls[nr].fn(file, (void __user *)arg);
}

static const struct file_operations km_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.unlocked_ioctl = km_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

/*
 * Root only: the device will let its holder stall any registered VM's
 * vCPUs, which is nothing to hand to an unprivileged user.
 */
static struct miscdevice km_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = KEMARI_DEVICE_NAME,
	.fops = &km_fops,
	.mode = 0600,
};

int km__dev_register(void)
{
	return misc_register(&km_misc);
}

void km__dev_unregister(void)
{
	misc_deregister(&km_misc);
}
