// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-hold: keep one KVM VM (in-kernel irqchip, one vCPU whose LAPIC is
 * never software-enabled) alive for the whole lab run.
 *
 * Why: creating the first VM and destroying the last one flip static keys
 * in the lab kernel's KVM (preempt notifiers, the deferred apic_sw_disabled
 * key, which fires a second after a VM is destroyed). Each flip patches
 * kernel text with int3 and cross-CPU syncs, and under nested SVM on
 * multi-threaded TCG that patching intermittently livelocks: the lab hung
 * in VM create, and a guest stopped making progress for a minute while its
 * vCPU thread still answered kicks (measured, see docs/vmm.md). With one VM
 * held for the whole run the counts never return to zero, so no test's
 * create or destroy patches text. LAB-NOTES measured 0 hangs in 14 boots
 * this way.
 *
 * Prints "ready" once the VM exists, then sleeps until killed. Lab scripts
 * leave it running: the lab ends with poweroff -f, which destroys nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm, vm, vcpu;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "kvm-hold: /dev/kvm: %s\n", strerror(errno));
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "kvm-hold: KVM_CREATE_VM: %s\n",
			strerror(errno));
		return 1;
	}
	/* The irqchip before any vCPU, always (LAB-NOTES). */
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		fprintf(stderr, "kvm-hold: KVM_CREATE_IRQCHIP: %s\n",
			strerror(errno));
		return 1;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "kvm-hold: KVM_CREATE_VCPU: %s\n",
			strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
