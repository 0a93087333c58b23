// SPDX-License-Identifier: GPL-2.0
/*
 * bzImage checks on synthetic images, the memory check, and the MP table
 * (checksums, CPUs, IOAPIC) as Linux's mpparse reads it.
 */
#include <asm/bootparam.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot.h"
#include "pci.h"

#define IMG_LEN 8192

static char path[64];

static void setup(void)
{
	strcpy(path, "/tmp/kemari-test-bzimage-XXXXXX");
	close(mkstemp(path));
}

static void teardown(void)
{
	unlink(path);
}

TestSuite(boot, .init = setup, .fini = teardown);

static void write_image(void (*tweak)(struct setup_header *h))
{
	static uint8_t img[IMG_LEN];
	struct setup_header h;
	FILE *f;

	memset(img, 0, sizeof(img));
	memset(&h, 0, sizeof(h));
	h.setup_sects = 1;
	h.syssize = (IMG_LEN - 1024) / 16;
	h.boot_flag = 0xaa55;
	h.header = 0x53726448;
	h.version = 0x020f;
	h.loadflags = LOADED_HIGH;
	h.xloadflags = XLF_KERNEL_64;
	h.initrd_addr_max = 0x7fffffff;
	h.cmdline_size = 2047;
	h.pref_address = 0x1000000;
	h.init_size = 64 << 20;
	if (tweak)
		tweak(&h);
	memcpy(img + 0x1f1, &h, sizeof(h));
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(img, 1, sizeof(img), f), sizeof(img));
	fclose(f);
}

static int load(const char *cmdline, struct km_err *err)
{
	struct km_boot_image img;
	int r = km_boot_load_linux(&img, path, NULL, cmdline, err);

	km_boot_release(&img);
	return r;
}

static void old_protocol(struct setup_header *h)
{
	h->version = 0x0206;
}
static void no_64bit(struct setup_header *h)
{
	h->xloadflags = 0;
}
static void bad_magic(struct setup_header *h)
{
	h->header = 0x12345678;
}
static void truncated(struct setup_header *h)
{
	h->syssize = 1 << 20;
}
static void no_init_size(struct setup_header *h)
{
	h->init_size = 0;
}

Test(boot, a_good_header_loads)
{
	struct km_boot_image img;
	struct km_err err = { 0 };

	write_image(NULL);
	cr_assert_eq(km_boot_load_linux(&img, path, NULL, "console=ttyS0",
					&err),
		     0, "%s", err.msg);
	cr_assert_eq(img.setup_len, 1024);
	cr_assert_eq(img.version, 0x020f);
	cr_assert_str_eq(img.cmdline, "console=ttyS0");
	km_boot_release(&img);
}

Test(boot, malformed_images_are_named)
{
	static const struct {
		void (*tweak)(struct setup_header *h);
		const char *msg;
	} cases[] = {
		{ bad_magic, "no 'HdrS' boot header" },
		{ old_protocol, "older than 2.12" },
		{ no_64bit, "no 64-bit entry point" },
		{ truncated, "truncated" },
		{ no_init_size, "truncated" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct km_err err = { 0 };

		write_image(cases[i].tweak);
		cr_assert_eq(load("", &err), -ENOEXEC, "case %zu", i);
		cr_assert(strstr(err.msg, cases[i].msg), "case %zu: %s", i,
			  err.msg);
		cr_assert(strstr(err.msg, path), "the message names the file");
	}
}

Test(boot, a_too_long_command_line_is_refused)
{
	char *line = malloc(4096);
	struct km_err err = { 0 };

	memset(line, 'x', 4095);
	line[4095] = '\0';
	write_image(NULL);
	cr_assert_eq(load(line, &err), -E2BIG);
	cr_assert(strstr(err.msg, "at most 2046"), "%s", err.msg);
	free(line);
}

Test(boot, memory_check_counts_decompression_and_initrd)
{
	struct km_boot_image img;
	struct km_err err = { 0 };

	write_image(NULL);
	cr_assert_eq(km_boot_load_linux(&img, path, NULL, "", &err), 0);
	/* 16 MiB preferred address + 64 MiB init_size + 16 MiB to run. */
	cr_assert_eq(km_boot_check_memory(&img, 96 << 20, &err), 0);
	cr_assert_eq(km_boot_check_memory(&img, 95 << 20, &err), -ENOMEM);
	cr_assert(strstr(err.msg, "needs at least 96 MiB"), "%s", err.msg);
	km_boot_release(&img);
}

Test(boot, raw_images_stay_below_64k)
{
	static const uint8_t code[] = { 0xeb, 0xfe };
	struct km_boot_image img;

	cr_assert_eq(km_boot_set_raw(&img, code, sizeof(code), 0x1000), 0);
	cr_assert_eq(km_boot_check_memory(&img, 2 << 20, NULL), 0);
	km_boot_release(&img);
	cr_assert_eq(km_boot_set_raw(&img, code, sizeof(code), 0xffff), -EFBIG);
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

Test(mptable, checksums_cpus_and_ioapic)
{
	uint8_t *mem = calloc(1, 1 << 20);
	uint64_t addr = 0x9fc00;
	uint32_t physptr, lapic, ioapic_addr;
	uint16_t len;
	uint8_t *mpc, *e;
	static const struct km_pci_irq pci[] = { { 1, 10 }, { 2, 11 } };
	unsigned int cpus = 0, bsp = 0, ioapics = 0, irqs = 0, pci_irqs = 0;
	unsigned int buses = 0;
	size_t n = km__mptable_write(mem, addr, 2, pci, 2);

	cr_assert_leq(addr + n, 0xa0000, "the table overflows base memory");
	cr_assert_eq(memcmp(mem + addr, "_MP_", 4), 0);
	cr_assert_eq(sum(mem + addr, 16), 0, "floating pointer checksum");
	memcpy(&physptr, mem + addr + 4, 4);
	mpc = mem + physptr;
	cr_assert_eq(memcmp(mpc, "PCMP", 4), 0);
	memcpy(&len, mpc + 4, 2);
	cr_assert_eq(sum(mpc, len), 0, "table checksum");
	memcpy(&lapic, mpc + 36, 4);
	cr_assert_eq(lapic, 0xfee00000);
	for (e = mpc + 44; e < mpc + len;) {
		switch (e[0]) {
		case 0:
			cr_assert_eq(e[1], cpus, "APIC IDs in order");
			cpus++;
			bsp += !!(e[3] & 2);
			e += 20;
			break;
		case 2:
			ioapics++;
			cr_assert_eq(e[1], 2, "IOAPIC ID after the CPUs");
			memcpy(&ioapic_addr, e + 4, 4);
			cr_assert_eq(ioapic_addr, 0xfec00000);
			e += 8;
			break;
		case 1:
			/* Linux finds PCI IRQs by MP bus ID = PCI bus 0. */
			cr_assert_eq(memcmp(e + 2,
					    e[1] == 0 ? "PCI   " : "ISA   ", 6),
				     0, "bus %u", e[1]);
			buses++;
			e += 8;
			break;
		case 3:
			if (e[4] == 0) { /* PCI: slot << 2 | INTA */
				cr_assert_eq(e[5], pci[pci_irqs].slot << 2);
				cr_assert_eq(e[7], pci[pci_irqs].irq);
				pci_irqs++;
			} else {
				cr_assert_eq(e[4], 1);
				cr_assert_eq(e[5], e[7],
					     "ISA IRQ n on IOAPIC pin n");
				irqs++;
			}
			e += 8;
			break;
		default:
			e += 8;
			break;
		}
	}
	cr_assert_eq(cpus, 2);
	cr_assert_eq(bsp, 1);
	cr_assert_eq(ioapics, 1);
	cr_assert_eq(irqs, 14, "ISA lines 10 and 11 went to PCI");
	cr_assert_eq(pci_irqs, 2);
	cr_assert_eq(buses, 2);
	free(mem);
}
