// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-blk on the legacy virtio-pci transport without KVM: the test is
 * the driver, writing descriptors and the avail ring into a fake VM's RAM
 * and kicking through the dispatcher (so tapping is the real decision).
 * Reads land in RAM and exactly their pages (plus the used ring's) are in
 * the device dirty log; writes wait for a tapped notify; malformed rings
 * and chains are refused; the transport's state round-trips.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices.h"
#include "fake_vm.h"
#include "virtio.h"
#include "virtio_dev.h"

#define RAM (1u << 20)
#define BASE KM_VIRTIO_IO_BASE(0)
#define RING_PFN 0x10
#define DESC 0x10000
#define AVAIL (DESC + 16 * 128)
#define USED 0x11000
#define HDR 0x20000
#define DATA 0x40000
#define STATUS 0x50000

static struct km_vm *vm;
static struct km_vcpu *vcpu;
static uint8_t run_page[4096] __attribute__((aligned(64)));
static char disk[64];
static uint16_t next_desc, avail_idx;
static unsigned int hook_calls;

static int count_hook(struct km_vcpu *v, const struct km_tap_event *ev,
		      void *opaque)
{
	(void)v;
	(void)ev;
	(void)opaque;
	hook_calls++;
	return 0;
}

static void setup(void)
{
	struct km_virtio_blk_cfg cfg = { .io_base = BASE, .irq = 10 };
	struct km_err err = { 0 };
	uint8_t sector[512];
	int fd;

	vm = fake_vm_ram(RAM);
	cr_assert_eq(km_pci_init(vm, &err), 0, "%s", err.msg);
	strcpy(disk, "/tmp/kemari-test-disk-XXXXXX");
	fd = mkstemp(disk);
	cr_assert_geq(fd, 0);
	for (unsigned int s = 0; s < 16; s++) {
		memset(sector, 0xa0 + s, sizeof(sector));
		cr_assert_eq(write(fd, sector, sizeof(sector)), 512);
	}
	close(fd);
	cfg.path = disk;
	cr_assert_eq(km_virtio_blk_init(vm, &cfg, &err), 0, "%s", err.msg);
	vcpu = &vm->vcpus[0];
	vcpu->vm = vm;
	vcpu->fd = -1;
	vcpu->run = (struct kvm_run *)run_page;
	km_vm_set_tap(vm, NULL, count_hook, NULL);
	next_desc = avail_idx = 0;
	hook_calls = 0;
}

static void teardown(void)
{
	fake_vm_free(vm);
	unlink(disk);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

/* An OUT through the dispatcher, as a vCPU's exit would be. */
static void pio_out(uint16_t port, uint32_t val, uint8_t size)
{
	struct kvm_run *run = vcpu->run;

	memset(run_page, 0, sizeof(run_page));
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.count = 1;
	run->io.port = port;
	run->io.data_offset = 1024;
	memcpy(run_page + 1024, &val, size);
	cr_assert_eq(km__ioport_dispatch(vcpu), 0);
}

static void driver_up(void)
{
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_HOST_FEATURES) & (1u << 9),
		     1u << 9, "FLUSH offered");
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_CONFIG), 16, "capacity");
	fake_outb(vm, BASE + KM_VIRTIO_STATUS, 1 | 2);
	fake_outw(vm, BASE + KM_VIRTIO_QUEUE_SEL, 0);
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_QUEUE_NUM) & 0xffff, 128);
	fake_outl(vm, BASE + KM_VIRTIO_QUEUE_PFN, RING_PFN);
	fake_outb(vm, BASE + KM_VIRTIO_STATUS, 1 | 2 | 4);
}

static void put_desc(uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = vm->mem + DESC + 16 * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Post header, one data buffer, status; returns the head. */
static uint16_t post(uint32_t type, uint64_t sector, uint64_t data,
		     uint32_t len, bool device_writes)
{
	uint32_t hdr[4] = { type, 0, (uint32_t)sector,
			    (uint32_t)(sector >> 32) };
	uint16_t head = next_desc;

	memcpy(vm->mem + HDR + 16 * head, hdr, 16);
	put_desc(head, HDR + 16 * head, 16, KM_VRING_DESC_F_NEXT, head + 1);
	put_desc(head + 1, data, len,
		 KM_VRING_DESC_F_NEXT |
			 (device_writes ? KM_VRING_DESC_F_WRITE : 0),
		 head + 2);
	put_desc(head + 2, STATUS + head, 1, KM_VRING_DESC_F_WRITE, 0);
	vm->mem[STATUS + head] = 0xff;
	next_desc += 3;
	memcpy(vm->mem + AVAIL + 4 + 2 * (avail_idx % 128), &head, 2);
	avail_idx++;
	memcpy(vm->mem + AVAIL + 2, &avail_idx, 2);
	return head;
}

static uint16_t used_idx(void)
{
	uint16_t v;

	memcpy(&v, vm->mem + USED + 2, 2);
	return v;
}

static void harvest(uint64_t *bits)
{
	memset(bits, 0, RAM / 4096 / 8);
	cr_assert_geq(km_vm_dirty_harvest(vm, bits, RAM / 4096 / 64), 0);
}

static bool page_in(const uint64_t *bits, uint64_t pfn)
{
	return bits[pfn / 64] & (1ull << (pfn % 64));
}

Test(virtio_blk, a_read_lands_in_ram_and_exactly_its_pages_are_logged)
{
	uint64_t bits[RAM / 4096 / 64];
	uint32_t used_len;
	unsigned int n = 0;

	driver_up();
	harvest(bits);
	post(0 /* IN */, 2, DATA + 0x1f00, 1024, true); /* spans 2 pages */
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(hook_calls, 0, "a read is not output");
	cr_assert_eq(used_idx(), 1);
	memcpy(&used_len, vm->mem + USED + 4 + 4, 4);
	cr_assert_eq(used_len, 1025);
	cr_assert_eq(vm->mem[STATUS], 0, "status OK");
	cr_assert_eq(vm->mem[DATA + 0x1f00], 0xa2, "sector 2");
	cr_assert_eq(vm->mem[DATA + 0x1f00 + 1023], 0xa3, "sector 3");
	cr_assert_eq(vm->mem[DATA + 0x1f00 + 1024], 0, "ran past its buffer");
	cr_assert_eq(fake_inb(vm, BASE + KM_VIRTIO_ISR), 1);
	cr_assert_eq(fake_inb(vm, BASE + KM_VIRTIO_ISR), 0, "ISR clears");

	harvest(bits);
	for (uint64_t p = 0; p < RAM / 4096; p++)
		n += page_in(bits, p);
	cr_assert(page_in(bits, DATA / 4096 + 1));
	cr_assert(page_in(bits, DATA / 4096 + 2));
	cr_assert(page_in(bits, STATUS / 4096));
	cr_assert(page_in(bits, USED / 4096));
	cr_assert_eq(n, 4,
		     "%u pages logged, want the 2 data pages, the "
		     "status page and the used ring",
		     n);
}

Test(virtio_blk, a_write_is_tapped_and_reaches_the_disk_only_then)
{
	uint8_t back[512];
	int fd;

	driver_up();
	memset(vm->mem + DATA, 0x5a, 512);
	post(0, 0, DATA + 4096, 512, true); /* a read first */
	post(1 /* OUT */, 5, DATA, 512, false);

	/* The device's answer: output pending. */
	struct km_ioport *io = fake_io_find(vm, BASE);
	cr_assert(io->ops->tapped(io, BASE + KM_VIRTIO_QUEUE_NOTIFY,
				  (uint8_t[]){ 0, 0 }, 2));
	/* With nothing tapped, only the read is served. */
	km_tap_policy_parse(&vm->tap, "none", NULL);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), 1, "the write went out untapped");
	fd = open(disk, O_RDONLY);
	cr_assert_eq(pread(fd, back, 512, 5 * 512), 512);
	cr_assert_eq(back[0], 0xa5);

	km_tap_policy_default(&vm->tap);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(hook_calls, 1);
	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(vm->mem[STATUS + 3], 0);
	cr_assert_eq(pread(fd, back, 512, 5 * 512), 512);
	cr_assert_eq(back[0], 0x5a);
	close(fd);
	/* Nothing pending: not tapped. */
	cr_assert_not(io->ops->tapped(io, BASE + KM_VIRTIO_QUEUE_NOTIFY,
				      (uint8_t[]){ 0, 0 }, 2));
}

Test(virtio_blk, malformed_rings_and_chains_are_refused)
{
	uint64_t bits[RAM / 4096 / 64];

	/* A ring that would run past RAM is never set up. */
	fake_outl(vm, BASE + KM_VIRTIO_QUEUE_PFN, RAM / 4096 - 1);
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_QUEUE_PFN), 0);

	driver_up();
	harvest(bits);
	post(0, 0, RAM - 256, 512, true); /* buffer runs off RAM */
	post(0, 100, DATA, 512, true); /* past the disk's end */
	put_desc(6, HDR, 16, KM_VRING_DESC_F_NEXT, 6); /* a loop */
	memcpy(vm->mem + AVAIL + 4 + 2 * 2, &(uint16_t){ 6 }, 2);
	memcpy(vm->mem + AVAIL + 2, &(uint16_t){ 3 }, 2);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), 3, "every chain handed back");
	cr_assert_eq(vm->mem[RAM - 256], 0, "wrote outside its buffer");
	cr_assert_eq(vm->mem[STATUS + 3], 1, "IOERR past the disk");
	cr_assert_eq(vm->mem[DATA], 0);
	/* A queue index out of range is ignored. */
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 7, 2);
}

Test(virtio_blk, queue_state_round_trips)
{
	struct km_ioport *io = fake_io_find(vm, BASE);
	uint8_t buf[512];
	size_t n;

	driver_up();
	post(0, 1, DATA, 512, true);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2);
	n = io->ops->save(io, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	fake_outb(vm, BASE + KM_VIRTIO_STATUS, 0); /* reset */
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_QUEUE_PFN), 0);
	cr_assert_eq(io->ops->restore(io, buf, n), 0);
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_QUEUE_PFN), RING_PFN);
	cr_assert_eq(fake_inb(vm, BASE + KM_VIRTIO_STATUS), 7);
	/* The restored indices go on from where they were. */
	post(0, 3, DATA, 512, true);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(vm->mem[DATA], 0xa3);
	cr_assert_eq(io->ops->restore(io, buf, n - 1), -EINVAL);
	buf[4 + 2 + 1 + 1] = 7; /* irq_level not 0/1 */
	cr_assert_eq(io->ops->restore(io, buf, n), -EINVAL);
}

Test(virtio_blk, a_missing_disk_is_named)
{
	struct km_virtio_blk_cfg cfg = { .path = "/nonexistent/disk.img",
					 .io_base = KM_VIRTIO_IO_BASE(1),
					 .irq = 11 };
	struct km_err err = { 0 };

	cr_assert_eq(km_virtio_blk_init(vm, &cfg, &err), -ENOENT);
	cr_assert(strstr(err.msg, "cannot open the disk "
				  "/nonexistent/disk.img"),
		  "%s", err.msg);
	cfg.path = "/dev/null";
	memset(&err, 0, sizeof(err));
	cr_assert_eq(km_virtio_blk_init(vm, &cfg, &err), -EINVAL);
	cr_assert(strstr(err.msg, "regular file"), "%s", err.msg);
}
