// SPDX-License-Identifier: GPL-2.0
/*
 * The Intel MultiProcessor Specification 1.4 table that tells Linux about
 * the vCPUs and the IOAPIC when there is no ACPI (kvmtool's and
 * Firecracker's mptable.c shape). ISA IRQs 0-15 go to IOAPIC pins 0-15,
 * which is KVM's default GSI routing (the in-kernel PIT raises GSI 0);
 * each PCI slot's INTA goes to the pin its device chose (pci.h).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "boot.h"
#include "pci.h"

#define APIC_VERSION 0x14
#define IOAPIC_VERSION 0x11
#define IOAPIC_ADDR 0xfec00000u
#define LAPIC_ADDR 0xfee00000u
#define CPU_ENABLED 0x1
#define CPU_BSP 0x2
#define MP_INT 0
#define MP_NMI 1
#define MP_EXTINT 3
/*
 * Linux looks PCI interrupts up by MP bus ID = PCI bus number, so the PCI
 * bus is MP bus 0 and ISA is bus 1.
 */
#define BUS_PCI 0
#define BUS_ISA 1

struct mpf_intel {
	char signature[4];
	uint32_t physptr;
	uint8_t length;
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4];
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

static size_t put(uint8_t *at, const void *entry, size_t len)
{
	memcpy(at, entry, len);
	return len;
}

static size_t put_cpus(uint8_t *at, unsigned int ncpus)
{
	size_t off = 0;
	unsigned int i;

	for (i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = 0,
			.apicid = (uint8_t)i,
			.apicver = APIC_VERSION,
			.cpuflag = CPU_ENABLED | (i == 0 ? CPU_BSP : 0),
			.cpufeature = 0x600,
			.featureflag = 0x201, /* FPU, APIC */
		};

		off += put(at + off, &cpu, sizeof(cpu));
	}
	return off;
}

static bool pin_taken(const struct km_pci_irq *pci, size_t npci,
		      unsigned int pin)
{
	size_t i;

	for (i = 0; i < npci; i++)
		if (pci[i].irq == pin)
			return true;
	return false;
}

static size_t put_irqs(uint8_t *at, uint8_t ioapic_id,
		       const struct km_pci_irq *pci, size_t npci)
{
	struct mpc_intsrc src = { .type = 3,
				  .irqtype = MP_INT,
				  .srcbus = BUS_PCI,
				  .dstapic = ioapic_id };
	size_t off = 0;
	unsigned int i;

	/*
	 * PCI INTA of each slot: srcbusirq is slot << 2 | pin (0 = INTA);
	 * flags 0 = the bus's default, level and active low for PCI, which
	 * Linux programs into the IOAPIC pin (kvmtool's choice too).
	 */
	for (i = 0; i < npci; i++) {
		src.srcbusirq = (uint8_t)(pci[i].slot << 2);
		src.dstirq = pci[i].irq;
		off += put(at + off, &src, sizeof(src));
	}
	src.srcbus = BUS_ISA;
	for (i = 0; i < 16; i++) {
		/* A pin a PCI device took is not also an ISA line. */
		if (pin_taken(pci, npci, i))
			continue;
		src.srcbusirq = (uint8_t)i;
		src.dstirq = (uint8_t)i;
		off += put(at + off, &src, sizeof(src));
	}
	/* Local interrupts: LINT0 ExtINT from the PIC, LINT1 NMI. */
	src.type = 4;
	src.irqtype = MP_EXTINT;
	src.srcbus = 0;
	src.srcbusirq = 0;
	src.dstapic = 0xff;
	src.dstirq = 0;
	off += put(at + off, &src, sizeof(src));
	src.irqtype = MP_NMI;
	src.dstirq = 1;
	off += put(at + off, &src, sizeof(src));
	return off;
}

size_t km__mptable_write(uint8_t *mem, uint64_t addr, unsigned int ncpus,
			 const struct km_pci_irq *pci, size_t npci)
{
	uint8_t *base = mem + addr;
	struct mpf_intel *mpf = (void *)base;
	struct mpc_table *mpc = (void *)(base + sizeof(*mpf));
	uint8_t *at = (uint8_t *)(mpc + 1);
	struct mpc_bus pci_bus = { .type = 1, .busid = BUS_PCI };
	struct mpc_bus isa_bus = { .type = 1, .busid = BUS_ISA };
	struct mpc_ioapic ioapic = { .type = 2,
				     .apicid = (uint8_t)ncpus,
				     .apicver = IOAPIC_VERSION,
				     .flags = 1,
				     .apicaddr = IOAPIC_ADDR };

	memset(base, 0, sizeof(*mpf) + sizeof(*mpc));
	memcpy(pci_bus.bustype, "PCI   ", 6);
	memcpy(isa_bus.bustype, "ISA   ", 6);
	at += put_cpus(at, ncpus);
	at += put(at, &pci_bus, sizeof(pci_bus));
	at += put(at, &isa_bus, sizeof(isa_bus));
	at += put(at, &ioapic, sizeof(ioapic));
	at += put_irqs(at, ioapic.apicid, pci, npci);

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)(at - (uint8_t *)mpc);
	mpc->spec = 4;
	memcpy(mpc->oem, "KEMARI  ", 8);
	memcpy(mpc->productid, "KEMARI-VMM  ", 12);
	mpc->lapic = LAPIC_ADDR;
	mpc->checksum = checksum((uint8_t *)mpc, mpc->length);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(addr + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = checksum((uint8_t *)mpf, sizeof(*mpf));
	return at - base;
}
