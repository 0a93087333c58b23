// SPDX-License-Identifier: GPL-2.0
/*
 * The PCI host bridge: the type 1 configuration mechanism at 0xcf8-0xcff
 * and the configuration space of bus 0. Slot 0 is the bridge itself (an
 * i440FX host bridge ID: Linux's pci_sanity_check() wants a host bridge
 * before it trusts type 1); devices (virtio-pci) take slots 1 and up, each
 * function 0 only, with one I/O BAR at a fixed address and INTA wired to a
 * fixed IOAPIC pin that the MP table announces (mptable.c).
 *
 * BARs are not relocatable: a BAR write of all ones is a size probe
 * (answered with the size), anything else leaves the fixed address in
 * place. Linux keeps firmware-assigned BARs, so it never tries to move
 * them. Writable: command, cache line size, latency, interrupt line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "pci.h"
#include "vm.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc
#define CFG_ENABLE 0x80000000u

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_CLASS_REVISION 0x08
#define PCI_CACHE_LINE_SIZE 0x0c
#define PCI_LATENCY_TIMER 0x0d
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d
#define BAR_IO 0x1u

struct pci_slot {
	bool present;
	uint8_t cfg[256];
	uint16_t io_size; /* BAR0 size; 0: no BAR */
	uint8_t irq; /* the IOAPIC pin INTA is wired to (fixed) */
	bool bar_probe; /* the last BAR0 write was all ones */
};

struct km_pci {
	pthread_mutex_t lock;
	uint32_t address;
	struct pci_slot slot[KM_PCI_SLOTS];
};

/* The writable bytes of one slot, as a checkpoint carries them. */
struct pci_slot_state {
	uint16_t command;
	uint8_t cache_line, latency, irq_line, bar_probe;
	uint8_t reserved[2];
};

struct pci_state {
	uint32_t address;
	uint32_t reserved;
	struct pci_slot_state slot[KM_PCI_SLOTS];
};

static void put16(uint8_t *cfg, unsigned int off, uint16_t v)
{
	memcpy(cfg + off, &v, 2);
}

static void put32(uint8_t *cfg, unsigned int off, uint32_t v)
{
	memcpy(cfg + off, &v, 4);
}

static void slot_init(struct pci_slot *s, const struct km_pci_dev *dev)
{
	memset(s, 0, sizeof(*s));
	s->present = true;
	put16(s->cfg, PCI_VENDOR_ID, dev->vendor);
	put16(s->cfg, PCI_DEVICE_ID, dev->device);
	put32(s->cfg, PCI_CLASS_REVISION, dev->class_rev);
	put16(s->cfg, PCI_SUBSYSTEM_VENDOR_ID, dev->subsys_vendor);
	put16(s->cfg, PCI_SUBSYSTEM_ID, dev->subsys_id);
	if (dev->io_size) {
		s->io_size = dev->io_size;
		put32(s->cfg, PCI_BAR0, dev->io_base | BAR_IO);
		s->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA */
		s->cfg[PCI_INTERRUPT_LINE] = dev->irq;
		s->irq = dev->irq;
	}
}

/* The slot the address register selects, or NULL (no such device). */
static struct pci_slot *selected(struct km_pci *p)
{
	uint32_t a = p->address;
	unsigned int bus = (a >> 16) & 0xff, dev = (a >> 11) & 0x1f;
	unsigned int fn = (a >> 8) & 0x7;

	if (!(a & CFG_ENABLE) || bus || fn || dev >= KM_PCI_SLOTS ||
	    !p->slot[dev].present)
		return NULL;
	return &p->slot[dev];
}

static void cfg_read(struct pci_slot *s, unsigned int off, uint8_t *data,
		     unsigned int size)
{
	memcpy(data, s->cfg + off, size);
	if (s->bar_probe && off < PCI_BAR0 + 4 && off + size > PCI_BAR0) {
		uint32_t mask = ~(uint32_t)(s->io_size - 1) | BAR_IO;
		unsigned int i;

		for (i = 0; i < size; i++)
			if (off + i >= PCI_BAR0 && off + i < PCI_BAR0 + 4)
				data[i] = (uint8_t)(mask >>
						    (8 * (off + i - PCI_BAR0)));
	}
}

static void cfg_write(struct pci_slot *s, unsigned int off, const uint8_t *data,
		      unsigned int size)
{
	unsigned int i;

	if (off == PCI_BAR0 && size == 4) {
		uint32_t v;

		memcpy(&v, data, 4);
		/* Only a size probe changes what reads return. */
		s->bar_probe = s->io_size && v == 0xffffffffu;
		return;
	}
	for (i = 0; i < size; i++) {
		unsigned int o = off + i;

		if (o == PCI_COMMAND || o == PCI_COMMAND + 1 ||
		    o == PCI_CACHE_LINE_SIZE || o == PCI_LATENCY_TIMER ||
		    o == PCI_INTERRUPT_LINE)
			s->cfg[o] = data[i];
	}
}

static void pci_in(struct km_ioport *io, uint16_t port, uint8_t *data,
		   unsigned int size)
{
	struct km_pci *p = io->priv;
	unsigned int off = port - PCI_CONFIG_ADDRESS;
	struct pci_slot *s;

	pthread_mutex_lock(&p->lock);
	if (port < PCI_CONFIG_DATA) {
		if (off + size <= 4)
			memcpy(data, (uint8_t *)&p->address + off, size);
	} else {
		off = (p->address & 0xfc) + (port - PCI_CONFIG_DATA);
		s = selected(p);
		/* No device: the preset all ones stand. */
		if (s && off + size <= sizeof(s->cfg))
			cfg_read(s, off, data, size);
	}
	pthread_mutex_unlock(&p->lock);
}

static void pci_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		    unsigned int size)
{
	struct km_pci *p = io->priv;
	unsigned int off = port - PCI_CONFIG_ADDRESS;
	struct pci_slot *s;

	pthread_mutex_lock(&p->lock);
	if (port < PCI_CONFIG_DATA) {
		if (off + size <= 4)
			memcpy((uint8_t *)&p->address + off, data, size);
	} else {
		off = (p->address & 0xfc) + (port - PCI_CONFIG_DATA);
		s = selected(p);
		if (s && off + size <= sizeof(s->cfg))
			cfg_write(s, off, data, size);
	}
	pthread_mutex_unlock(&p->lock);
}

static size_t pci_save(struct km_ioport *io, void *buf, size_t cap)
{
	struct km_pci *p = io->priv;
	struct pci_state st;
	unsigned int i;

	if (cap < sizeof(st))
		return 0;
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&p->lock);
	st.address = p->address;
	for (i = 0; i < KM_PCI_SLOTS; i++) {
		struct pci_slot *s = &p->slot[i];

		memcpy(&st.slot[i].command, s->cfg + PCI_COMMAND, 2);
		st.slot[i].cache_line = s->cfg[PCI_CACHE_LINE_SIZE];
		st.slot[i].latency = s->cfg[PCI_LATENCY_TIMER];
		st.slot[i].irq_line = s->cfg[PCI_INTERRUPT_LINE];
		st.slot[i].bar_probe = s->bar_probe;
	}
	pthread_mutex_unlock(&p->lock);
	memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

static int pci_restore(struct km_ioport *io, const void *buf, size_t len)
{
	struct km_pci *p = io->priv;
	struct pci_state st;
	unsigned int i;

	if (len != sizeof(st))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	for (i = 0; i < KM_PCI_SLOTS; i++)
		if (st.slot[i].bar_probe > 1)
			return -EINVAL;
	pthread_mutex_lock(&p->lock);
	p->address = st.address;
	for (i = 0; i < KM_PCI_SLOTS; i++) {
		struct pci_slot *s = &p->slot[i];

		memcpy(s->cfg + PCI_COMMAND, &st.slot[i].command, 2);
		s->cfg[PCI_CACHE_LINE_SIZE] = st.slot[i].cache_line;
		s->cfg[PCI_LATENCY_TIMER] = st.slot[i].latency;
		s->cfg[PCI_INTERRUPT_LINE] = st.slot[i].irq_line;
		s->bar_probe = st.slot[i].bar_probe && s->io_size;
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pci_destroy(struct km_ioport *io)
{
	struct km_pci *p = io->priv;

	if (io->vm && io->vm->pci == p)
		io->vm->pci = NULL;
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
	static const struct km_pci_dev bridge = {
		.vendor = 0x8086,
		.device = 0x1237, /* 82441FX (i440FX) */
		.class_rev = 0x06000002, /* host bridge, revision 2 */
	};
	struct km_pci *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	slot_init(&p->slot[0], &bridge);
	r = km_ioport_register(vm, PCI_CONFIG_ADDRESS, 8, &pci_ops, p);
	if (r < 0) {
		km_err_set(err, "registering the PCI host bridge at %#x failed",
			   PCI_CONFIG_ADDRESS);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return r;
	}
	vm->pci = p;
	return 0;
}

int km_pci_add(struct km_vm *vm, const struct km_pci_dev *dev,
	       struct km_err *err)
{
	struct km_pci *p = vm->pci;
	unsigned int i;

	if (!p) {
		km_err_set(err, "no PCI host bridge for the %04x:%04x device",
			   dev->vendor, dev->device);
		return -ENODEV;
	}
	if (dev->io_size & (dev->io_size - 1) || dev->io_size < 4 ||
	    dev->io_base & (dev->io_size - 1)) {
		km_err_set(err,
			   "PCI I/O BAR %#x+%#x is not a naturally aligned "
			   "power of two",
			   dev->io_base, dev->io_size);
		return -EINVAL;
	}
	pthread_mutex_lock(&p->lock);
	for (i = 1; i < KM_PCI_SLOTS && p->slot[i].present; i++)
		;
	if (i < KM_PCI_SLOTS)
		slot_init(&p->slot[i], dev);
	pthread_mutex_unlock(&p->lock);
	if (i == KM_PCI_SLOTS) {
		km_err_set(err, "the PCI bus is full (%d slots)",
			   KM_PCI_SLOTS - 1);
		return -ENOSPC;
	}
	return (int)i;
}

size_t km_pci_irqs(struct km_vm *vm, struct km_pci_irq *out, size_t cap)
{
	struct km_pci *p = vm->pci;
	size_t n = 0;
	unsigned int i;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	for (i = 1; i < KM_PCI_SLOTS; i++)
		if (p->slot[i].present && p->slot[i].io_size && n < cap) {
			out[n].slot = (uint8_t)i;
			out[n].irq = p->slot[i].irq;
			n++;
		}
	pthread_mutex_unlock(&p->lock);
	return n;
}
