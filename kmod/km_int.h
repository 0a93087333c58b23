/* SPDX-License-Identifier: GPL-2.0 */
/*
 * km_int.h - what the parts of kemari.ko tell each other. Included first
 * by every .c file of the module, so pr_fmt applies everywhere.
 */
#ifndef KM_INT_H
#define KM_INT_H

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/types.h>

struct file;
struct kvm;
struct kvm_vcpu;
struct km_vm;

/**
 * km__kernel_check() - may this module run on kernel @release?
 * @release: a utsname release string such as "6.1.0-56-amd64"
 *
 * The module hooks KVM internals that differ between kernel series, so it
 * runs only on the series listed in km_version.c. Logs why it refuses.
 *
 * Return: 0 if supported, -EINVAL if @release cannot be parsed,
 * -EOPNOTSUPP if it names a series this module does not know.
 */
int km__kernel_check(const char *release);

/**
 * km__syms_init() - find the kernel symbols the module needs
 * @extra: one more symbol to require (the require_symbol test parameter),
 *	   or NULL
 *
 * kallsyms_lookup_name() is not exported on 6.1; its address comes from a
 * kprobe registered on it (km_sym.c). Every symbol the hooks need must
 * exist (kvm.ko loaded, the 6.1 names): otherwise the load is refused.
 *
 * Return: 0, or -ENOENT with the missing symbol logged.
 */
int km__syms_init(const char *extra);

/* km__is_kvm_vm_file() - is @file a KVM VM (KVM_CREATE_VM's anon file)? */
bool km__is_kvm_vm_file(const struct file *file);

/**
 * km__hooks_install() - attach the gate to KVM (three ftrace hooks)
 *
 * Return: 0 or the ftrace error (EBUSY: another IPMODIFY user, such as a
 * livepatch, owns kvm_arch_vcpu_ioctl_run).
 */
int km__hooks_install(void);

/**
 * km__hooks_remove() - detach from KVM and wait until no thread runs or
 * sleeps in module code: hooks unregistered, held vCPUs woken (they return
 * EINTR), the in-flight count drained, and an RCU-tasks grace period for
 * the stub's last instructions.
 */
void km__hooks_remove(void);

/* Set once unloading has begun: held vCPUs stop waiting. */
extern bool km__unloading;

/*
 * km_gate_hold() - called by the stub (km_stub.S) for a vCPU the entry
 * hook decided to hold, with vcpu->mutex held. Returns 0 to continue into
 * KVM_RUN's body, or the -errno KVM_RUN returns without running.
 */
int km_gate_hold(struct kvm_vcpu *vcpu);

/* km_vm.c: the registered VMs. All of these are safe in atomic context. */

/* km__vm_wants_hold() - must this vCPU's KVM_RUN go to km_gate_hold()? */
bool km__vm_wants_hold(struct kvm_vcpu *vcpu);

/*
 * km__vm_observe_exit() - KVM_RUN is returning: arm the vCPU if it exited
 * on a tapped OUT whose completion is still pending.
 */
void km__vm_observe_exit(struct kvm_vcpu *vcpu);

/* km__vm_destroyed() - @kvm is being destroyed: forget its record. */
void km__vm_destroyed(struct kvm *kvm);

/* km__vm_hold() - the sleeping part of km_gate_hold(). */
int km__vm_hold(struct kvm_vcpu *vcpu);

/*
 * km__vm_take_test_fault() - test builds: the KEMARI_TEST_FAULT_* kind
 * set for this vCPU (and clear it); 0 if none.
 */
unsigned int km__vm_take_test_fault(struct kvm_vcpu *vcpu);

/**
 * km__vm_register() - KEMARI_IOC_REGISTER_VM
 * @uarg: struct kemari_register in user memory
 *
 * Return: the agent file descriptor, or -errno.
 */
long km__vm_register(void __user *uarg);

/* km__vm_query() - KEMARI_IOC_QUERY_VM */
long km__vm_query(void __user *uarg);

/*
 * km__vm_release_all() - at unload, after the hooks are gone: forget every
 * record (none can have an agent file open: those pin the module) and wake
 * every held vCPU.
 */
void km__vm_release_all(void);

/* km_fault.c: fault containment. */

/* km__fault_init() - register the die notifier. */
int km__fault_init(void);

/* km__fault_exit() - unregister it and finish pending fault work. */
void km__fault_exit(void);

/*
 * km__fault_thread_vm() - the record whose watched threads include the
 * current task, under rcu_read_lock(); NULL if none.
 */
struct km_vm *km__fault_thread_vm(void);

/**
 * km__fault_contain() - fence the VM of @vm after a fault on @cpu
 *
 * Atomic context (called from the die notifier): marks the KVM VM dead,
 * signals the eventfd and queues the rest (kicks, CPU offline) to a work
 * item. Acts once per VM.
 */
void km__fault_contain(struct km_vm *vm, int cpu);

/*
 * km__test_fault() - test builds: fault now, holding vcpu->mutex, the way
 * @kind (KEMARI_TEST_FAULT_*) says. Production builds: does nothing.
 */
void km__test_fault(unsigned int kind);

/**
 * km__dev_register() - create /dev/kemari
 *
 * Return: 0 or the misc_register() error.
 */
int km__dev_register(void);

/**
 * km__dev_unregister() - remove /dev/kemari
 *
 * Open files keep the module pinned (fops.owner), so no ioctl runs once
 * this returns at module exit.
 */
void km__dev_unregister(void);

#ifdef KEMARI_TEST_BUILD
#define KM_TEST_BUILD 1
#else
#define KM_TEST_BUILD 0
#endif

#endif /* KM_INT_H */
