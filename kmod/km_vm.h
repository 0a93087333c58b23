/* SPDX-License-Identifier: GPL-2.0 */
/*
 * km_vm.h - the record kemari.ko keeps per registered VM, shared by
 * km_vm.c (registration, gate, agent file) and km_fault.c (containment).
 */
#ifndef KM_VM_H
#define KM_VM_H

#include <linux/atomic.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <uapi/linux/kemari.h>

/* Unread events kept per VM; one more is dropped (and counted). */
#define KM_RING 256

/* Per vCPU, indexed by vcpu->vcpu_idx. */
struct km_vcpu {
	u64 armed; /* epoch; the vCPU is held while armed > km_vm.acked */
	u64 exits_at_entry; /* vcpu->stat.exits when KVM_RUN began */
	u32 vcpu_id;
	u16 port;
	u16 size;
	unsigned int test_fault; /* KEMARI_TEST_FAULT_*, test builds */
};

/**
 * struct km_vm - one registered VM
 *
 * Lives in the km_vms hash (which holds one reference) from registration
 * until KEMARI_IOC_UNREGISTER, the VM's destruction, or module unload. The
 * agent file holds another reference and a reference on the struct kvm.
 * Freed after an RCU grace period: the hooks look records up under RCU.
 *
 * @lock protects the fields below it; @state and @acked are also read
 * without it (READ_ONCE) by the gate's fast path.
 */
struct km_vm {
	struct hlist_node node;
	struct rcu_head rcu;
	refcount_t ref;
	struct kvm *kvm;
	wait_queue_head_t gate_wq; /* held vCPUs */
	wait_queue_head_t event_wq; /* readers of the agent file */
	atomic_t dead; /* a kernel fault in a watched thread */
	int fault_cpu;
	struct work_struct fault_work;
	struct eventfd_ctx __rcu *efd;
	/* Written once each under @lock, read locklessly by the die notifier. */
	struct pid *threads[KEMARI_MAX_THREADS];
	unsigned int nr_threads;

	spinlock_t lock;
	struct file *agent; /* NULL when the agent is lost or gone */
	u32 state; /* KEMARI_VM_ATTACHED, _LOST_OPEN, _LOST_CLOSED; 0: gone */
	u32 flags; /* KEMARI_REG_* */
	u32 nr_ranges;
	struct kemari_port_range ranges[KEMARI_MAX_RANGES];
	u64 next_epoch; /* the last epoch handed out */
	u64 acked;
	u64 events_lost;
	u32 agent_losses;
	unsigned int ev_head, ev_tail;
	struct kemari_event ring[KM_RING];
	struct km_vcpu *vcpus; /* KVM_MAX_VCPUS */
};

/* km_vm_put() - drop a reference; the last one frees after RCU. */
void km__vm_put(struct km_vm *vm);

/* km__fault_work() - km_fault.c: the part of containment that may sleep. */
void km__fault_work(struct work_struct *work);

/* km__vm_signal() - signal the VM's eventfd, if any. Atomic context. */
void km__vm_signal(struct km_vm *vm);

#endif /* KM_VM_H */
