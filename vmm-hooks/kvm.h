/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM itself: opening /dev/kvm with every check kemari relies on, and
 * naming KVM_RUN exits for reports.
 */
#ifndef KEMARI_VMM_KVM_H
#define KEMARI_VMM_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define KM_KVM_DEFAULT_PATH "/dev/kvm"

struct km_kvm {
	int fd;
	int run_size; /* KVM_GET_VCPU_MMAP_SIZE */
	int max_vcpus; /* KVM_CAP_MAX_VCPUS (or NR_VCPUS) */
	char vendor[13]; /* CPUID leaf 0 */
	bool svm; /* CPUID 0x80000001 ECX.SVM */
	bool vmx; /* CPUID 1 ECX.VMX */
};

/*
 * km_kvm_cpu_probe() - read the host CPU's vendor string and whether CPUID
 * advertises SVM or VMX into @kvm (no KVM needed).
 */
void km_kvm_cpu_probe(struct km_kvm *kvm);

/*
 * km_kvm_open() - open the KVM device at @path (NULL: /dev/kvm), check the
 * API version is 12 and that every capability kemari relies on is there.
 * On failure @err holds one sentence naming what is missing and what to do,
 * @kvm->fd is -1 and -errno is returned.
 */
int km_kvm_open(struct km_kvm *kvm, const char *path, struct km_err *err);

/* km_kvm_close() - close what km_kvm_open() opened; safe when it failed. */
void km_kvm_close(struct km_kvm *kvm);

/* km_kvm_exit_name() - the KVM_EXIT_* name of @reason, or "unknown". */
const char *km_kvm_exit_name(unsigned int reason);

/*
 * km_kvm_exit_describe() - one line describing the exit in @run with the
 * detail KVM gives for it (FAIL_ENTRY hardware reason, INTERNAL_ERROR
 * suberror and data, SYSTEM_EVENT type, unknown reasons by number).
 */
void km_kvm_exit_describe(const struct kvm_run *run, char *buf, size_t len);

#endif
