// SPDX-License-Identifier: GPL-2.0
/*
 * The guest side of booting: Linux through the 64-bit boot protocol (the
 * BSP enters the kernel in long mode with RSI pointing at boot_params; the
 * APs wait in KVM for INIT/SIPI from the kernel, found through the MP
 * table), or a raw real-mode image where every vCPU starts at once.
 */
#include <asm/bootparam.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "boot.h"
#include "pci.h"
#include "vm.h"

#define GDT_ADDR 0x500
#define ZERO_PAGE_ADDR 0x7000
#define PML4_ADDR 0x9000
#define PDPT_ADDR 0xa000
#define PD_ADDR 0xb000
#define CMDLINE_ADDR 0x20000
#define MPTABLE_ADDR 0x9fc00
#define KERNEL_ADDR 0x100000
#define STACK_ADDR 0x8ff0

#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define BOOT_TSS 0x20

#define CR0_PE 0x1u
#define CR0_ET 0x10u
#define CR0_NE 0x20u
#define CR0_PG 0x80000000u
#define CR4_PAE 0x20u
#define EFER_LME 0x100u
#define EFER_LMA 0x400u
#define PTE_P 0x1u
#define PTE_RW 0x2u
#define PTE_PS 0x80u

#define E820_RAM 1
#define E820_RESERVED 2

static void wr64(uint8_t *mem, uint64_t gpa, uint64_t v)
{
	memcpy(mem + gpa, &v, 8);
}

/* 4 GiB identity map; the kernel builds its own tables soon after. */
static void setup_page_tables(uint8_t *mem)
{
	uint64_t i;

	memset(mem + PML4_ADDR, 0, 6 * KM_PAGE_SIZE);
	wr64(mem, PML4_ADDR, PDPT_ADDR | PTE_P | PTE_RW);
	for (i = 0; i < 4; i++)
		wr64(mem, PDPT_ADDR + i * 8,
		     (PD_ADDR + i * KM_PAGE_SIZE) | PTE_P | PTE_RW);
	for (i = 0; i < 4 * 512; i++)
		wr64(mem, PD_ADDR + i * 8, (i << 21) | PTE_P | PTE_RW | PTE_PS);
}

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) |
	       ((uint64_t)(flags & 0xf0ffu) << 40) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) |
	       ((uint64_t)(base & 0x00ffffffu) << 16) | (limit & 0xffffu);
}

static void setup_gdt(uint8_t *mem)
{
	wr64(mem, GDT_ADDR + 0x00, 0);
	wr64(mem, GDT_ADDR + 0x08, 0);
	wr64(mem, GDT_ADDR + BOOT_CS, gdt_entry(0xa09b, 0, 0xfffff));
	wr64(mem, GDT_ADDR + BOOT_DS, gdt_entry(0xc093, 0, 0xfffff));
	wr64(mem, GDT_ADDR + BOOT_TSS, gdt_entry(0x808b, 0, 0xfffff));
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = sel != BOOT_TSS;
	s->g = 1;
	s->l = code;
	s->db = !code && sel != BOOT_TSS;
}

static void long_mode_sregs(struct kvm_sregs *sregs)
{
	seg(&sregs->cs, BOOT_CS, 0xb, true);
	seg(&sregs->ds, BOOT_DS, 0x3, false);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	seg(&sregs->tr, BOOT_TSS, 0xb, false);
	sregs->gdt.base = GDT_ADDR;
	sregs->gdt.limit = 5 * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	sregs->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	sregs->cr3 = PML4_ADDR;
	sregs->cr4 = CR4_PAE;
	sregs->efer = EFER_LME | EFER_LMA;
}

static void add_e820(struct boot_params *bp, uint64_t addr, uint64_t size,
		     uint32_t type)
{
	struct boot_e820_entry *e = &bp->e820_table[bp->e820_entries++];

	e->addr = addr;
	e->size = size;
	e->type = type;
}

static uint64_t place_initrd(const struct km_boot_image *img, uint64_t mem)
{
	uint64_t top = mem;

	if (top > (uint64_t)img->initrd_addr_max + 1)
		top = (uint64_t)img->initrd_addr_max + 1;
	return (top - img->initrd_len) & ~(uint64_t)(KM_PAGE_SIZE - 1);
}

static int setup_zero_page(struct km_vm *vm, const struct km_boot_image *img,
			   struct km_err *err)
{
	struct boot_params *bp = (void *)(vm->mem + ZERO_PAGE_ADDR);
	size_t hdr_end = 0x202 + img->kernel[0x201];
	uint64_t initrd = 0;

	memset(bp, 0, sizeof(*bp));
	/* The header as the image has it, up to its self-declared end. */
	if (hdr_end > 0x1f1 + sizeof(bp->hdr))
		hdr_end = 0x1f1 + sizeof(bp->hdr);
	memcpy(&bp->hdr, img->kernel + 0x1f1, hdr_end - 0x1f1);
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags |= CAN_USE_HEAP | LOADED_HIGH;
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.vid_mode = 0xffff;
	bp->hdr.cmd_line_ptr = CMDLINE_ADDR;
	strcpy((char *)vm->mem + CMDLINE_ADDR, img->cmdline);
	if (img->initrd) {
		initrd = place_initrd(img, vm->mem_size);
		if (initrd < (uint64_t)img->pref_address + img->init_size) {
			km_err_set(err,
				   "the initrd (%zu bytes) does not fit "
				   "above the kernel; raise --memory",
				   img->initrd_len);
			return -ENOMEM;
		}
		memcpy(vm->mem + initrd, img->initrd, img->initrd_len);
		bp->hdr.ramdisk_image = (uint32_t)initrd;
		bp->hdr.ramdisk_size = (uint32_t)img->initrd_len;
	}
	add_e820(bp, 0, MPTABLE_ADDR, E820_RAM);
	add_e820(bp, MPTABLE_ADDR, 0xa0000 - MPTABLE_ADDR, E820_RESERVED);
	add_e820(bp, 0xf0000, 0x10000, E820_RESERVED);
	add_e820(bp, KERNEL_ADDR, vm->mem_size - KERNEL_ADDR, E820_RAM);
	return 0;
}

static int vcpu_ioctl(struct km_vcpu *vcpu, unsigned long req, void *arg,
		      const char *what, struct km_err *err)
{
	if (ioctl(vcpu->fd, req, arg) == 0)
		return 0;
	km_err_set(err, "%s on vCPU %u failed: %s", what, vcpu->id,
		   strerror(errno));
	return -errno;
}

static int setup_fpu(struct km_vcpu *vcpu, struct km_err *err)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	return vcpu_ioctl(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU", err);
}

static int setup_bsp_linux(struct km_vcpu *vcpu, struct km_err *err)
{
	struct kvm_regs regs = {
		.rip = KERNEL_ADDR + 0x200, /* the 64-bit entry */
		.rsi = ZERO_PAGE_ADDR,
		.rsp = STACK_ADDR,
		.rbp = STACK_ADDR,
		.rflags = 0x2,
	};
	struct kvm_sregs sregs;
	int r;

	r = vcpu_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", err);
	if (r < 0)
		return r;
	long_mode_sregs(&sregs);
	r = vcpu_ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS", err);
	if (r == 0)
		r = setup_fpu(vcpu, err);
	if (r == 0)
		r = vcpu_ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS", err);
	return r;
}

static int boot_linux(struct km_vm *vm, const struct km_boot_image *img,
		      struct km_err *err)
{
	size_t kernel_len = img->kernel_len - img->setup_len;
	struct km_pci_irq pci[KM_PCI_SLOTS];
	size_t npci;
	int r;

	r = km_boot_check_memory(img, vm->mem_size, err);
	if (r < 0)
		return r;
	memcpy(vm->mem + KERNEL_ADDR, img->kernel + img->setup_len, kernel_len);
	r = setup_zero_page(vm, img, err);
	if (r < 0)
		return r;
	setup_gdt(vm->mem);
	setup_page_tables(vm->mem);
	npci = km_pci_irqs(vm, pci, KM_PCI_SLOTS);
	km__mptable_write(vm->mem, MPTABLE_ADDR, vm->ncpus, pci, npci);
	return setup_bsp_linux(&vm->vcpus[0], err);
}

/* Real mode at 0:@addr, RSI = the vCPU's index; APs runnable at once. */
static int setup_raw_vcpu(struct km_vcpu *vcpu, uint64_t addr,
			  struct km_err *err)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	struct kvm_regs regs = { .rip = addr, .rsi = vcpu->id, .rflags = 2 };
	struct kvm_sregs sregs;
	int r;

	r = vcpu_ioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS", err);
	if (r < 0)
		return r;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	r = vcpu_ioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS", err);
	if (r == 0)
		r = vcpu_ioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS", err);
	if (r == 0)
		r = vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE",
			       err);
	return r;
}

static int boot_raw(struct km_vm *vm, const struct km_boot_image *img,
		    struct km_err *err)
{
	unsigned int i;
	int r = km_boot_check_memory(img, vm->mem_size, err);

	if (r < 0)
		return r;
	memcpy(vm->mem + img->raw_addr, img->kernel, img->kernel_len);
	for (i = 0; i < vm->ncpus && r == 0; i++)
		r = setup_raw_vcpu(&vm->vcpus[i], img->raw_addr, err);
	return r;
}

int km_boot_setup(struct km_vm *vm, const struct km_boot_image *img,
		  struct km_err *err)
{
	if (img->kind == KM_BOOT_RAW)
		return boot_raw(vm, img, err);
	return boot_linux(vm, img, err);
}
