// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel symbols kemari.ko needs beyond the exported ones.
 *
 * 6.1 does not export kallsyms_lookup_name(). A kprobe can still be
 * registered on it by name (kprobes resolve names internally), and the
 * registered probe's address is the function's: that is the whole trick,
 * used once at load. Every symbol below must then resolve, or the load is
 * refused: they are exactly the KVM internals the gate depends on, so a
 * kernel that renamed or inlined one of them is a kernel this module was
 * not checked on.
 */
#include "km_int.h"

#include <linux/fs.h>
#include <linux/kprobes.h>
#include <linux/module.h>

typedef unsigned long (*km_lookup_fn)(const char *name);

static unsigned long km_kvm_vm_ioctl;

/* The functions km_hook.c attaches to, checked here so the refusal is clear. */
static const char *const km_needed[] = {
	"kvm_vm_ioctl",
	"kvm_arch_vcpu_ioctl_run",
	"kvm_sigset_deactivate",
	"kvm_arch_destroy_vm",
};

static km_lookup_fn find_kallsyms_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	km_lookup_fn fn;

	if (register_kprobe(&kp) < 0)
		return NULL;
	fn = (km_lookup_fn)kp.addr;
	unregister_kprobe(&kp);
	return fn;
}

static int check_symbol(km_lookup_fn lookup, const char *name)
{
	if (lookup(name))
		return 0;
	pr_err("kernel symbol %s not found: is kvm.ko loaded, and is this the 6.1 KVM the module was checked on?\n",
	       name);
	return -ENOENT;
}

int km__syms_init(const char *extra)
{
	km_lookup_fn lookup = find_kallsyms_lookup_name();
	size_t i;
	int ret;

	if (!lookup) {
		pr_err("cannot find kallsyms_lookup_name through a kprobe (CONFIG_KPROBES off?)\n");
		return -ENOENT;
	}
	for (i = 0; i < ARRAY_SIZE(km_needed); i++) {
		ret = check_symbol(lookup, km_needed[i]);
		if (ret)
			return ret;
	}
	if (extra) {
		ret = check_symbol(lookup, extra);
		if (ret)
			return ret;
	}
	km_kvm_vm_ioctl = lookup("kvm_vm_ioctl");
	return 0;
}

/*
 * A VM file is the only KVM file whose ioctl handler is kvm_vm_ioctl(); its
 * private_data is the struct kvm. (kvm_vm_fops itself is static.)
 */
bool km__is_kvm_vm_file(const struct file *file)
{
	return file->f_op->unlocked_ioctl &&
	       (unsigned long)file->f_op->unlocked_ioctl == km_kvm_vm_ioctl;
}
