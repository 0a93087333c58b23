/* SPDX-License-Identifier: GPL-2.0 */
/*
 * km_run_stub: where the entry hook sends a KVM_RUN that must be held.
 *
 * The ftrace hook on kvm_arch_vcpu_ioctl_run() (km_hook.c) rewrites the
 * return address of its trampoline to this stub, so the stub starts with
 * the stack exactly as at the function's entry: the return address into
 * kvm_vcpu_ioctl() on top, the vcpu in %rdi. It calls km_gate_hold(),
 * which sleeps until the vCPU may run, and then *jumps* into the body of
 * kvm_arch_vcpu_ioctl_run(), past its fentry call: the body returns
 * straight to kvm_vcpu_ioctl(). A C wrapper would instead stay on the
 * stack for as long as the guest runs (KVM_RUN of a halted guest can last
 * forever), and the module could never be unloaded safely. Here module
 * code is on a stack only while km_gate_hold() waits, which unload wakes.
 */
#include <linux/linkage.h>
#include <asm/nospec-branch.h>

	.text
SYM_FUNC_START(km_run_stub)
	push	%rdi
	call	km_gate_hold
	pop	%rdi
	test	%eax, %eax
	jnz	1f
	/* 0: run. km_run_body is the fentry call's address + its size. */
	mov	km_run_body(%rip), %rax
	JMP_NOSPEC rax
1:
	/* -errno: KVM_RUN returns it without entering the guest. */
	RET
SYM_FUNC_END(km_run_stub)
