// SPDX-License-Identifier: GPL-2.0
/*
 * The PIO dispatcher and the tap policy without KVM: a hand-filled
 * kvm_run stands in for the exit. Which exits call the hook, that the
 * hook runs before the I/O, and what the tap spec parser accepts.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices.h"
#include "fake_vm.h"

static struct km_vm *vm;
static struct km_vcpu *vcpu;
static int console;
static uint8_t run_page[4096] __attribute__((aligned(64)));

struct hook_log {
	unsigned int calls;
	uint16_t port[8];
	uint8_t byte[8];
	off_t console_len[8];
};

static void setup(void)
{
	struct km_err err = { 0 };

	vm = fake_vm();
	console = memfd_create("console", MFD_CLOEXEC);
	cr_assert_eq(km_serial_init(vm, console, &err), 0, "%s", err.msg);
	vcpu = &vm->vcpus[0];
	vcpu->vm = vm;
	vcpu->fd = -1;
	vcpu->run = (struct kvm_run *)run_page;
	memset(run_page, 0, sizeof(run_page));
}

static void teardown(void)
{
	fake_vm_free(vm);
	close(console);
}

TestSuite(dispatch, .init = setup, .fini = teardown);

static off_t console_len(void)
{
	struct stat st;

	fstat(console, &st);
	return st.st_size;
}

static int log_hook(struct km_vcpu *v, const struct km_tap_event *ev,
		    void *opaque)
{
	struct hook_log *log = opaque;

	(void)v;
	if (log->calls < 8) {
		log->port[log->calls] = ev->port;
		log->byte[log->calls] = ev->data[0];
		log->console_len[log->calls] = console_len();
	}
	log->calls++;
	return 0;
}

static uint8_t pio(uint8_t dir, uint16_t port, uint8_t val)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = run_page + 1024;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = dir;
	run->io.size = 1;
	run->io.count = 1;
	run->io.port = port;
	run->io.data_offset = 1024;
	*data = val;
	cr_assert_eq(km__ioport_dispatch(vcpu), 0);
	return *data;
}

Test(dispatch, only_thr_writes_call_the_hook_and_before_the_byte)
{
	struct hook_log log = { 0 };

	km_vm_set_tap(vm, NULL, log_hook, &log);
	pio(KVM_EXIT_IO_OUT, 0x3fb, 0x03); /* LCR */
	pio(KVM_EXIT_IO_OUT, 0x3f9, 0x00); /* IER */
	pio(KVM_EXIT_IO_IN, 0x3fd, 0); /* LSR */
	pio(KVM_EXIT_IO_OUT, 0x80, 0x00); /* nobody's port */
	cr_assert_eq(log.calls, 0);
	pio(KVM_EXIT_IO_OUT, 0x3f8, 'h');
	pio(KVM_EXIT_IO_OUT, 0x3f8, 'i');
	cr_assert_eq(log.calls, 2);
	cr_assert_eq(log.byte[0], 'h');
	cr_assert_eq(log.byte[1], 'i');
	cr_assert_eq(log.console_len[0], 0, "the byte left before the hook");
	cr_assert_eq(log.console_len[1], 1);
	cr_assert_eq(console_len(), 2);
	cr_assert_eq(vcpu->stats.tapped, 2);
}

Test(dispatch, unclaimed_ports_read_all_ones)
{
	cr_assert_eq(pio(KVM_EXIT_IO_IN, 0x2f8, 0), 0xff);
	cr_assert_eq(pio(KVM_EXIT_IO_IN, 0x3fd, 0), 0x60);
}

Test(dispatch, widened_and_narrowed_sets)
{
	struct km_tap_policy p;
	struct hook_log log = { 0 };
	struct km_err err = { 0 };

	cr_assert_eq(km_tap_policy_parse(&p, "none,0x80,0x90-0x9f", &err), 0);
	km_vm_set_tap(vm, &p, log_hook, &log);
	pio(KVM_EXIT_IO_OUT, 0x3f8, 'x'); /* devices: no longer */
	pio(KVM_EXIT_IO_OUT, 0x80, 1);
	pio(KVM_EXIT_IO_OUT, 0x9f, 2);
	pio(KVM_EXIT_IO_OUT, 0xa0, 3);
	pio(KVM_EXIT_IO_IN, 0x80, 0); /* reads are never tapped */
	cr_assert_eq(log.calls, 2);
	cr_assert_eq(log.port[0], 0x80);
	cr_assert_eq(log.port[1], 0x9f);
	cr_assert_eq(console_len(), 1, "untapped output still flows");

	cr_assert_eq(km_tap_policy_parse(&p, "all", &err), 0);
	km_vm_set_tap(vm, &p, log_hook, &log);
	pio(KVM_EXIT_IO_OUT, 0x1234, 0);
	cr_assert_eq(log.calls, 3);
}

Test(tap_policy, parse_accepts_and_refuses)
{
	struct km_tap_policy p;
	struct km_err err = { 0 };

	km_tap_policy_default(&p);
	cr_assert(km_tap_policy_match(&p, 0x3f8, true));
	cr_assert_not(km_tap_policy_match(&p, 0x3f8, false));
	cr_assert_eq(km_tap_policy_parse(&p, "devices,0x3f8,10-12", &err), 0);
	cr_assert(p.devices);
	cr_assert_eq(p.nranges, 2);
	cr_assert(km_tap_policy_match(&p, 11, false));
	cr_assert_not(km_tap_policy_match(&p, 13, false));
	cr_assert_eq(km_tap_policy_parse(&p, "all,none", &err), 0);
	cr_assert_not(km_tap_policy_match(&p, 0x3f8, true));

	cr_assert_eq(km_tap_policy_parse(&p, "serial", &err), -EINVAL);
	cr_assert(strstr(err.msg, "bad tap spec item 'serial'"), "%s", err.msg);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(km_tap_policy_parse(&p, "0x10000", &err), -EINVAL);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(km_tap_policy_parse(&p, "9-8", &err), -EINVAL);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(km_tap_policy_parse(&p, "1,2,3,4,5,6,7,8,9", &err),
		     -EINVAL);
	cr_assert(strstr(err.msg, "too many"), "%s", err.msg);
}
