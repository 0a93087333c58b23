/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kemari_gate.h - the userspace side of kemari.ko's sync gate.
 *
 * km_gate_open() opens /dev/kemari if the module is loaded. Without it
 * kemari still works with its userspace-only ordering (the VMM does not
 * resume a vCPU before the ack) and says so: km_gate_describe() gives
 * "kernel gate: absent". With it, the agent registers each VM
 * (km_gate_register()), reads armed events, and acks epochs; the kernel
 * then also refuses to re-enter a held vCPU from any thread.
 *
 * Functions return 0 (or a count) or -errno; nothing is logged.
 */
#ifndef KEMARI_GATE_H
#define KEMARI_GATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/kemari.h>

#define KM_GATE_DEFAULT_PATH "/dev/" KEMARI_DEVICE_NAME

struct km_gate;
struct km_gate_vm;

/**
 * km_gate_open() - open the kernel gate
 * @path: the device, NULL for KM_GATE_DEFAULT_PATH
 * @out: the handle, on success
 *
 * Return: 0; -ENOENT when the module is not loaded (the gate is absent);
 * -EPROTO when the device answers with another ABI; another -errno when
 * it cannot be used (e.g. -EACCES, -ENOTTY for a device that is not
 * kemari's).
 */
int km_gate_open(const char *path, struct km_gate **out);

/* km_gate_close() - close a gate opened by km_gate_open(); NULL is fine. */
void km_gate_close(struct km_gate *gate);

/* km_gate_features() - KEMARI_FEATURE_* bits of the loaded module. */
uint64_t km_gate_features(const struct km_gate *gate);

/**
 * km_gate_describe() - one status line for humans and status output
 * @gate: the gate, or NULL when km_gate_open() failed
 * @err: what km_gate_open() returned (ignored when @gate is set)
 * @buf: where to write the line, @len bytes
 *
 * "kernel gate: present (ABI 1, features gate,fault)", "kernel gate:
 * absent" (-ENOENT) or "kernel gate: unusable (<reason>)".
 *
 * Return: @buf.
 */
const char *km_gate_describe(const struct km_gate *gate, int err, char *buf,
			     size_t len);

/**
 * km_gate_register() - register a KVM VM with the gate
 * @gate: an open gate
 * @vm_fd: the KVM VM fd
 * @ranges: tapped port ranges, @n of them (at most KEMARI_MAX_RANGES)
 * @flags: KEMARI_REG_*
 * @out: the registration (its fd is the agent file)
 *
 * Return: 0; -EBUSY if another agent holds the VM; -EINVAL for a bad
 * argument or a @vm_fd that is not a KVM VM.
 */
int km_gate_register(struct km_gate *gate, int vm_fd,
		     const struct kemari_port_range *ranges, size_t n,
		     uint32_t flags, struct km_gate_vm **out);

/* km_gate_vm_fd() - the agent file, for poll()/epoll. */
int km_gate_vm_fd(const struct km_gate_vm *vm);

/**
 * km_gate_read_events() - armed events, waiting up to @timeout_ms
 * (-1: forever, 0: not at all)
 *
 * Return: the number of events stored in @ev (at most @max), 0 on timeout.
 */
int km_gate_read_events(struct km_gate_vm *vm, struct kemari_event *ev,
			size_t max, int timeout_ms);

/* km_gate_ack() - ack every epoch up to @epoch; held vCPUs may run. */
int km_gate_ack(struct km_gate_vm *vm, uint64_t epoch);

/* km_gate_add_thread() - watch thread @tid (0: the caller) for faults. */
int km_gate_add_thread(struct km_gate_vm *vm, pid_t tid);

/* km_gate_set_eventfd() - signalled on a fault or agent loss; -1: none. */
int km_gate_set_eventfd(struct km_gate_vm *vm, int efd);

/* km_gate_vm_status() - the registration's state and counters. */
int km_gate_vm_status(struct km_gate_vm *vm, struct kemari_vm_status *st);

/*
 * km_gate_query() - status of @vm_fd's registration for any caller (the
 * VMM after agent loss); -ENOENT if it is not registered.
 */
int km_gate_query(struct km_gate *gate, int vm_fd, struct kemari_vm_status *st);

/* km_gate_unregister() - release the VM and free @vm. */
int km_gate_unregister(struct km_gate_vm *vm);

/*
 * km_gate_vm_close() - close the agent file without unregistering: the
 * kernel treats it as agent loss (the registration's policy applies).
 * NULL is fine.
 */
void km_gate_vm_close(struct km_gate_vm *vm);

#endif /* KEMARI_GATE_H */
