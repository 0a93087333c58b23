/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kemari.h - the ABI of /dev/kemari, shared by kemari.ko and userspace.
 *
 * Every structure has fixed-width fields and explicit padding, so 32-bit
 * and 64-bit callers see the same layout. An ioctl number encodes the size
 * of its argument: a caller built against another layout gets ENOTTY
 * instead of a misread structure.
 *
 * Userspace includes this as <linux/kemari.h> with kmod/include/uapi on
 * its include path (CMake: link the kemari-uapi interface target).
 */
#ifndef _UAPI_LINUX_KEMARI_H
#define _UAPI_LINUX_KEMARI_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The misc device: /dev/KEMARI_DEVICE_NAME, dynamic minor. */
#define KEMARI_DEVICE_NAME "kemari"

/*
 * Bumped on any incompatible change to this file. Additions that old
 * callers can ignore set a new feature bit instead.
 */
#define KEMARI_ABI_VERSION 1

/*
 * Feature bits reported by KEMARI_IOC_GET_VERSION.
 *
 * GATE: KEMARI_IOC_REGISTER_VM and the agent file (below) exist.
 * FAULT: fault containment (KEMARI_IOC_ADD_THREAD, KEMARI_IOC_SET_EVENTFD).
 * TEST_FAULT: this is a test build that accepts KEMARI_IOC_TEST_FAULT;
 * production builds never set it.
 */
#define KEMARI_FEATURE_GATE (1ULL << 0)
#define KEMARI_FEATURE_FAULT (1ULL << 1)
#define KEMARI_FEATURE_TEST_FAULT (1ULL << 2)
#define KEMARI_FEATURES_KNOWN \
	(KEMARI_FEATURE_GATE | KEMARI_FEATURE_FAULT | KEMARI_FEATURE_TEST_FAULT)

/* Not claimed in Documentation/userspace-api/ioctl/ioctl-number.rst. */
#define KEMARI_IOC_MAGIC 0xE7

/**
 * struct kemari_version - answer of KEMARI_IOC_GET_VERSION
 * @abi_version:	KEMARI_ABI_VERSION of the loaded module
 * @size:		sizeof(struct kemari_version) as the module knows it
 * @features:		KEMARI_FEATURE_* bits the loaded module implements
 */
struct kemari_version {
	__u32 abi_version;
	__u32 size;
	__u64 features;
};

#define KEMARI_IOC_GET_VERSION \
	_IOR(KEMARI_IOC_MAGIC, 0x00, struct kemari_version)

/* Up to this many port ranges are tapped per VM. */
#define KEMARI_MAX_RANGES 16
/* Up to this many threads per VM are watched for kernel faults. */
#define KEMARI_MAX_THREADS 64

/** struct kemari_port_range - PIO ports @first..@last, both included */
struct kemari_port_range {
	__u16 first;
	__u16 last;
};

/*
 * Registration flags.
 * FAIL_CLOSED: when the agent file is closed without KEMARI_IOC_UNREGISTER
 * (the agent died), held vCPUs stay held and tapped exits keep arming
 * until a new agent registers the same VM. Without it (fail-open) the
 * held vCPUs are released and the VM runs unprotected.
 * OFFLINE_CPU: after a kernel fault in one of the VM's threads, take the
 * CPU the fault happened on offline (its state may not have been restored).
 */
#define KEMARI_REG_FAIL_CLOSED (1U << 0)
#define KEMARI_REG_OFFLINE_CPU (1U << 1)
#define KEMARI_REG_FLAGS_KNOWN (KEMARI_REG_FAIL_CLOSED | KEMARI_REG_OFFLINE_CPU)

/**
 * struct kemari_register - argument of KEMARI_IOC_REGISTER_VM
 * @vm_fd:	a KVM VM file descriptor (KVM_CREATE_VM)
 * @flags:	KEMARI_REG_*
 * @nr_ranges:	how many of @ranges are used (0..KEMARI_MAX_RANGES)
 * @pad:	must be 0
 * @ranges:	tapped port ranges, each with first <= last
 *
 * Returns a new file descriptor, the agent file: read() and poll() give
 * armed events (struct kemari_event), ioctls ack them. The VM stays
 * registered until KEMARI_IOC_UNREGISTER or, with FAIL_CLOSED, until the
 * VM itself is destroyed. Registering a VM whose agent was lost adopts it
 * (with the new flags and ranges); registering one that has an agent fails
 * with EBUSY.
 */
struct kemari_register {
	__s32 vm_fd;
	__u32 flags;
	__u32 nr_ranges;
	__u32 pad;
	struct kemari_port_range ranges[KEMARI_MAX_RANGES];
};

#define KEMARI_IOC_REGISTER_VM \
	_IOW(KEMARI_IOC_MAGIC, 0x01, struct kemari_register)

/* struct kemari_vm_status.state */
#define KEMARI_VM_ATTACHED 1 /* an agent holds the agent file */
#define KEMARI_VM_LOST_OPEN 2 /* agent lost, fail-open: unprotected */
#define KEMARI_VM_LOST_CLOSED 3 /* agent lost, fail-closed: held */
#define KEMARI_VM_DEAD 4 /* a kernel fault in one of its threads */

/**
 * struct kemari_vm_status - KEMARI_IOC_STATUS, KEMARI_IOC_QUERY_VM
 * @vm_fd:		in, KEMARI_IOC_QUERY_VM only: the KVM VM fd
 * @state:		KEMARI_VM_*
 * @flags:		the KEMARI_REG_* flags of the registration
 * @held_vcpus:		vCPUs armed with an epoch not yet acked
 * @armed_epoch:	the last epoch handed out (0: none yet)
 * @acked_epoch:	the highest epoch acked
 * @events_lost:	events dropped because the agent did not read them
 * @agent_losses:	times the agent file was closed without unregistering
 * @fault_cpu:		CPU of the kernel fault, -1 if none
 */
struct kemari_vm_status {
	__s32 vm_fd;
	__u32 state;
	__u32 flags;
	__u32 held_vcpus;
	__u64 armed_epoch;
	__u64 acked_epoch;
	__u64 events_lost;
	__u32 agent_losses;
	__s32 fault_cpu;
};

/* On /dev/kemari, by VM fd: any caller, e.g. the VMM after agent loss. */
#define KEMARI_IOC_QUERY_VM \
	_IOWR(KEMARI_IOC_MAGIC, 0x02, struct kemari_vm_status)

/**
 * struct kemari_event - one armed vCPU, as read() from the agent file
 * @vcpu_id:	the vCPU's id (KVM_CREATE_VCPU argument)
 * @port:	the tapped port of its OUT
 * @size:	access size in bytes (1, 2 or 4)
 * @epoch:	ack this epoch (or a later one) to let the vCPU run
 *
 * Every tapped OUT exit arms its vCPU with a new epoch, one higher than
 * the last; acking epoch N releases every vCPU armed with N or less.
 */
struct kemari_event {
	__u32 vcpu_id;
	__u16 port;
	__u16 size;
	__u64 epoch;
};

/* ioctls on the agent file */

/* Ack every epoch up to *(__u64 *)arg; EINVAL if it was never handed out. */
#define KEMARI_IOC_ACK _IOW(KEMARI_IOC_MAGIC, 0x10, __u64)

/**
 * struct kemari_thread - argument of KEMARI_IOC_ADD_THREAD
 * @tid:	thread id in the caller's pid namespace; 0 means the caller
 * @pad:	must be 0
 *
 * A kernel fault (oops, general protection) in a watched thread marks the
 * VM dead instead of leaving it hung. Register every vCPU thread.
 */
struct kemari_thread {
	__s32 tid;
	__u32 pad;
};

#define KEMARI_IOC_ADD_THREAD _IOW(KEMARI_IOC_MAGIC, 0x11, struct kemari_thread)
/* An eventfd signalled on a fault or on agent loss; -1 removes it. */
#define KEMARI_IOC_SET_EVENTFD _IOW(KEMARI_IOC_MAGIC, 0x12, __s32)
/* Release the VM: held vCPUs run on, the agent file goes inert. */
#define KEMARI_IOC_UNREGISTER _IO(KEMARI_IOC_MAGIC, 0x13)
#define KEMARI_IOC_STATUS _IOR(KEMARI_IOC_MAGIC, 0x14, struct kemari_vm_status)

/* Test builds only (KEMARI_FEATURE_TEST_FAULT): see KEMARI_IOC_TEST_FAULT. */
#define KEMARI_TEST_FAULT_NULL 1 /* NULL pointer dereference (page fault) */
#define KEMARI_TEST_FAULT_GP 2 /* non-canonical access (#GP) */

/**
 * struct kemari_test_fault - argument of KEMARI_IOC_TEST_FAULT
 * @vcpu_id:	the vCPU whose next KVM_RUN faults, holding vcpu->mutex
 * @kind:	KEMARI_TEST_FAULT_*
 */
struct kemari_test_fault {
	__u32 vcpu_id;
	__u32 kind;
};

#define KEMARI_IOC_TEST_FAULT \
	_IOW(KEMARI_IOC_MAGIC, 0x1f, struct kemari_test_fault)

#endif /* _UAPI_LINUX_KEMARI_H */
