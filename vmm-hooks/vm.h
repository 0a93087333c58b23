/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A KVM virtual machine: memfd-backed RAM in one dirty-logged slot, the
 * in-kernel irqchip and PIT, vCPU threads, and the devices behind the PIO
 * dispatcher.
 *
 * Threads: one per vCPU, each running KVM_RUN and the exit handlers; the
 * caller of km_vm_run() waits for the end. A vCPU that must be stopped
 * (pause for a tap point, or the VM's end) is kicked: its immediate_exit is
 * set and it gets KM_KICK_SIGNAL, so KVM_RUN returns EINTR, having
 * completed any I/O still pending from the previous exit.
 */
#ifndef KEMARI_VMM_VM_H
#define KEMARI_VMM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "dirty.h"
#include "err.h"
#include "ioport.h"
#include "kvm.h"
#include "tap.h"
#include "virtio_dev.h"

#define KM_MAX_VCPUS 8
#define KM_MAX_IOPORTS 32
#define KM_KICK_SIGNAL SIGUSR1
#define KM_PAGE_SIZE 4096u
/* RAM is one slot below the 32-bit PCI/APIC hole. */
#define KM_MEM_MAX (3ull << 30)
#define KM_MEM_MIN (2ull << 20)

enum km_vm_end {
	KM_VM_RUNNING = 0,
	KM_VM_RESET, /* the guest reset or powered off: clean */
	KM_VM_FAILED, /* triple fault, KVM error, hook failure */
};

struct km_vcpu_stats {
	uint64_t exits; /* KVM_RUN returns with an exit */
	uint64_t io; /* KVM_EXIT_IO */
	uint64_t tapped; /* tapped PIO exits (hook called) */
	uint64_t mmio; /* KVM_EXIT_MMIO (unbacked memory) */
	uint64_t kicks; /* KVM_RUN returned EINTR */
	/* KVM_RUN entered to run the guest (immediate_exit clear) */
	uint64_t runs;
	/* tapped exits that waited for another vCPU's turn (vcpu.c) */
	uint64_t turn_waits;
	/* time a tapped exit spent waiting for its turn, and for the
	 * others to park after the kick (sum and worst), in ns */
	uint64_t turn_wait_ns;
	uint64_t park_wait_ns;
	uint64_t park_wait_max_ns;
	/* time inside KVM_RUN, and parked or syncing before it, in ns */
	uint64_t run_ns;
	uint64_t sync_ns;
};

struct km_vcpu {
	struct km_vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	/* set (lock held) before a KVM_RUN that runs the guest, cleared
	 * after it returns: only such a vCPU needs a signal to stop */
	bool in_guest;
	/* The last KVM_RUN returned EINTR: no I/O awaits completion. */
	bool drained;
	/* Fairness (vcpu.c), under vm->lock: the vm->resume_gen at which this
	 * vCPU last went into KVM_RUN to run the guest; whether it waits for
	 * the VM at a tapped exit; whether its thread left its loop. */
	uint64_t turn_gen;
	bool wants_vm;
	bool done;
	struct km_vcpu_stats stats;
};

struct km_vm_config {
	const char *kvm_path; /* NULL: /dev/kvm */
	uint64_t mem_size;
	unsigned int ncpus;
	int console_fd; /* the UART's output; -1: discard */
	/* virtio-blk disks (io_base and irq are assigned by km_vm_create) */
	struct km_virtio_blk_cfg disks[KM_MAX_DISKS];
	unsigned int ndisks;
	/* virtio-net on a TAP interface; ifname NULL: no NIC */
	struct km_virtio_net_cfg net;
};

struct km_vm {
	struct km_kvm kvm;
	int fd;
	int mem_fd;
	uint8_t *mem;
	uint64_t mem_size;
	unsigned int ncpus;
	struct km_vcpu vcpus[KM_MAX_VCPUS];
	struct km_ioport ioports[KM_MAX_IOPORTS];
	unsigned int nioports;
	struct km_pci *pci; /* the host bridge's bus (pci.c) */
	/* Pages the VMM's devices wrote (dirty.h); KVM's log misses them. */
	struct km_dirty dirty;

	struct km_tap_policy tap;
	km_tap_hook_fn tap_hook;
	void *tap_opaque;

	/* Pause and stop protocol; see vcpu.c. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct km_vcpu *pause_owner;
	uint8_t monitor; /* its address: pause_owner when main pauses */
	unsigned int nactive; /* vCPU threads in their run loop */
	unsigned int nparked;
	/* Tapped exits own the VM in ticket order; each vCPU release bumps
	 * resume_gen (see vcpu.c). */
	uint64_t next_ticket, now_serving, resume_gen;
	uint64_t rekicks; /* a pause found a kick unanswered and kicked again */
	bool stopping;
	enum km_vm_end end;
	char end_msg[1024];

	unsigned int timeout_s; /* 0: none */
	struct timespec t_start;
	struct timespec t_end;
};

/*
 * km_vm_create() - open KVM (all checks), create the VM, its in-kernel
 * irqchip and PIT, @cfg->mem_size bytes of memfd RAM at GPA 0 with dirty
 * logging (manual protect), @cfg->ncpus vCPUs with KVM's supported CPUID,
 * the legacy devices (UART, RTC, i8042, PCI host bridge) and the virtio
 * devices of @cfg (disks first, then the NIC, in PCI slots 1 and up, BARs
 * and IRQs from virtio_dev.h). Returns NULL with @err and errno set on
 * failure.
 */
struct km_vm *km_vm_create(const struct km_vm_config *cfg, struct km_err *err);

/* km_vm_destroy() - undo km_vm_create(); safe on NULL. */
void km_vm_destroy(struct km_vm *vm);

/*
 * km_vm_set_tap() - the tapped set and the hook called at each tapped
 * exit (@fn NULL: tapped exits are only counted). Before km_vm_run().
 */
void km_vm_set_tap(struct km_vm *vm, const struct km_tap_policy *p,
		   km_tap_hook_fn fn, void *opaque);

/*
 * km_vm_run() - start every vCPU thread and wait until the VM ends.
 * Returns 0 when the guest reset or powered off, -EIO when it failed
 * (km_vm_end_message() says why), or -errno if the threads did not start.
 */
int km_vm_run(struct km_vm *vm);

/*
 * km_vm_set_timeout() - end the VM as failed if it still runs @secs
 * seconds after km_vm_run() started it (0: no limit).
 */
void km_vm_set_timeout(struct km_vm *vm, unsigned int secs);

/* km_vm_end_message() - why the VM ended, one sentence. */
const char *km_vm_end_message(const struct km_vm *vm);

/*
 * km_vm_stop() - end the VM with @end (first caller wins), the reason
 * formatted from @fmt; kicks every vCPU out of the guest.
 */
void km_vm_stop(struct km_vm *vm, enum km_vm_end end, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * km_vm_guest() - the VMM's pointer to guest-physical [@gpa, @gpa + @len),
 * or NULL if any of it lies outside RAM (a device must never follow a
 * guest-supplied address without this check). Reading only: a device that
 * writes through the pointer calls km_vm_mark_dirty() for the range.
 */
void *km_vm_guest(struct km_vm *vm, uint64_t gpa, uint64_t len);

/* km_vm_mark_dirty() - record a device's write to guest RAM. */
void km_vm_mark_dirty(struct km_vm *vm, uint64_t gpa, uint64_t len);

/*
 * km_vm_dirty_harvest() - OR the pages the VMM's devices wrote since the
 * last harvest into @bitmap (KVM_GET_DIRTY_LOG's layout for the RAM slot,
 * @nwords 64-bit words) and forget them. Returns the number of pages, or
 * -EINVAL if @bitmap is shorter than the RAM. For the replicator, at a tap
 * point (vCPUs parked) or with the VM stopped.
 */
int64_t km_vm_dirty_harvest(struct km_vm *vm, uint64_t *bitmap, size_t nwords);

/* km_vm_irq_line() - set the level of in-kernel irqchip input @irq. */
int km_vm_irq_line(struct km_vm *vm, unsigned int irq, int level);

/* km_vm_parked() - how many vCPUs are parked now (for tap hooks/tests). */
unsigned int km_vm_parked(struct km_vm *vm);

/* km_vcpu_get_rip() - @vcpu's RIP from KVM_GET_REGS; 0 or -errno. */
int km_vcpu_get_rip(struct km_vcpu *vcpu, uint64_t *rip);

/*
 * km__vcpu_create() / km__vcpu_destroy() - one vCPU fd, its kvm_run
 * mapping, CPUID from @cpuid with this vCPU's APIC ID, and LAPIC LINT0 as
 * ExtINT and LINT1 as NMI.
 */
int km__vcpu_create(struct km_vm *vm, unsigned int id,
		    const struct kvm_cpuid2 *cpuid, struct km_err *err);
void km__vcpu_destroy(struct km_vcpu *vcpu);

/*
 * km__vm_pause_others() - park every vCPU but @self (kicking them out of
 * KVM_RUN) and return once they are; the caller then owns the VM until
 * km__vm_resume_others(). If another vCPU owns it, or others wait for it
 * first, or a vCPU released since the last pause has not been back in the
 * guest yet, @self parks first. Returns false if the VM is stopping.
 */
bool km__vm_pause_others(struct km_vcpu *self);

/* km__vm_resume_others() - let the vCPUs parked by @self run again. */
void km__vm_resume_others(struct km_vcpu *self);

#endif
