// SPDX-License-Identifier: GPL-2.0
/*
 * The legacy device models, driven through their ops as the dispatcher
 * does: what Linux's probes read back, and what each write does.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devices.h"
#include "fake_vm.h"
#include "pci.h"

#define COM1 0x3f8

static struct km_vm *vm;
static int console;

static void setup(void)
{
	struct km_err err = { 0 };

	vm = fake_vm();
	console = memfd_create("console", MFD_CLOEXEC);
	cr_assert_geq(console, 0);
	cr_assert_eq(km_serial_init(vm, console, &err), 0, "%s", err.msg);
	cr_assert_eq(km_rtc_init(vm, &err), 0, "%s", err.msg);
	cr_assert_eq(km_i8042_init(vm, &err), 0, "%s", err.msg);
	cr_assert_eq(km_pci_init(vm, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	fake_vm_free(vm);
	close(console);
}

static off_t console_len(void)
{
	struct stat st;

	cr_assert_eq(fstat(console, &st), 0);
	return st.st_size;
}

TestSuite(devices, .init = setup, .fini = teardown);

Test(devices, uart_transmits_thr_writes_and_only_those)
{
	char buf[4] = { 0 };

	fake_outb(vm, COM1 + 3, 0x03); /* 8N1, DLAB clear */
	fake_outb(vm, COM1, 'o');
	fake_outb(vm, COM1, 'k');
	fake_outb(vm, COM1 + 7, 'x'); /* scratch: not output */
	cr_assert_eq(console_len(), 2);
	cr_assert_eq(pread(console, buf, 2, 0), 2);
	cr_assert_str_eq(buf, "ok");
	cr_assert_eq(fake_inb(vm, COM1 + 7), 'x');
}

Test(devices, uart_divisor_latch_hides_thr)
{
	struct km_ioport *io = fake_io_find(vm, COM1);

	fake_outb(vm, COM1 + 3, 0x83); /* DLAB set */
	cr_assert_not(io->ops->tapped(io, COM1, (uint8_t[]){ 0 }, 1));
	fake_outb(vm, COM1, 0x0c);
	fake_outb(vm, COM1 + 1, 0x00);
	cr_assert_eq(fake_inb(vm, COM1), 0x0c);
	cr_assert_eq(console_len(), 0, "a divisor write reached the console");
	fake_outb(vm, COM1 + 3, 0x03);
	cr_assert(io->ops->tapped(io, COM1, (uint8_t[]){ 0 }, 1));
	cr_assert_not(io->ops->tapped(io, COM1 + 1, (uint8_t[]){ 0 }, 1),
		      "IER is not output");
	cr_assert_not(io->ops->tapped(io, COM1 + 7, (uint8_t[]){ 0 }, 1));
}

Test(devices, uart_loopback_answers_linux_probe)
{
	/* 8250 autoconfig: MCR = LOOP | OUT2 | RTS must read MSR 0x90. */
	fake_outb(vm, COM1 + 4, 0x1a);
	cr_assert_eq(fake_inb(vm, COM1 + 6) & 0xf0, 0x90);
	fake_outb(vm, COM1, 'z');
	cr_assert_eq(console_len(), 0, "loopback bytes must not leave");
	fake_outb(vm, COM1 + 4, 0x0b);
	cr_assert_eq(fake_inb(vm, COM1 + 6) & 0xf0, 0xb0);
}

Test(devices, uart_thre_interrupt_follows_ier)
{
	cr_assert_eq(fake_inb(vm, COM1 + 5), 0x60, "LSR: THRE | TEMT");
	cr_assert_eq(fake_inb(vm, COM1 + 2), 0x01, "no interrupt pending");
	fake_outb(vm, COM1 + 2, 0x07); /* FIFO on */
	fake_outb(vm, COM1 + 1, 0x02); /* THRI */
	cr_assert_eq(fake_inb(vm, COM1 + 2), 0xc2);
	/* Writing THR keeps THRI pending: the transmitter is empty again. */
	fake_outb(vm, COM1, 'a');
	cr_assert_eq(fake_inb(vm, COM1 + 2), 0xc2);
	fake_outb(vm, COM1 + 1, 0xff);
	cr_assert_eq(fake_inb(vm, COM1 + 1), 0x0f, "IER keeps 4 bits");
	fake_outb(vm, COM1 + 1, 0x00);
	cr_assert_eq(fake_inb(vm, COM1 + 2), 0xc1);
}

static uint8_t cmos(uint8_t reg)
{
	fake_outb(vm, 0x70, reg);
	return fake_inb(vm, 0x71);
}

static int from_bcd(uint8_t v)
{
	cr_assert_lt(v & 0xf, 10, "%#x is not BCD", v);
	cr_assert_lt(v >> 4, 10, "%#x is not BCD", v);
	return (v >> 4) * 10 + (v & 0xf);
}

Test(devices, rtc_reads_host_utc_in_bcd_with_uip_clear)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	cr_assert_eq(cmos(0x0a) & 0x80, 0, "UIP must be clear");
	fake_outb(vm, 0x70, 0x0a);
	fake_outb(vm, 0x71, 0xa6);
	cr_assert_eq(cmos(0x0a), 0x26, "UIP stays clear after a write");
	cr_assert_eq(cmos(0x0b), 0x02, "24 hour, BCD");
	cr_assert_eq(cmos(0x0d), 0x80, "time valid");
	cr_assert_eq(from_bcd(cmos(0x09)), tm.tm_year % 100);
	cr_assert_eq(from_bcd(cmos(0x32)), 19 + tm.tm_year / 100);
	cr_assert_leq(from_bcd(cmos(0x08)), 12);
	cr_assert_lt(from_bcd(cmos(0x00)), 60);
	cr_assert_eq(cmos(0x80 | 0x0d), 0x80, "bit 7 is NMI disable");
	fake_outb(vm, 0x70, 0x40);
	fake_outb(vm, 0x71, 0x5a);
	cr_assert_eq(cmos(0x40), 0x5a, "CMOS RAM keeps writes");
}

Test(devices, i8042_answers_probe_and_reset_ends_the_vm)
{
	cr_assert_eq(fake_inb(vm, 0x64) & 0x01, 0, "output buffer empty");
	fake_outb(vm, 0x64, 0xaa);
	cr_assert_eq(fake_inb(vm, 0x64) & 0x01, 0x01);
	cr_assert_eq(fake_inb(vm, 0x60), 0x55, "self-test passed");
	cr_assert_eq(fake_inb(vm, 0x64) & 0x01, 0);
	fake_outb(vm, 0x64, 0x60);
	fake_outb(vm, 0x60, 0x45);
	fake_outb(vm, 0x64, 0x20);
	cr_assert_eq(fake_inb(vm, 0x60), 0x45, "command byte written back");
	cr_assert_not(vm->stopping);
	fake_outb(vm, 0x64, 0xfe);
	cr_assert(vm->stopping);
	cr_assert_eq(vm->end, KM_VM_RESET);
	cr_assert(strstr(km_vm_end_message(vm), "i8042"));
}

Test(devices, pci_host_bridge_and_a_device_on_bus_0)
{
	struct km_pci_dev dev = { .vendor = 0x1af4,
				  .device = 0x1001,
				  .subsys_vendor = 0x1af4,
				  .subsys_id = 2,
				  .class_rev = 0x01000000,
				  .io_base = 0xc040,
				  .io_size = 0x40,
				  .irq = 10 };
	struct km_pci_irq irqs[4];
	struct km_err err = { 0 };

	/* Linux's pci_check_type1(): the address register must read back. */
	fake_outl(vm, 0xcf8, 0x80000000);
	cr_assert_eq(fake_inl(vm, 0xcf8), 0x80000000);
	fake_outb(vm, 0xcfb, 0x01);
	cr_assert_eq(fake_inl(vm, 0xcf8), 0x01000000);
	/* 00.0 is a host bridge (pci_sanity_check()), 01.0 is empty. */
	fake_outl(vm, 0xcf8, 0x80000000);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0x12378086);
	fake_outl(vm, 0xcf8, 0x80000008);
	cr_assert_eq(fake_inl(vm, 0xcfc) >> 8, 0x060000);
	fake_outl(vm, 0xcf8, 0x80000800);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0xffffffff, "no device at 01.0");

	cr_assert_eq(km_pci_add(vm, &dev, &err), 1, "%s", err.msg);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0x10011af4);
	fake_outl(vm, 0xcf8, 0x8000082c);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0x00021af4, "subsystem: virtio ID");
	/* BAR0: its fixed I/O address; a size probe answers the size. */
	fake_outl(vm, 0xcf8, 0x80000810);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0xc041);
	fake_outl(vm, 0xcfc, 0xffffffff);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0xffffffc1);
	fake_outl(vm, 0xcfc, 0x1234);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0xc041, "the BAR moved");
	/* Interrupt line (writable) and pin INTA. */
	fake_outl(vm, 0xcf8, 0x8000083c);
	cr_assert_eq(fake_inl(vm, 0xcfc) & 0xffff, 0x010a);
	/* Other functions and buses are empty. */
	fake_outl(vm, 0xcf8, 0x80000900);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0xffffffff);
	fake_outl(vm, 0xcf8, 0x80010800);
	cr_assert_eq(fake_inl(vm, 0xcfc), 0xffffffff);

	/* Command and interrupt line travel in the host bridge's state. */
	struct km_ioport *io = fake_io_find(vm, 0xcf8);
	uint8_t st[256];
	size_t n;

	fake_outl(vm, 0xcf8, 0x80000804);
	fake_outl(vm, 0xcfc, 0x0001); /* I/O space enable */
	n = io->ops->save(io, st, sizeof(st));
	cr_assert_gt(n, 0);
	fake_outl(vm, 0xcfc, 0x0000);
	cr_assert_eq(io->ops->restore(io, st, n), 0);
	fake_outl(vm, 0xcf8, 0x80000804);
	cr_assert_eq(fake_inl(vm, 0xcfc) & 0xffff, 0x0001);
	cr_assert_eq(io->ops->restore(io, st, n - 1), -EINVAL);

	cr_assert_eq(km_pci_irqs(vm, irqs, 4), 1);
	cr_assert_eq(irqs[0].slot, 1);
	cr_assert_eq(irqs[0].irq, 10);
	dev.io_base = 0xc050; /* not aligned to its size */
	cr_assert_eq(km_pci_add(vm, &dev, &err), -EINVAL);
}

Test(devices, overlapping_or_too_many_ranges_are_refused)
{
	static const struct km_ioport_ops none = { .name = "none" };
	int r = 0;

	cr_assert_eq(km_ioport_register(vm, 0x3fc, 8, &none, NULL), -EEXIST);
	cr_assert_eq(km_ioport_register(vm, 0x5f, 2, &none, NULL), -EEXIST);
	for (uint16_t p = 0x100; r == 0; p += 2)
		r = km_ioport_register(vm, p, 2, &none, NULL);
	cr_assert_eq(r, -ENOSPC);
	cr_assert_eq(vm->nioports, KM_MAX_IOPORTS);
}
