/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PCI devices on the host bridge's bus 0 (pci.c): what a device declares,
 * and the INTx wiring the MP table announces.
 */
#ifndef KEMARI_VMM_PCI_H
#define KEMARI_VMM_PCI_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct km_vm;

#define KM_PCI_SLOTS 8 /* slot 0 is the host bridge */

struct km_pci_dev {
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys_id;
	uint32_t class_rev; /* class code << 8 | revision */
	uint16_t io_base, io_size; /* BAR0 in I/O space; size 0: none */
	uint8_t irq; /* the IOAPIC pin INTA drives */
};

/* An INTA line: PCI slot on bus 0 and the IOAPIC pin (MP table). */
struct km_pci_irq {
	uint8_t slot;
	uint8_t irq;
};

/*
 * km_pci_add() - put @dev in the next free slot of bus 0. Returns the slot
 * or -errno with @err set. The device registers its BAR's ports itself.
 * Before km_vm_run().
 */
int km_pci_add(struct km_vm *vm, const struct km_pci_dev *dev,
	       struct km_err *err);

/* km_pci_irqs() - the INTA wiring of every device (at most @cap). */
size_t km_pci_irqs(struct km_vm *vm, struct km_pci_irq *out, size_t cap);

#endif
