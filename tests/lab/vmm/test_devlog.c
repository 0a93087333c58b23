// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-blk under real KVM exits, on a raw real-mode guest: the test
 * plays the driver (registers through the device's ops, the ring in guest
 * RAM), the guest only kicks. vCPU 0 notifies once with a read pending,
 * makes a write available (avail idx 1 -> 2) and notifies again.
 *
 *  - the read lands in RAM; exactly its pages (data, status, used ring)
 *    are in the VMM's device dirty log, and none of the data pages is in
 *    KVM's dirty log (the guest never wrote them);
 *  - the second notify is tapped with RIP at its OUT and the write not yet
 *    on the disk; the whole-VM state taken there, restored into a new VM,
 *    carries the virtqueue indices: the restored guest's notify serves the
 *    write once and only the write (used idx 2, element 1 = the write).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "boot.h"
#include "state.h"
#include "virtio.h"
#include "vm.h"

#define MEM (4u << 20)
#define NPAGES (MEM / 4096)
#define BLK KM_VIRTIO_IO_BASE(0)
#define RING_PFN 0x8
#define DESC 0x8000
#define AVAIL (DESC + 16 * 128)
#define USED 0x9000
#define HDR 0xa000
#define STATUS 0xb000
#define RDATA 0x200800 /* 4 KiB read: pages 0x200 and 0x201 */
#define WDATA 0x210000

extern const uint8_t guest_blk_start[], guest_blk_second_out[], guest_blk_end[];

__asm__(".pushsection .rodata\n"
	".code16\n"
	"guest_blk_start:\n"
	"	mov $0xc010, %dx\n"
	"	xor %ax, %ax\n"
	"	out %ax, %dx\n"
	"	movw $2, 0x8802\n"
	"guest_blk_second_out:\n"
	"	out %ax, %dx\n"
	"	mov $0xfe, %al\n"
	"	out %al, $0x64\n"
	"	jmp guest_blk_end\n"
	"guest_blk_end:\n"
	"	jmp guest_blk_end\n"
	".code64\n"
	".popsection\n");

static char disk[64];

struct cp {
	unsigned int calls;
	uint64_t rip;
	uint16_t port;
	uint8_t disk_byte; /* at the write's sector when the hook ran */
	uint8_t *blob;
	size_t blob_len;
	uint8_t *ram;
	struct km_err err;
};

static struct km_ioport *io_at(struct km_vm *vm, uint16_t port)
{
	for (unsigned int i = 0; i < vm->nioports; i++)
		if (vm->ioports[i].base == port)
			return &vm->ioports[i];
	cr_assert_fail("no device at %#x", port);
	return NULL;
}

static void reg_out(struct km_vm *vm, unsigned int off, uint32_t v,
		    unsigned int size)
{
	struct km_ioport *io = io_at(vm, BLK);

	io->ops->out(io, BLK + off, (uint8_t *)&v, size);
}

static struct km_vm *blk_vm(void)
{
	struct km_vm_config cfg = {
		.mem_size = MEM, .ncpus = 1, .console_fd = -1, .ndisks = 1
	};
	struct km_err err = { 0 };
	struct km_vm *vm;

	cfg.disks[0].path = disk;
	vm = km_vm_create(&cfg, &err);
	cr_assert_not_null(vm, "%s", err.msg);
	km_vm_set_timeout(vm, 60);
	return vm;
}

static void put_desc(struct km_vm *vm, uint16_t i, uint64_t gpa, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = vm->mem + DESC + 16 * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Driver set-up, a read (head 0) available and a write (head 3) ready. */
static void driver(struct km_vm *vm, struct km_boot_image *img)
{
	uint32_t rd[4] = { 0, 0, 8, 0 }, wr[4] = { 1, 0, 40, 0 };
	struct km_err err = { 0 };

	cr_assert_eq(km_boot_set_raw(img, guest_blk_start,
				     guest_blk_end + 2 - guest_blk_start,
				     KM_RAW_DEFAULT_ADDR),
		     0);
	cr_assert_eq(km_boot_setup(vm, img, &err), 0, "%s", err.msg);
	reg_out(vm, KM_VIRTIO_STATUS, 3, 1);
	reg_out(vm, KM_VIRTIO_QUEUE_SEL, 0, 2);
	reg_out(vm, KM_VIRTIO_QUEUE_PFN, RING_PFN, 4);
	reg_out(vm, KM_VIRTIO_STATUS, 7, 1);
	memcpy(vm->mem + HDR, rd, 16);
	put_desc(vm, 0, HDR, 16, KM_VRING_DESC_F_NEXT, 1);
	put_desc(vm, 1, RDATA, 4096,
		 KM_VRING_DESC_F_NEXT | KM_VRING_DESC_F_WRITE, 2);
	put_desc(vm, 2, STATUS, 1, KM_VRING_DESC_F_WRITE, 0);
	memcpy(vm->mem + HDR + 16, wr, 16);
	put_desc(vm, 3, HDR + 16, 16, KM_VRING_DESC_F_NEXT, 4);
	put_desc(vm, 4, WDATA, 512, KM_VRING_DESC_F_NEXT, 5);
	put_desc(vm, 5, STATUS + 1, 1, KM_VRING_DESC_F_WRITE, 0);
	memset(vm->mem + WDATA, 0x77, 512);
	vm->mem[STATUS] = vm->mem[STATUS + 1] = 0xff;
	memcpy(vm->mem + AVAIL + 4, &(uint16_t){ 0 }, 2);
	memcpy(vm->mem + AVAIL + 6, &(uint16_t){ 3 }, 2);
	memcpy(vm->mem + AVAIL + 2, &(uint16_t){ 1 }, 2);
}

static uint8_t disk_byte(off_t off)
{
	uint8_t b = 0;
	int fd = open(disk, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	close(fd);
	return b;
}

static uint16_t used(struct km_vm *vm, unsigned int off)
{
	uint16_t v;

	memcpy(&v, vm->mem + USED + off, 2);
	return v;
}

static void setup(void)
{
	uint8_t sector[512];
	int fd;

	strcpy(disk, "/tmp/kemari-lab-disk-XXXXXX");
	fd = mkstemp(disk);
	cr_assert_geq(fd, 0);
	for (unsigned int s = 0; s < 64; s++) {
		memset(sector, s, sizeof(sector));
		cr_assert_eq(write(fd, sector, 512), 512);
	}
	close(fd);
}

static void teardown(void)
{
	unlink(disk);
}

TestSuite(devlog, .init = setup, .fini = teardown);

static int checkpoint_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
			   void *opaque)
{
	struct cp *cp = opaque;

	cp->calls++;
	cp->port = ev->port;
	km_vcpu_get_rip(vcpu, &cp->rip);
	cp->disk_byte = disk_byte(40 * 512);
	if (km_vm_state_save(vcpu->vm, &cp->blob, &cp->blob_len, &cp->err))
		return -1;
	cp->ram = malloc(MEM);
	if (!cp->ram)
		return -1;
	memcpy(cp->ram, vcpu->vm->mem, MEM);
	return 1; /* the primary dies before the write reaches the disk */
}

static void kvm_log(struct km_vm *vm, uint64_t *bits, bool clear)
{
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bits };
	struct kvm_clear_dirty_log cl = { .slot = 0,
					  .first_page = 0,
					  .num_pages = NPAGES,
					  .dirty_bitmap = bits };

	memset(bits, 0, NPAGES / 8);
	cr_assert_eq(ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log), 0);
	if (clear) {
		memset(bits, 0xff, NPAGES / 8);
		cr_assert_eq(ioctl(vm->fd, KVM_CLEAR_DIRTY_LOG, &cl), 0);
	}
}

static bool bit(const uint64_t *b, uint64_t pfn)
{
	return b[pfn / 64] & (1ull << (pfn % 64));
}

Test(devlog, reads_are_logged_exactly_and_a_checkpointed_write_goes_once)
{
	uint64_t kvm[NPAGES / 64], vmm[NPAGES / 64];
	uint64_t out_rip =
		KM_RAW_DEFAULT_ADDR + (guest_blk_second_out - guest_blk_start);
	struct km_boot_image img;
	struct km_err err = { 0 };
	struct cp cp = { 0 };
	struct km_vm *vm = blk_vm();
	unsigned int n = 0;
	uint32_t id;

	driver(vm, &img);
	km_vm_set_tap(vm, NULL, checkpoint_hook, &cp);
	kvm_log(vm, kvm, true);
	memset(vmm, 0, sizeof(vmm));
	cr_assert_geq(km_vm_dirty_harvest(vm, vmm, NPAGES / 64), 0);

	cr_assert_eq(km_vm_run(vm), -EIO, "%s", km_vm_end_message(vm));
	cr_assert(strstr(km_vm_end_message(vm), "event-tap hook failed"), "%s",
		  km_vm_end_message(vm));
	/* The read: in RAM, status OK, one used element. */
	cr_assert_eq(vm->mem[RDATA], 8);
	cr_assert_eq(vm->mem[RDATA + 4095], 15);
	cr_assert_eq(vm->mem[STATUS], 0);
	cr_assert_eq(used(vm, 2), 1);
	/* Exactly its pages in the VMM's log, none of its data in KVM's. */
	memset(vmm, 0, sizeof(vmm));
	cr_assert_geq(km_vm_dirty_harvest(vm, vmm, NPAGES / 64), 0);
	for (uint64_t p = 0; p < NPAGES; p++)
		n += bit(vmm, p);
	cr_assert(bit(vmm, RDATA / 4096) && bit(vmm, RDATA / 4096 + 1));
	cr_assert(bit(vmm, STATUS / 4096) && bit(vmm, USED / 4096));
	cr_assert_eq(n, 4, "%u pages in the device log, want 4", n);
	kvm_log(vm, kvm, false);
	cr_assert_not(bit(kvm, RDATA / 4096) || bit(kvm, RDATA / 4096 + 1),
		      "KVM's log saw the device's write");
	cr_assert(bit(kvm, AVAIL / 4096), "KVM's log missed the guest's "
					  "avail idx write");
	/* The write: tapped at its OUT, the disk still untouched. */
	cr_assert_eq(cp.calls, 1);
	cr_assert_null(cp.err.msg[0] ? cp.err.msg : NULL, "%s", cp.err.msg);
	cr_assert_eq(cp.port, BLK + KM_VIRTIO_QUEUE_NOTIFY);
	cr_assert_eq(cp.rip, out_rip, "RIP %#lx, OUT at %#lx",
		     (unsigned long)cp.rip, (unsigned long)out_rip);
	cr_assert_eq(cp.disk_byte, 40);
	cr_assert_eq(disk_byte(40 * 512), 40, "the primary's write went out");
	km_vm_destroy(vm);
	km_boot_release(&img);

	/* Elsewhere: RAM and state into a new VM, run on. */
	vm = blk_vm();
	memcpy(vm->mem, cp.ram, MEM);
	cr_assert_eq(km_vm_state_restore(vm, cp.blob, cp.blob_len, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(km_vm_run(vm), 0, "%s", km_vm_end_message(vm));
	cr_assert_eq(disk_byte(40 * 512), 0x77, "the write never happened");
	cr_assert_eq(disk_byte(41 * 512), 41, "the write ran long");
	cr_assert_eq(used(vm, 2), 2,
		     "used idx %u: the read was served again "
		     "or the write not at all",
		     used(vm, 2));
	memcpy(&id, vm->mem + USED + 4 + 8, 4);
	cr_assert_eq(id, 3, "used element 1 is chain %u, not the write", id);
	cr_assert_eq(vm->mem[STATUS + 1], 0);
	km_vm_destroy(vm);
	free(cp.blob);
	free(cp.ram);
}
