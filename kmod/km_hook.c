// SPDX-License-Identifier: GPL-2.0
/*
 * The three places kemari.ko attaches to KVM, all with ftrace:
 *
 * - entry of kvm_arch_vcpu_ioctl_run() (IPMODIFY, regs saved): a vCPU the
 *   gate must hold is sent to km_run_stub instead of the body. Every other
 *   KVM_RUN continues untouched after one hash lookup (none at all while
 *   no VM is registered).
 * - entry of kvm_sigset_deactivate(), which 6.1 calls at the very end of
 *   kvm_arch_vcpu_ioctl_run() with vcpu->mutex held and the exit fully
 *   prepared: the observer that arms a vCPU on a tapped OUT.
 * - entry of kvm_arch_destroy_vm(): a VM is going away, drop its record.
 *
 * ftrace callbacks run with preemption disabled; only km_gate_hold(),
 * reached through the stub, may sleep. IPMODIFY is exclusive per function:
 * a livepatch of kvm_arch_vcpu_ioctl_run() makes the load fail with EBUSY.
 */
#include "km_int.h"

#include <linux/atomic.h>
#include <linux/ftrace.h>
#include <linux/kvm_host.h>
#include <linux/rcupdate.h>
#include <linux/wait_bit.h>

bool km__unloading;

/* Read by km_run_stub: where the held KVM_RUN continues. */
unsigned long km_run_body;

/* Threads between the entry hook's redirect and the end of km_gate_hold(). */
static atomic_t km_in_flight = ATOMIC_INIT(0);

void km_run_stub(void); /* km_stub.S */

static void notrace km_run_entry(unsigned long ip, unsigned long parent_ip,
				 struct ftrace_ops *op,
				 struct ftrace_regs *fregs)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);

	if (!regs || !km__vm_wants_hold((struct kvm_vcpu *)regs->di))
		return;
	atomic_inc(&km_in_flight);
	WRITE_ONCE(km_run_body, ip + MCOUNT_INSN_SIZE);
	regs->ip = (unsigned long)km_run_stub;
}

static void notrace km_run_exit(unsigned long ip, unsigned long parent_ip,
				struct ftrace_ops *op,
				struct ftrace_regs *fregs)
{
	/* WITH_ARGS: the argument registers are saved even without regs. */
	km__vm_observe_exit((struct kvm_vcpu *)fregs->regs.di);
}

static void notrace km_vm_destroy(unsigned long ip, unsigned long parent_ip,
				  struct ftrace_ops *op,
				  struct ftrace_regs *fregs)
{
	km__vm_destroyed((struct kvm *)fregs->regs.di);
}

struct km_hook {
	const char *name;
	struct ftrace_ops ops;
};

/* Installed in this order, removed in reverse: the gate last in, first out. */
static struct km_hook km_hooks[] = {
	{ "kvm_arch_destroy_vm",
	  { .func = km_vm_destroy, .flags = FTRACE_OPS_FL_RECURSION } },
	{ "kvm_sigset_deactivate",
	  { .func = km_run_exit, .flags = FTRACE_OPS_FL_RECURSION } },
	{ "kvm_arch_vcpu_ioctl_run",
	  { .func = km_run_entry,
	    .flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY |
		     FTRACE_OPS_FL_RECURSION } },
};

int km_gate_hold(struct kvm_vcpu *vcpu)
{
	unsigned int fault = km__vm_take_test_fault(vcpu);
	int ret;

	if (fault) {
		/* This thread never comes back: do not let it pin unload. */
		atomic_dec(&km_in_flight);
		km__test_fault(fault);
	}
	ret = km__vm_hold(vcpu);
	if (atomic_dec_and_test(&km_in_flight))
		wake_up_var(&km_in_flight);
	return ret;
}

static int hook_add(struct km_hook *h)
{
	char name[64];
	int ret;

	strscpy(name, h->name, sizeof(name));
	ret = ftrace_set_filter(&h->ops, name, strlen(name), 1);
	if (ret) {
		pr_err("cannot trace %s: error %d\n", h->name, ret);
		return ret;
	}
	ret = register_ftrace_function(&h->ops);
	if (ret) {
		pr_err("cannot hook %s: error %d%s\n", h->name, ret,
		       ret == -EBUSY ?
			       " (another IPMODIFY user, e.g. a livepatch, owns it)" :
			       "");
		ftrace_free_filter(&h->ops);
	}
	return ret;
}

static void hook_del(struct km_hook *h)
{
	int ret = unregister_ftrace_function(&h->ops);

	if (ret)
		pr_warn("unhooking %s: error %d\n", h->name, ret);
	ftrace_free_filter(&h->ops);
}

int km__hooks_install(void)
{
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(km_hooks); i++) {
		ret = hook_add(&km_hooks[i]);
		if (ret)
			goto err_unhook;
	}
	return 0;

err_unhook:
	while (i--)
		hook_del(&km_hooks[i]);
	return ret;
}

void km__hooks_remove(void)
{
	size_t i = ARRAY_SIZE(km_hooks);

	WRITE_ONCE(km__unloading, true);
	/* Each unregister waits until no CPU is inside that callback. */
	while (i--)
		hook_del(&km_hooks[i]);
	km__vm_release_all();
	wait_var_event(&km_in_flight, !atomic_read(&km_in_flight));
	/*
	 * A thread may still be between the decrement and the stub's jump or
	 * RET, preempted. RCU-tasks waits for every task to pass a voluntary
	 * context switch, which no task does inside those instructions.
	 */
	synchronize_rcu_tasks();
}
