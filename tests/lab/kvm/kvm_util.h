/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal KVM harness for the lab's self-tests, after the kernel's KVM
 * selftests: one VM with one memfd-backed slot at GPA 0, one vCPU in real
 * mode, guest code copied from the test binary. Failures abort the test
 * with a message naming the ioctl and errno.
 */
#ifndef KEMARI_TESTS_KVM_UTIL_H
#define KEMARI_TESTS_KVM_UTIL_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#define LAB_PAGE_SIZE 4096u
#define LAB_CODE_GPA 0x1000u

struct lab_vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_fd;
	int mem_fd;
	uint8_t *mem;
	size_t mem_size;
	struct kvm_run *run;
	size_t run_size;
};

/*
 * lab_vm_create() - a VM with an in-kernel irqchip, @mem_size bytes of
 * memfd-backed RAM at GPA 0 (dirty logging on when @log_dirty), the code
 * between @code and @code_end copied to LAB_CODE_GPA, and one vCPU in real
 * mode with CS:IP at it. The irqchip comes before the vCPU: see LAB-NOTES
 * (a vCPU without one flips a static key whose patching livelocks under
 * multi-threaded TCG).
 */
void lab_vm_create(struct lab_vm *vm, size_t mem_size, int log_dirty,
		   const void *code, const void *code_end);

/* lab_vm_destroy() - close and unmap everything lab_vm_create() made. */
void lab_vm_destroy(struct lab_vm *vm);

/* lab_vcpu_run() - one KVM_RUN; returns 0 or -errno (EINTR included). */
int lab_vcpu_run(struct lab_vm *vm);

/*
 * lab_vcpu_run_io() - run until the next exit, which must be a KVM_EXIT_IO
 * OUT of one byte; returns the port and stores the byte in @val.
 */
uint16_t lab_vcpu_run_io(struct lab_vm *vm, uint8_t *val);

/* lab_vcpu_rip() - the vCPU's RIP from KVM_GET_REGS. */
uint64_t lab_vcpu_rip(struct lab_vm *vm);

/*
 * lab_vm_dirty_pages() - KVM_GET_DIRTY_LOG of slot 0, as a list of page
 * numbers in @pages (at most @max); returns how many.
 */
int lab_vm_dirty_pages(struct lab_vm *vm, uint64_t *pages, int max);

/* lab_exit_reason_str() - a readable name for a KVM exit reason. */
const char *lab_exit_reason_str(uint32_t reason);

#endif
