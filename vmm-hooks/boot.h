/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loading what the VM boots: a Linux bzImage through the 64-bit boot
 * protocol (Documentation/x86/boot.rst), or a raw real-mode image for
 * tests. Files are read and checked before KVM is touched, so a bad file
 * is reported even on a host without KVM.
 *
 * Guest physical layout for Linux:
 *   0x00500  GDT (null, null, code64 at 0x10, data at 0x18, TSS at 0x20)
 *   0x07000  boot_params (the "zero page")
 *   0x09000  PML4, 0x0a000 PDPT, 0x0b000-0x0efff four PDs: 0-4 GiB
 *            identity-mapped with 2 MiB pages
 *   0x20000  kernel command line
 *   0x9fc00  MP floating pointer and table (reserved in e820)
 *   0x100000 the protected-mode kernel; the initrd at the top of RAM
 */
#ifndef KEMARI_VMM_BOOT_H
#define KEMARI_VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct km_vm;

#define KM_RAW_DEFAULT_ADDR 0x1000u

enum km_boot_kind {
	KM_BOOT_LINUX,
	KM_BOOT_RAW,
};

struct km_boot_image {
	enum km_boot_kind kind;
	uint8_t *kernel; /* the whole bzImage, or the raw image */
	size_t kernel_len;
	uint8_t *initrd;
	size_t initrd_len;
	char *cmdline;
	size_t setup_len; /* bytes of real-mode setup before the kernel */
	uint32_t init_size; /* memory the kernel needs to decompress */
	uint32_t pref_address; /* where it decompresses itself */
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	uint16_t version; /* boot protocol */
	uint64_t raw_addr;
};

/*
 * km_boot_load_linux() - read and check @kernel (a bzImage with a 64-bit
 * entry), @initrd (NULL: none) and @cmdline (NULL: empty). Returns 0 or
 * -errno with @err naming the file and the problem.
 */
int km_boot_load_linux(struct km_boot_image *img, const char *kernel,
		       const char *initrd, const char *cmdline,
		       struct km_err *err);

/*
 * km_boot_load_raw() - read a raw real-mode image to be placed at @addr;
 * every vCPU starts at CS:IP 0:@addr with RSI = its index.
 */
int km_boot_load_raw(struct km_boot_image *img, const char *path, uint64_t addr,
		     struct km_err *err);

/* km_boot_set_raw() - the same from memory (tests); copies @code. */
int km_boot_set_raw(struct km_boot_image *img, const void *code, size_t len,
		    uint64_t addr);

/*
 * km_boot_check_memory() - whether @mem_size bytes of RAM can hold the
 * image (the kernel's decompression area plus the initrd); -ENOMEM with
 * @err saying how much is needed.
 */
int km_boot_check_memory(const struct km_boot_image *img, uint64_t mem_size,
			 struct km_err *err);

/*
 * km_boot_setup() - write the image into @vm's RAM with everything the
 * boot protocol needs and set the vCPUs' registers. 0 or -errno.
 */
int km_boot_setup(struct km_vm *vm, const struct km_boot_image *img,
		  struct km_err *err);

/* km_boot_release() - free what a load or set_raw allocated. */
void km_boot_release(struct km_boot_image *img);

/*
 * km__mptable_write() - an Intel MP table for @ncpus CPUs, the IOAPIC, the
 * ISA IRQs and the INTA lines of @npci PCI devices at guest address @addr
 * (within @mem); returns its size.
 */
struct km_pci_irq;
size_t km__mptable_write(uint8_t *mem, uint64_t addr, unsigned int ncpus,
			 const struct km_pci_irq *pci, size_t npci);

#endif
