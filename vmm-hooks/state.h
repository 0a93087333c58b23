/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Whole-VM state (everything but RAM, which lives in the memfd and travels
 * as pages): per vCPU regs, sregs, XSAVE, XCRs, MSRs, LAPIC, vcpu events,
 * MP state, debug registers; the in-kernel PIC, IOAPIC and PIT; kvmclock;
 * every device's registers. The format (docs/vmm.md):
 *
 *   header  magic "KMVS", version, section count, payload length,
 *           XXH64 of the payload
 *   section type, index (vCPU, irqchip or port), length, then the bytes
 *
 * little-endian, fixed-width; the decoder validates every length against
 * the buffer and every fixed-size section against its structure before it
 * touches KVM.
 */
#ifndef KEMARI_VMM_STATE_H
#define KEMARI_VMM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KM_STATE_MAGIC 0x53564d4bu /* "KMVS" */
#define KM_STATE_VERSION 1

struct km_state_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags; /* 0 */
	uint32_t nsections;
	uint32_t reserved; /* 0 */
	uint64_t payload_len;
	uint64_t checksum; /* XXH64 of the payload, seed 0 */
};

struct km_state_sec {
	uint32_t type; /* enum km_state_type */
	uint32_t index;
	uint32_t len;
	uint32_t reserved; /* 0 */
};

enum km_state_type {
	KM_ST_VM = 1, /* struct km_state_vm */
	KM_ST_REGS = 10, /* per vCPU, index = vCPU */
	KM_ST_SREGS,
	KM_ST_XSAVE,
	KM_ST_XCRS,
	KM_ST_MSRS, /* n * struct kvm_msr_entry */
	KM_ST_LAPIC,
	KM_ST_EVENTS,
	KM_ST_MP_STATE,
	KM_ST_DEBUGREGS,
	KM_ST_IRQCHIP = 30, /* index = chip id (PIC master, slave, IOAPIC) */
	KM_ST_PIT,
	KM_ST_CLOCK,
	KM_ST_DEVICE = 40, /* index = the device's base port */
};

struct km_state_vm {
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t reserved;
};

struct km_vm;

/*
 * km_vm_state_save() - the whole VM's state, in a malloc'ed blob stored in
 * @blob/@len. Every vCPU must be out of KVM_RUN: from a tap hook (the
 * others are parked), before km_vm_run() or after it returned. The vCPU
 * at a tapped exit is saved with RIP at the OUT. Returns 0 or -errno.
 */
int km_vm_state_save(struct km_vm *vm, uint8_t **blob, size_t *len,
		     struct km_err *err);

/*
 * km_vm_state_restore() - load a blob from km_vm_state_save() into @vm,
 * a fresh VM of the same memory size and vCPU count whose RAM already
 * holds the saved pages; before km_vm_run(). The whole blob is validated
 * first (magic, version, lengths, checksum, every section present and of
 * the right size): -EINVAL/-EBADMSG with @err naming the problem and
 * nothing applied. Returns 0 or -errno.
 */
int km_vm_state_restore(struct km_vm *vm, const uint8_t *blob, size_t len,
			struct km_err *err);

#endif
