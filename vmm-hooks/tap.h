/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The event tap: which PIO exits are tapped (output made visible outside
 * the VM) and the hook called at each, with every other vCPU parked and the
 * exiting vCPU's RIP still at the OUT. The I/O is performed only after the
 * hook returns; the replicator will ship a checkpoint from the hook.
 */
#ifndef KEMARI_VMM_TAP_H
#define KEMARI_VMM_TAP_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define KM_TAP_MAX_RANGES 8

/*
 * The tapped set. Default: what the devices call output (UART THR writes).
 * "all" widens it to every OUT, port ranges add OUTs to given ports, and
 * "none" empties it.
 */
struct km_tap_policy {
	bool devices; /* ask each device's ops->tapped() */
	bool all_out; /* every OUT is tapped */
	unsigned int nranges;
	struct {
		uint16_t first, last;
	} ranges[KM_TAP_MAX_RANGES];
};

struct km_tap_event {
	unsigned int vcpu; /* the exiting vCPU's index */
	uint16_t port;
	uint8_t size; /* bytes per access */
	uint32_t count; /* accesses (string I/O: more than one) */
	const uint8_t *data; /* size * count bytes about to be written */
	const char *device; /* the device the port belongs to, or NULL */
};

struct km_vcpu;

/*
 * A tap hook: runs in the exiting vCPU's thread, may call vCPU ioctls on
 * @vcpu (KVM_GET_REGS etc.) and read guest memory. Non-zero stops the VM.
 */
typedef int (*km_tap_hook_fn)(struct km_vcpu *vcpu,
			      const struct km_tap_event *ev, void *opaque);

/* km_tap_policy_default() - the devices' own idea of output, nothing else. */
void km_tap_policy_default(struct km_tap_policy *p);

/*
 * km_tap_policy_parse() - parse a comma-separated tap spec: "devices",
 * "all", "none", a port "0x3f8" or a range "0xf0-0xff" (C number syntax).
 * "none" clears everything before it. Returns 0 or -EINVAL with @err set.
 */
int km_tap_policy_parse(struct km_tap_policy *p, const char *spec,
			struct km_err *err);

/*
 * km_tap_policy_match() - whether an OUT to @port is tapped given what the
 * device said (@device_tapped).
 */
bool km_tap_policy_match(const struct km_tap_policy *p, uint16_t port,
			 bool device_tapped);

/*
 * The recording hook of kemari-vmm's --tap-log: @opaque is a FILE *; one
 * line per tapped exit with the vCPU, its RIP (at the OUT), the port, the
 * bytes about to be written and how many other vCPUs were parked.
 */
int km_tap_log_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
		    void *opaque);

#endif
