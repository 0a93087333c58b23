// SPDX-License-Identifier: GPL-2.0
/*
 * Fault containment: a kernel fault (oops, general protection) in a thread
 * the agent registered for a VM fences that VM instead of leaving it hung.
 *
 * The faulting thread dies holding whatever it held, typically
 * vcpu->mutex, so any later ioctl on that vCPU would sleep forever. The
 * die notifier therefore sets kvm->vm_dead, which makes KVM refuse every
 * VM and vCPU ioctl with EIO before it takes a lock, asks every vCPU to
 * stop (KVM_REQ_VM_DEAD), and signals the registered eventfd: the owner
 * learns at once, which matters because only the faulting thread dies and
 * nothing else tells its process. A work item then kicks the other vCPUs
 * out of the guest and, if the registration asked for it, takes the CPU of
 * the fault offline, since host state on it may not have been restored.
 *
 * The die notifier runs in the fault's context (atomic, interrupts maybe
 * off): it only sets flags, takes references and signals the eventfd.
 */
#include "km_int.h"
#include "km_vm.h"

#include <linux/cpu.h>
#include <linux/kdebug.h>
#include <linux/kvm_host.h>
#include <linux/notifier.h>
#include <linux/ptrace.h>

static struct workqueue_struct *km_fault_wq;

void km__fault_work(struct work_struct *work)
{
	struct km_vm *vm = container_of(work, struct km_vm, fault_work);
	struct kvm_vcpu *vcpu;
	unsigned long i;
	int ret;

	kvm_for_each_vcpu(i, vcpu, vm->kvm) kvm_vcpu_kick(vcpu);
	wake_up_all(&vm->gate_wq);
	if (vm->flags & KEMARI_REG_OFFLINE_CPU) {
		ret = remove_cpu(vm->fault_cpu);
		if (ret)
			pr_err("cannot take CPU %d offline after the fault: error %d\n",
			       vm->fault_cpu, ret);
		else
			pr_warn("CPU %d taken offline after the fault\n",
				vm->fault_cpu);
	}
	kvm_put_kvm(vm->kvm);
	km__vm_put(vm);
}

void km__fault_contain(struct km_vm *vm, int cpu)
{
	struct kvm *kvm = vm->kvm;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	if (atomic_xchg(&vm->dead, 1))
		return;
	vm->fault_cpu = cpu;
	WRITE_ONCE(kvm->vm_dead, true);
	kvm_for_each_vcpu(i, vcpu, kvm) kvm_make_request(KVM_REQ_VM_DEAD, vcpu);
	km__vm_signal(vm);
	pr_crit("kernel fault in a vCPU thread of the VM of pid %d on CPU %d: VM fenced, owner notified\n",
		kvm->userspace_pid, cpu);
	/* The work needs the kvm even if the process goes away meanwhile. */
	if (refcount_inc_not_zero(&vm->ref)) {
		kvm_get_kvm(kvm);
		queue_work(km_fault_wq, &vm->fault_work);
	}
}

static int km_die(struct notifier_block *nb, unsigned long val, void *data)
{
	struct die_args *args = data;
	struct km_vm *vm;

	if (val != DIE_OOPS && val != DIE_GPF)
		return NOTIFY_DONE;
	if (args->regs && user_mode(args->regs))
		return NOTIFY_DONE;
	rcu_read_lock();
	vm = km__fault_thread_vm();
	if (vm)
		km__fault_contain(vm, raw_smp_processor_id());
	rcu_read_unlock();
	return NOTIFY_DONE;
}

static struct notifier_block km_die_nb = {
	.notifier_call = km_die,
	/* Before anything that might not return (kdump, kgdb). */
	.priority = INT_MAX,
};

int km__fault_init(void)
{
	int ret;

	km_fault_wq = alloc_workqueue("kemari_fault", WQ_UNBOUND, 0);
	if (!km_fault_wq)
		return -ENOMEM;
	ret = register_die_notifier(&km_die_nb);
	if (ret)
		destroy_workqueue(km_fault_wq);
	return ret;
}

void km__fault_exit(void)
{
	unregister_die_notifier(&km_die_nb);
	destroy_workqueue(km_fault_wq); /* runs pending fault work first */
}
