/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Legacy virtio-pci (virtio 0.9.5, the interface Linux's virtio_pci_legacy
 * drives): one I/O BAR with the common registers and the device's config
 * after them, split virtqueues at a guest page frame, INTx through the
 * in-kernel IOAPIC with an ISR that clears on read. virtio.c is the
 * transport and the virtqueue walker; virtio_blk.c and virtio_net.c are
 * the devices. No MSI-X, no event index, no indirect descriptors: none are
 * offered, so Linux uses none.
 *
 * Every guest-supplied value (queue PFN, descriptor index, address,
 * length, chain length) is validated before use; a malformed chain is
 * dropped, never followed.
 */
#ifndef KEMARI_VMM_VIRTIO_H
#define KEMARI_VMM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "err.h"
#include "pci.h"

struct km_vm;
struct km_virtio;

#define KM_VIRTIO_MAX_QUEUES 2
#define KM_VIRTIO_MAX_CHAIN 130 /* descriptors per request */
#define KM_VIRTIO_BAR_SIZE 0x40
#define KM_VIRTIO_CONFIG_MAX (KM_VIRTIO_BAR_SIZE - 0x14)

/* Legacy register offsets in BAR0. */
#define KM_VIRTIO_HOST_FEATURES 0x00
#define KM_VIRTIO_GUEST_FEATURES 0x04
#define KM_VIRTIO_QUEUE_PFN 0x08
#define KM_VIRTIO_QUEUE_NUM 0x0c
#define KM_VIRTIO_QUEUE_SEL 0x0e
#define KM_VIRTIO_QUEUE_NOTIFY 0x10
#define KM_VIRTIO_STATUS 0x12
#define KM_VIRTIO_ISR 0x13
#define KM_VIRTIO_CONFIG 0x14

#define KM_VIRTIO_STATUS_DRIVER_OK 0x04
#define KM_VIRTIO_PAGE_SHIFT 12
#define KM_VRING_ALIGN 4096
#define KM_VRING_DESC_F_NEXT 1
#define KM_VRING_DESC_F_WRITE 2
#define KM_VRING_DESC_F_INDIRECT 4

/* One descriptor of a chain, validated: [gpa, gpa + len) lies in RAM. */
struct km_vdesc {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
	void *host;
};

struct km_vchain {
	uint16_t head;
	unsigned int n;
	struct km_vdesc d[KM_VIRTIO_MAX_CHAIN];
};

struct km_virtq {
	uint16_t num; /* fixed by the device */
	uint32_t pfn; /* 0: not set up */
	uint16_t last_avail; /* next avail entry to take */
	uint16_t used_idx; /* our used->idx */
};

struct km_virtio_dev_ops {
	const char *name;
	/*
	 * Process queue @q after a QueueNotify (lock held). @tapped: this
	 * notify was tapped; if false the device must leave every request
	 * that would be output for the tapped notify that follows it.
	 */
	void (*notify)(struct km_virtio *v, unsigned int q, bool tapped);
	/* Whether a notify of @q carries output now (lock held, peek only). */
	bool (*has_output)(struct km_virtio *v, unsigned int q);
	/* The driver reset the device (status 0); lock held. */
	void (*reset)(struct km_virtio *v);
	/* Append the device's own counters to @buf (may be NULL). */
	void (*describe)(struct km_virtio *v, char *buf, size_t len);
	/* Free the device's own state (from the ioport's destroy). */
	void (*destroy)(struct km_virtio *v);
};

struct km_virtio {
	struct km_vm *vm;
	pthread_mutex_t lock;
	const struct km_virtio_dev_ops *ops;
	void *dev;
	uint16_t io_base;
	uint8_t irq;
	int irq_level;
	uint32_t host_features;
	uint32_t guest_features;
	uint16_t queue_sel;
	uint8_t status;
	uint8_t isr;
	unsigned int nqueues;
	struct km_virtq vq[KM_VIRTIO_MAX_QUEUES];
	uint8_t config[KM_VIRTIO_CONFIG_MAX];
	unsigned int config_len;
	/* Bytes of config the driver may write (e.g. none for blk). */
	unsigned int config_writable;
	uint64_t notifies, requests;
};

struct km_virtio_spec {
	const struct km_virtio_dev_ops *ops;
	void *dev;
	uint16_t pci_device; /* 0x1000 + ... (legacy transitional IDs) */
	uint16_t virtio_id; /* subsystem ID: 1 net, 2 block */
	uint32_t pci_class;
	uint16_t io_base;
	uint8_t irq;
	uint32_t host_features;
	unsigned int nqueues;
	uint16_t queue_num;
	const void *config;
	unsigned int config_len;
};

/*
 * km_virtio_create() - a legacy virtio-pci function: a PCI slot on the
 * host bridge, BAR0 registered with the dispatcher. On success the
 * transport owns @spec->dev (ops->destroy frees it when the VM goes).
 * Returns the transport or NULL with @err set (and errno).
 */
struct km_virtio *km_virtio_create(struct km_vm *vm,
				   const struct km_virtio_spec *spec,
				   struct km_err *err);

/*
 * km_virtq_pop() - take the next available chain of queue @q into @c
 * (advances last_avail). Returns 1, 0 if the ring is empty or not set up,
 * or -EINVAL if the chain is malformed (it is consumed and returned to the
 * driver with length 0, so a broken driver cannot wedge the queue).
 * km_virtq_peek() looks at the @nth pending chain without taking it.
 */
int km_virtq_pop(struct km_virtio *v, unsigned int q, struct km_vchain *c);
int km_virtq_peek(struct km_virtio *v, unsigned int q, unsigned int nth,
		  struct km_vchain *c);

/* km_virtq_pending() - how many chains wait in queue @q. */
unsigned int km_virtq_pending(struct km_virtio *v, unsigned int q);

/*
 * km_virtq_push() - return chain @head to the driver with @len bytes
 * written; the used ring's writes are recorded in the dirty log.
 */
void km_virtq_push(struct km_virtio *v, unsigned int q, uint16_t head,
		   uint32_t len);

/* km_virtio_interrupt() - set ISR bit 0 and raise INTx. Lock held. */
void km_virtio_interrupt(struct km_virtio *v);

/*
 * km_vchain_copy_from() / km_vchain_copy_to() - copy between a buffer and
 * the chain's readable (or writable) descriptors starting @off bytes in;
 * copy_to records the pages it wrote. Return the bytes copied.
 */
size_t km_vchain_copy_from(const struct km_vchain *c, size_t off, void *buf,
			   size_t len);
size_t km_vchain_copy_to(struct km_virtio *v, const struct km_vchain *c,
			 size_t off, const void *buf, size_t len);

#endif
