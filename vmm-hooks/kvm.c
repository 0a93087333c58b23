// SPDX-License-Identifier: GPL-2.0
/*
 * Opening KVM. Every capability below is used somewhere in the VMM or the
 * state save path; checking them all up front turns "ioctl failed: EINVAL"
 * in the middle of a run into one sentence before anything starts.
 */
#include "kvm.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct kvm_cap_need {
	int cap;
	const char *name;
	const char *why;
};

static const struct kvm_cap_need caps_needed[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP",
	  "the in-kernel PIC/IOAPIC/LAPIC" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY",
	  "memfd-backed guest RAM" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "the TSS region" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "the in-kernel PIT" },
	{ KVM_CAP_PIT_STATE2, "KVM_CAP_PIT_STATE2", "saving the PIT" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_SET_CPUID2" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "starting and saving vCPUs" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT",
	  "stopping vCPUs at an event-tap point" },
	{ KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
	  "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2",
	  "harvesting dirty pages per epoch" },
	{ KVM_CAP_XSAVE, "KVM_CAP_XSAVE", "saving the FPU/AVX state" },
	{ KVM_CAP_XCRS, "KVM_CAP_XCRS", "saving XCR0" },
	{ KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS",
	  "saving pending exceptions and interrupts" },
	{ KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS", "saving debug registers" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK", "saving kvmclock" },
};

void km_kvm_cpu_probe(struct km_kvm *kvm)
{
	unsigned int a, b, c, d;

	memset(kvm->vendor, 0, sizeof(kvm->vendor));
	kvm->svm = kvm->vmx = false;
	if (!__get_cpuid(0, &a, &b, &c, &d))
		return;
	memcpy(kvm->vendor, &b, 4);
	memcpy(kvm->vendor + 4, &d, 4);
	memcpy(kvm->vendor + 8, &c, 4);
	if (__get_cpuid(1, &a, &b, &c, &d))
		kvm->vmx = c & (1u << 5);
	if (__get_cpuid(0x80000001, &a, &b, &c, &d))
		kvm->svm = c & (1u << 2);
}

/* What to do when KVM is missing, tailored to what CPUID says. */
static const char *kvm_advice(const struct km_kvm *kvm)
{
	if (kvm->svm)
		return "load kvm_amd (modprobe kvm_amd)";
	if (kvm->vmx)
		return "load kvm_intel (modprobe kvm_intel)";
	if (!strcmp(kvm->vendor, "AuthenticAMD"))
		return "this AMD CPU does not advertise SVM: enable "
		       "virtualization (SVM) in firmware, or nested "
		       "virtualization in the hypervisor, then load kvm_amd";
	if (!strcmp(kvm->vendor, "GenuineIntel"))
		return "this Intel CPU does not advertise VMX: enable "
		       "virtualization (VT-x) in firmware, or nested "
		       "virtualization in the hypervisor, then load kvm_intel";
	return "load kvm_intel or kvm_amd, or enable virtualization in "
	       "firmware";
}

static int open_device(struct km_kvm *kvm, const char *path, struct km_err *err)
{
	struct stat st;
	int e;

	if (stat(path, &st) < 0) {
		e = errno;
		km_err_set(err, "KVM is not available: %s is missing; %s", path,
			   kvm_advice(kvm));
		return -e;
	}
	if (!S_ISCHR(st.st_mode)) {
		km_err_set(err,
			   "KVM is not available: %s is not a character "
			   "device; point --kvm-device at /dev/kvm",
			   path);
		return -ENODEV;
	}
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		e = errno;
		if (e == EACCES || e == EPERM)
			km_err_set(err,
				   "KVM is not available: %s cannot be "
				   "opened (%s); run as root or join the "
				   "group that owns it (usually kvm)",
				   path, strerror(e));
		else
			km_err_set(err,
				   "KVM is not available: opening %s "
				   "failed (%s); %s",
				   path, strerror(e), kvm_advice(kvm));
		return -e;
	}
	return 0;
}

static int check_caps(struct km_kvm *kvm, struct km_err *err)
{
	size_t i;

	for (i = 0; i < sizeof(caps_needed) / sizeof(caps_needed[0]); i++) {
		if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, caps_needed[i].cap) > 0)
			continue;
		km_err_set(err,
			   "KVM lacks %s, needed for %s; run kemari-vmm "
			   "on a host kernel of Linux 5.10 or later",
			   caps_needed[i].name, caps_needed[i].why);
		return -ENOTSUP;
	}
	kvm->max_vcpus = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus =
			ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (kvm->max_vcpus <= 0)
		kvm->max_vcpus = 4;
	return 0;
}

int km_kvm_open(struct km_kvm *kvm, const char *path, struct km_err *err)
{
	int r, e;

	kvm->fd = -1;
	km_kvm_cpu_probe(kvm);
	r = open_device(kvm, path ? path : KM_KVM_DEFAULT_PATH, err);
	if (r < 0)
		return r;
	r = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (r < 0) {
		e = errno;
		km_err_set(err,
			   "KVM is not available: %s is not a KVM device "
			   "(KVM_GET_API_VERSION failed: %s); point "
			   "--kvm-device at /dev/kvm",
			   path ? path : KM_KVM_DEFAULT_PATH, strerror(e));
		r = -e;
		goto err_close;
	}
	if (r != KVM_API_VERSION) {
		km_err_set(err,
			   "KVM API version is %d, kemari-vmm needs %d; "
			   "this kernel's KVM is not supported",
			   r, KVM_API_VERSION);
		r = -ENOTSUP;
		goto err_close;
	}
	r = check_caps(kvm, err);
	if (r < 0)
		goto err_close;
	kvm->run_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size < (int)sizeof(struct kvm_run)) {
		km_err_set(err,
			   "KVM_GET_VCPU_MMAP_SIZE returned %d; this "
			   "kernel's KVM is not supported",
			   kvm->run_size);
		r = -ENOTSUP;
		goto err_close;
	}
	return 0;

err_close:
	close(kvm->fd);
	kvm->fd = -1;
	return r;
}

void km_kvm_close(struct km_kvm *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	kvm->fd = -1;
}

const char *km_kvm_exit_name(unsigned int reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR",
		[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_OSI] = "OSI",
		[KVM_EXIT_WATCHDOG] = "WATCHDOG",
		[KVM_EXIT_EPR] = "EPR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
		[KVM_EXIT_HYPERV] = "HYPERV",
		[KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
		[KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
		[KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
		[KVM_EXIT_X86_BUS_LOCK] = "X86_BUS_LOCK",
	};

	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "unknown";
}

static const char *internal_suberror(unsigned int sub)
{
	switch (sub) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "exit during event delivery";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected hardware exit reason";
	default:
		return "unknown suberror";
	}
}

static void describe_internal(const struct kvm_run *run, char *buf, size_t len)
{
	unsigned int i, n = run->internal.ndata;
	int off;

	off = snprintf(buf, len,
		       "KVM internal error: suberror %u (%s), "
		       "%u data words:",
		       run->internal.suberror,
		       internal_suberror(run->internal.suberror), n);
	if (n > sizeof(run->internal.data) / sizeof(run->internal.data[0]))
		n = sizeof(run->internal.data) / sizeof(run->internal.data[0]);
	for (i = 0; i < n && off > 0 && (size_t)off < len; i++)
		off += snprintf(buf + off, len - off, " %#llx",
				(unsigned long long)run->internal.data[i]);
}

void km_kvm_exit_describe(const struct kvm_run *run, char *buf, size_t len)
{
	switch (run->exit_reason) {
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(buf, len,
			 "KVM could not enter the guest: hardware "
			 "entry failure reason %#llx on host CPU %u",
			 (unsigned long long)
				 run->fail_entry.hardware_entry_failure_reason,
			 run->fail_entry.cpu);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		describe_internal(run, buf, len);
		break;
	case KVM_EXIT_SHUTDOWN:
		snprintf(buf, len,
			 "the guest triple-faulted (KVM_EXIT_SHUTDOWN)");
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		snprintf(buf, len, "guest system event type %u (%s)",
			 run->system_event.type,
			 run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ?
				 "shutdown" :
			 run->system_event.type == KVM_SYSTEM_EVENT_RESET ?
				 "reset" :
			 run->system_event.type == KVM_SYSTEM_EVENT_CRASH ?
				 "crash" :
				 "other");
		break;
	case KVM_EXIT_MMIO:
		snprintf(buf, len, "MMIO %s of %u bytes at %#llx",
			 run->mmio.is_write ? "write" : "read", run->mmio.len,
			 (unsigned long long)run->mmio.phys_addr);
		break;
	case KVM_EXIT_IO:
		snprintf(buf, len, "PIO %s of %u x %u bytes at port %#x",
			 run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
			 run->io.count, run->io.size, run->io.port);
		break;
	default:
		snprintf(buf, len,
			 "exit reason %u (%s) not handled by "
			 "kemari-vmm",
			 run->exit_reason, km_kvm_exit_name(run->exit_reason));
		break;
	}
}
