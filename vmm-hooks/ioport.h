/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The port I/O dispatcher: every device registers its port range once with
 * an ops table, and one function routes every KVM_EXIT_IO. The event tap
 * lives here, around the dispatch, not in the devices: a device only
 * answers "would this OUT make output visible outside the VM?".
 */
#ifndef KEMARI_VMM_IOPORT_H
#define KEMARI_VMM_IOPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct km_vm;
struct km_vcpu;
struct km_ioport;

struct km_ioport_ops {
	const char *name;
	/* A read of @size bytes at @port: fill @data (pre-set to all ones). */
	void (*in)(struct km_ioport *io, uint16_t port, uint8_t *data,
		   unsigned int size);
	/* A write of @size bytes at @port. */
	void (*out)(struct km_ioport *io, uint16_t port, const uint8_t *data,
		    unsigned int size);
	/*
	 * Whether this OUT of @data makes output visible outside the VM (a
	 * tapped exit). NULL means never. Called before any vCPU is parked,
	 * without the dispatcher holding anything: a device takes its own
	 * lock. A device whose answer depends on guest memory (a virtqueue)
	 * must, in out(), act only on what it would have tapped when
	 * km_ioport_tapped_now() says this OUT was not tapped.
	 */
	bool (*tapped)(struct km_ioport *io, uint16_t port, const uint8_t *data,
		       unsigned int size);
	/*
	 * Device state for a checkpoint: copy at most @cap bytes into @buf
	 * and return the size (NULL: the device has no state).
	 */
	size_t (*save)(struct km_ioport *io, void *buf, size_t cap);
	/* Load what save() wrote; -EINVAL if @len is not what it wrote. */
	int (*restore)(struct km_ioport *io, const void *buf, size_t len);
	/* One line of counters for kemari-vmm's summary (NULL: none). */
	void (*describe)(struct km_ioport *io, char *buf, size_t len);
	/* Free @io->priv; called once by km_vm_destroy(). */
	void (*destroy)(struct km_ioport *io);
};

struct km_ioport {
	uint16_t base;
	uint16_t len;
	const struct km_ioport_ops *ops;
	void *priv;
	struct km_vm *vm;
};

/*
 * km_ioport_register() - route ports [@base, @base + @len) to @ops with
 * @priv. Returns 0, -EEXIST if the range overlaps a registered one, or
 * -ENOSPC when the table is full. Must be called before km_vm_run().
 */
int km_ioport_register(struct km_vm *vm, uint16_t base, uint16_t len,
		       const struct km_ioport_ops *ops, void *priv);

/*
 * km__ioport_dispatch() - handle the KVM_EXIT_IO in @vcpu's kvm_run:
 * classify it (tapped or not), run the tap hook with the other vCPUs parked
 * if tapped, then perform the I/O. Returns 0 or -errno (the hook failed).
 */
int km__ioport_dispatch(struct km_vcpu *vcpu);

/*
 * km_ioport_tapped_now() - in a device's out(): whether the OUT being
 * performed was tapped (the hook ran with the other vCPUs parked).
 */
bool km_ioport_tapped_now(void);

/* km__ioport_destroy_all() - call every registered device's destroy. */
void km__ioport_destroy_all(struct km_vm *vm);

#endif
