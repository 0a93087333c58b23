// SPDX-License-Identifier: GPL-2.0
/*
 * The PCI host bridge's type 1 configuration mechanism with an empty bus:
 * the address register at 0xcf8 reads back what was written (Linux checks
 * that before trusting type 1), and every configuration read finds no
 * device (all ones). virtio-pci devices will answer here later.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "vm.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

struct pci {
	pthread_mutex_t lock;
	uint32_t address;
};

static void pci_in(struct km_ioport *io, uint16_t port, uint8_t *data,
		   unsigned int size)
{
	struct pci *p = io->priv;
	unsigned int off = port - PCI_CONFIG_ADDRESS;

	/* Data ports: no device on bus 0, so the preset all-ones stands. */
	if (port >= PCI_CONFIG_DATA)
		return;
	pthread_mutex_lock(&p->lock);
	if (off + size <= 4)
		memcpy(data, (uint8_t *)&p->address + off, size);
	pthread_mutex_unlock(&p->lock);
}

static void pci_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		    unsigned int size)
{
	struct pci *p = io->priv;
	unsigned int off = port - PCI_CONFIG_ADDRESS;

	if (port >= PCI_CONFIG_DATA)
		return;
	pthread_mutex_lock(&p->lock);
	if (off + size <= 4)
		memcpy((uint8_t *)&p->address + off, data, size);
	pthread_mutex_unlock(&p->lock);
}

static size_t pci_save(struct km_ioport *io, void *buf, size_t cap)
{
	struct pci *p = io->priv;

	if (cap < 4)
		return 0;
	pthread_mutex_lock(&p->lock);
	memcpy(buf, &p->address, 4);
	pthread_mutex_unlock(&p->lock);
	return 4;
}

static int pci_restore(struct km_ioport *io, const void *buf, size_t len)
{
	struct pci *p = io->priv;

	if (len != 4)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	memcpy(&p->address, buf, 4);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pci_destroy(struct km_ioport *io)
{
	struct pci *p = io->priv;

	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct km_ioport_ops pci_ops = {
	.name = "pci-host",
	.in = pci_in,
	.out = pci_out,
	.save = pci_save,
	.restore = pci_restore,
	.destroy = pci_destroy,
};

int km_pci_init(struct km_vm *vm, struct km_err *err)
{
	struct pci *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	r = km_ioport_register(vm, PCI_CONFIG_ADDRESS, 8, &pci_ops, p);
	if (r < 0) {
		km_err_set(err, "registering the PCI host bridge at %#x failed",
			   PCI_CONFIG_ADDRESS);
		pci_destroy(&(struct km_ioport){ .priv = p });
	}
	return r;
}
