// SPDX-License-Identifier: GPL-2.0
/*
 * Creating and destroying a VM. The order matters: the in-kernel irqchip
 * is created before any vCPU, always (LAB-NOTES: a vCPU without one flips
 * a static key whose text patching livelocks under nested TCG), and the
 * manual dirty-log protect capability before the memory slot.
 */
#include "vm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices.h"

#define KM_TSS_ADDR 0xfffbd000u

static struct kvm_cpuid2 *supported_cpuid(struct km_vm *vm, struct km_err *err)
{
	struct kvm_cpuid2 *cpuid;
	uint32_t n = 128;

	for (;;) {
		cpuid = calloc(1,
			       sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
		if (!cpuid)
			return NULL;
		cpuid->nent = n;
		if (ioctl(vm->kvm.fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			return cpuid;
		free(cpuid);
		if (errno != E2BIG || n >= 4096) {
			km_err_set(err, "KVM_GET_SUPPORTED_CPUID failed: %s",
				   strerror(errno));
			return NULL;
		}
		n *= 2;
	}
}

static int vm_ioctl(struct km_vm *vm, unsigned long req, void *arg,
		    const char *what, struct km_err *err)
{
	if (ioctl(vm->fd, req, arg) >= 0)
		return 0;
	km_err_set(err, "%s failed: %s", what, strerror(errno));
	return -errno;
}

static int create_chips(struct km_vm *vm, struct km_err *err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int r;

	r = vm_ioctl(vm, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KM_TSS_ADDR,
		     "KVM_SET_TSS_ADDR", err);
	if (r < 0)
		return r;
	r = vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP", err);
	if (r < 0)
		return r;
	return vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2", err);
}

static int create_memory(struct km_vm *vm, struct km_err *err)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			   KVM_DIRTY_LOG_INITIALLY_SET,
	};
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.flags = KVM_MEM_LOG_DIRTY_PAGES,
		.guest_phys_addr = 0,
		.memory_size = vm->mem_size,
	};
	int r;

	r = vm_ioctl(vm, KVM_ENABLE_CAP, &cap,
		     "enabling manual dirty-log protection", err);
	if (r < 0)
		return r;
	if (km_dirty_init(&vm->dirty, vm->mem_size) < 0) {
		km_err_set(err, "allocating the device dirty log failed");
		return -ENOMEM;
	}
	vm->mem_fd = memfd_create("kemari-guest-ram", MFD_CLOEXEC);
	if (vm->mem_fd < 0 || ftruncate(vm->mem_fd, vm->mem_size) < 0) {
		km_err_set(err, "creating %llu MiB of guest RAM failed: %s",
			   (unsigned long long)(vm->mem_size >> 20),
			   strerror(errno));
		return -errno;
	}
	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		km_err_set(err, "mapping guest RAM failed: %s",
			   strerror(errno));
		return -errno;
	}
	region.userspace_addr = (uintptr_t)vm->mem;
	return vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region,
			"KVM_SET_USER_MEMORY_REGION", err);
}

static int create_vcpus(struct km_vm *vm, struct km_err *err)
{
	struct kvm_cpuid2 *cpuid = supported_cpuid(vm, err);
	unsigned int i;
	int r = 0;

	if (!cpuid)
		return -ENOMEM;
	for (i = 0; i < vm->ncpus && r == 0; i++)
		r = km__vcpu_create(vm, i, cpuid, err);
	free(cpuid);
	return r;
}

static int create_virtio(struct km_vm *vm, const struct km_vm_config *cfg,
			 struct km_err *err)
{
	unsigned int i, n = 0;
	int r = 0;

	for (i = 0; i < cfg->ndisks && r == 0; i++, n++) {
		struct km_virtio_blk_cfg d = cfg->disks[i];

		d.io_base = KM_VIRTIO_IO_BASE(n);
		d.irq = KM_VIRTIO_IRQ(n);
		r = km_virtio_blk_init(vm, &d, err);
	}
	if (r == 0 && cfg->net.ifname) {
		struct km_virtio_net_cfg net = cfg->net;

		net.io_base = KM_VIRTIO_IO_BASE(n);
		net.irq = KM_VIRTIO_IRQ(n);
		r = km_virtio_net_init(vm, &net, err);
	}
	return r;
}

static int create_devices(struct km_vm *vm, const struct km_vm_config *cfg,
			  struct km_err *err)
{
	int r;

	r = km_serial_init(vm, cfg->console_fd, err);
	if (r == 0)
		r = km_rtc_init(vm, err);
	if (r == 0)
		r = km_i8042_init(vm, err);
	if (r == 0)
		r = km_pci_init(vm, err);
	if (r == 0)
		r = create_virtio(vm, cfg, err);
	return r;
}

static int check_config(const struct km_vm_config *cfg, struct km_err *err)
{
	if (cfg->ncpus < 1 || cfg->ncpus > KM_MAX_VCPUS) {
		km_err_set(err,
			   "%u vCPUs requested; kemari-vmm supports 1 to "
			   "%d",
			   cfg->ncpus, KM_MAX_VCPUS);
		return -EINVAL;
	}
	if (cfg->ndisks > KM_MAX_DISKS ||
	    cfg->ndisks + !!cfg->net.ifname > KM_MAX_VIRTIO) {
		km_err_set(err, "at most %d disks and %d virtio devices",
			   KM_MAX_DISKS, KM_MAX_VIRTIO);
		return -EINVAL;
	}
	if (cfg->mem_size < KM_MEM_MIN || cfg->mem_size > KM_MEM_MAX ||
	    cfg->mem_size % KM_PAGE_SIZE) {
		km_err_set(err,
			   "guest memory must be a multiple of 4 KiB "
			   "between %llu MiB and %llu MiB",
			   KM_MEM_MIN >> 20, KM_MEM_MAX >> 20);
		return -EINVAL;
	}
	return 0;
}

static struct km_vm *vm_alloc(const struct km_vm_config *cfg)
{
	struct km_vm *vm = calloc(1, sizeof(*vm));
	unsigned int i;

	if (!vm)
		return NULL;
	vm->fd = vm->mem_fd = vm->kvm.fd = -1;
	for (i = 0; i < KM_MAX_VCPUS; i++)
		vm->vcpus[i].fd = -1;
	vm->mem_size = cfg->mem_size;
	vm->ncpus = cfg->ncpus;
	km_tap_policy_default(&vm->tap);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	return vm;
}

struct km_vm *km_vm_create(const struct km_vm_config *cfg, struct km_err *err)
{
	struct km_vm *vm;
	int r;

	r = check_config(cfg, err);
	if (r < 0)
		goto err_out;
	vm = vm_alloc(cfg);
	r = -ENOMEM;
	if (!vm)
		goto err_out;
	r = km_kvm_open(&vm->kvm, cfg->kvm_path, err);
	if (r < 0)
		goto err_destroy;
	if (cfg->ncpus > (unsigned int)vm->kvm.max_vcpus) {
		km_err_set(err, "%u vCPUs requested; this KVM allows %d",
			   cfg->ncpus, vm->kvm.max_vcpus);
		r = -EINVAL;
		goto err_destroy;
	}
	vm->fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		r = -errno;
		km_err_set(err, "KVM_CREATE_VM failed: %s", strerror(errno));
		goto err_destroy;
	}
	r = create_chips(vm, err);
	if (r == 0)
		r = create_memory(vm, err);
	if (r == 0)
		r = create_vcpus(vm, err);
	if (r == 0)
		r = create_devices(vm, cfg, err);
	if (r < 0)
		goto err_destroy;
	return vm;

err_destroy:
	km_vm_destroy(vm);
err_out:
	errno = -r;
	return NULL;
}

void km_vm_destroy(struct km_vm *vm)
{
	unsigned int i;

	if (!vm)
		return;
	km__ioport_destroy_all(vm);
	for (i = 0; i < KM_MAX_VCPUS; i++)
		if (vm->vcpus[i].fd >= 0)
			km__vcpu_destroy(&vm->vcpus[i]);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->mem_fd >= 0)
		close(vm->mem_fd);
	if (vm->fd >= 0)
		close(vm->fd);
	km_dirty_destroy(&vm->dirty);
	km_kvm_close(&vm->kvm);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

void km_vm_set_tap(struct km_vm *vm, const struct km_tap_policy *p,
		   km_tap_hook_fn fn, void *opaque)
{
	if (p)
		vm->tap = *p;
	vm->tap_hook = fn;
	vm->tap_opaque = opaque;
}

void km_vm_stop(struct km_vm *vm, enum km_vm_end end, const char *fmt, ...)
{
	unsigned int i;
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->stopping) {
		vm->stopping = true;
		vm->end = end;
		va_start(ap, fmt);
		vsnprintf(vm->end_msg, sizeof(vm->end_msg), fmt, ap);
		va_end(ap);
		for (i = 0; i < vm->ncpus; i++) {
			vm->vcpus[i].run->immediate_exit = 1;
			if (vm->vcpus[i].thread_started)
				pthread_kill(vm->vcpus[i].thread,
					     KM_KICK_SIGNAL);
		}
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

void km_vm_set_timeout(struct km_vm *vm, unsigned int secs)
{
	vm->timeout_s = secs;
}

const char *km_vm_end_message(const struct km_vm *vm)
{
	return vm->end_msg[0] ? vm->end_msg : "the VM has not ended";
}

void *km_vm_guest(struct km_vm *vm, uint64_t gpa, uint64_t len)
{
	if (!vm->mem || gpa > vm->mem_size || len > vm->mem_size - gpa)
		return NULL;
	return vm->mem + gpa;
}

void km_vm_mark_dirty(struct km_vm *vm, uint64_t gpa, uint64_t len)
{
	km_dirty_mark(&vm->dirty, gpa, len);
}

int64_t km_vm_dirty_harvest(struct km_vm *vm, uint64_t *bitmap, size_t nwords)
{
	return km_dirty_harvest(&vm->dirty, bitmap, nwords);
}

int km_vm_irq_line(struct km_vm *vm, unsigned int irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	return ioctl(vm->fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}
