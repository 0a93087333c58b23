// SPDX-License-Identifier: GPL-2.0
#include "kvm_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static void __attribute__((noreturn)) die(const char *what)
{
	int e = errno;

	fprintf(stderr, "kvm_util: %s: %s\n", what, strerror(e));
	if (e == ENOENT)
		fprintf(stderr, "kvm_util: /dev/kvm is missing; load kvm_amd "
				"or kvm_intel first\n");
	exit(1);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int r = ioctl(fd, req, arg);

	if (r < 0)
		die(what);
	return r;
}

static void setup_memory(struct lab_vm *vm, int log_dirty)
{
	struct kvm_userspace_memory_region region = { 0 };

	vm->mem_fd = memfd_create("lab-guest-ram", MFD_CLOEXEC);
	if (vm->mem_fd < 0)
		die("memfd_create");
	if (ftruncate(vm->mem_fd, vm->mem_size) < 0)
		die("ftruncate guest RAM");
	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->mem_fd, 0);
	if (vm->mem == MAP_FAILED)
		die("mmap guest RAM");
	region.slot = 0;
	region.flags = log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
	region.guest_phys_addr = 0;
	region.memory_size = vm->mem_size;
	region.userspace_addr = (uintptr_t)vm->mem;
	xioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region,
	       "KVM_SET_USER_MEMORY_REGION");
}

static void setup_real_mode(struct lab_vm *vm)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };

	xioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	xioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	regs.rip = LAB_CODE_GPA;
	regs.rflags = 0x2;
	xioctl(vm->vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

void lab_vm_create(struct lab_vm *vm, size_t mem_size, int log_dirty,
		   const void *code, const void *code_end)
{
	size_t len = (const uint8_t *)code_end - (const uint8_t *)code;
	int mmap_size;

	memset(vm, 0, sizeof(*vm));
	vm->mem_size = mem_size;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		die("open /dev/kvm");
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		errno = EINVAL;
		die("KVM_GET_API_VERSION is not 12");
	}
	vm->vm_fd = xioctl(vm->kvm_fd, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	xioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	setup_memory(vm, log_dirty);
	memcpy(vm->mem + LAB_CODE_GPA, code, len);

	vm->vcpu_fd = xioctl(vm->vm_fd, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	mmap_size = xioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0,
			   "KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = mmap_size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");
	setup_real_mode(vm);
}

void lab_vm_destroy(struct lab_vm *vm)
{
	if (vm->run && vm->run != MAP_FAILED)
		munmap(vm->run, vm->run_size);
	if (vm->mem && vm->mem != MAP_FAILED)
		munmap(vm->mem, vm->mem_size);
	if (vm->vcpu_fd > 0)
		close(vm->vcpu_fd);
	if (vm->mem_fd > 0)
		close(vm->mem_fd);
	if (vm->vm_fd > 0)
		close(vm->vm_fd);
	if (vm->kvm_fd > 0)
		close(vm->kvm_fd);
	memset(vm, 0, sizeof(*vm));
}

int lab_vcpu_run(struct lab_vm *vm)
{
	return ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0 ? -errno : 0;
}

uint16_t lab_vcpu_run_io(struct lab_vm *vm, uint8_t *val)
{
	struct kvm_run *run = vm->run;
	int r;

	do
		r = lab_vcpu_run(vm);
	while (r == -EINTR);
	if (r < 0) {
		errno = -r;
		die("KVM_RUN");
	}
	if (run->exit_reason != KVM_EXIT_IO ||
	    run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1) {
		fprintf(stderr, "kvm_util: expected a 1-byte OUT, got exit %s "
				"(%u)\n", lab_exit_reason_str(run->exit_reason),
			run->exit_reason);
		exit(1);
	}
	*val = *((uint8_t *)run + run->io.data_offset);
	return run->io.port;
}

uint64_t lab_vcpu_rip(struct lab_vm *vm)
{
	struct kvm_regs regs;

	xioctl(vm->vcpu_fd, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	return regs.rip;
}

int lab_vm_dirty_pages(struct lab_vm *vm, uint64_t *pages, int max)
{
	size_t npages = vm->mem_size / LAB_PAGE_SIZE;
	size_t words = (npages + 63) / 64;
	struct kvm_dirty_log log = { .slot = 0 };
	uint64_t *bitmap = calloc(words, sizeof(uint64_t));
	int n = 0;

	if (!bitmap)
		die("calloc dirty bitmap");
	log.dirty_bitmap = bitmap;
	xioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
	for (size_t i = 0; i < npages && n < max; i++)
		if (bitmap[i / 64] & (1ull << (i % 64)))
			pages[n++] = i;
	free(bitmap);
	return n;
}

const char *lab_exit_reason_str(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO:
		return "IO";
	case KVM_EXIT_HLT:
		return "HLT";
	case KVM_EXIT_MMIO:
		return "MMIO";
	case KVM_EXIT_SHUTDOWN:
		return "SHUTDOWN (guest triple fault)";
	case KVM_EXIT_FAIL_ENTRY:
		return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR:
		return "INTERNAL_ERROR";
	default:
		return "unknown";
	}
}
