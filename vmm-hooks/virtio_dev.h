/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The virtio-pci devices (virtio_blk.c, virtio_net.c): where they sit and
 * what backs them. Fixed I/O BARs and IOAPIC pins, so a restored VM finds
 * its devices where it left them.
 */
#ifndef KEMARI_VMM_VIRTIO_DEV_H
#define KEMARI_VMM_VIRTIO_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct km_vm;

/*
 * BAR0 of the n-th virtio device and its INTA pin (MP table): one pin per
 * device (the ISA lines nothing else uses here), so no line is shared
 * and each device drives its own level with KVM_IRQ_LINE.
 */
#define KM_MAX_VIRTIO 4
#define KM_MAX_DISKS 3
#define KM_VIRTIO_IO_BASE(n) (0xc000 + 0x40 * (n))
#define KM_VIRTIO_IRQ(n) ((const uint8_t[]){ 10, 11, 5, 9 }[(n) % 4])

struct km_virtio_blk_cfg {
	const char *path; /* a raw image, a regular file */
	bool read_only;
	const char *id; /* GET_ID: "kemari-<id>" */
	uint16_t io_base;
	uint8_t irq;
};

/*
 * km_virtio_blk_check() - whether @cfg->path would do as a disk (opens it
 * as km_virtio_blk_init() would); 0 or -errno with @err set. For
 * reporting user errors before KVM is opened.
 */
int km_virtio_blk_check(const struct km_virtio_blk_cfg *cfg,
			struct km_err *err);

/* km_virtio_blk_init() - a virtio-blk device; 0 or -errno with @err set. */
int km_virtio_blk_init(struct km_vm *vm, const struct km_virtio_blk_cfg *cfg,
		       struct km_err *err);

struct km_virtio_net_cfg {
	const char *ifname; /* an existing TAP interface (or one we create) */
	uint8_t mac[6]; /* all zero: 52:54:00:4b:4d:<n> */
	uint16_t io_base;
	uint8_t irq;
};

/*
 * km_virtio_net_init() - a virtio-net device on TAP @cfg->ifname, with a
 * receive thread started by km_virtio_net_start(); 0 or -errno.
 */
int km_virtio_net_init(struct km_vm *vm, const struct km_virtio_net_cfg *cfg,
		       struct km_err *err);

#endif
