// SPDX-License-Identifier: GPL-2.0
/*
 * The state decoder without KVM: every malformed blob is refused with a
 * message before anything is applied (the fake VM has no KVM fds, so an
 * attempt to apply would fail differently and the messages would not
 * match).
 */
#include <xxhash.h>

#include "devices.h"
#include "fake_vm.h"
#include "state.h"

static struct km_vm *vm;
static uint8_t blob[65536];
static size_t blob_len;
static uint32_t nsec;

/* Start a new blob for the same fake VM (several cases per test). */
static void reset_blob(void)
{
	vm->ncpus = 1;
	vm->mem_size = 2 << 20;
	blob_len = sizeof(struct km_state_hdr);
	nsec = 0;
}

static void setup(void)
{
	vm = fake_vm();
	reset_blob();
}

static void teardown(void)
{
	fake_vm_free(vm);
}

TestSuite(state_decode, .init = setup, .fini = teardown);

static void add(uint32_t type, uint32_t index, size_t len)
{
	struct km_state_sec sec = { .type = type,
				    .index = index,
				    .len = (uint32_t)len };

	cr_assert_leq(blob_len + sizeof(sec) + len, sizeof(blob));
	memcpy(blob + blob_len, &sec, sizeof(sec));
	memset(blob + blob_len + sizeof(sec), 0, len);
	blob_len += sizeof(sec) + len;
	nsec++;
}

static void add_vm_section(uint64_t mem, uint32_t ncpus)
{
	struct km_state_vm info = { .mem_size = mem, .ncpus = ncpus };

	add(KM_ST_VM, 0, sizeof(info));
	memcpy(blob + blob_len - sizeof(info), &info, sizeof(info));
}

static void seal(void)
{
	struct km_state_hdr hdr = {
		.magic = KM_STATE_MAGIC,
		.version = KM_STATE_VERSION,
		.nsections = nsec,
		.payload_len = blob_len - sizeof(hdr),
	};

	hdr.checksum = XXH64(blob + sizeof(hdr), hdr.payload_len, 0);
	memcpy(blob, &hdr, sizeof(hdr));
}

static void refused(int want, const char *msg)
{
	struct km_err err = { 0 };

	cr_assert_eq(km_vm_state_restore(vm, blob, blob_len, &err), want, "%s",
		     err.msg);
	cr_assert(strstr(err.msg, msg), "'%s' does not say '%s'", err.msg, msg);
}

Test(state_decode, header_problems)
{
	struct km_state_hdr *hdr = (void *)blob;

	add_vm_section(2 << 20, 1);
	seal();
	blob_len = 10;
	refused(-EINVAL, "10 bytes is shorter than its 32-byte header");
	blob_len = sizeof(*hdr) + 16 + sizeof(struct km_state_vm);

	hdr->magic = 0x11111111;
	refused(-EINVAL, "bad magic 0x11111111");
	seal();
	hdr->version = 2;
	refused(-EINVAL, "format version 2");
	seal();
	blob_len--;
	refused(-EINVAL, "announces 32 payload bytes, 31 are there");
	blob_len++;
	blob[blob_len - 1] ^= 1;
	refused(-EBADMSG, "checksum mismatch");
}

Test(state_decode, section_lengths_are_checked_against_the_buffer)
{
	add_vm_section(2 << 20, 1);
	add(KM_ST_REGS, 0, 8);
	/* Claim more than there is. */
	memcpy(blob + blob_len - 8 - 16 + 8, &(uint32_t){ 4096 }, 4);
	seal();
	refused(-EINVAL, "section 1 claims 4096 bytes, 8 remain");

	reset_blob();
	add_vm_section(2 << 20, 1);
	nsec = 3; /* more sections announced than present */
	seal();
	refused(-EINVAL, "section 1 of 3 starts past the end");
}

Test(state_decode, fixed_sections_must_have_their_size)
{
	add_vm_section(2 << 20, 1);
	add(KM_ST_REGS, 0, 5);
	seal();
	refused(-EINVAL, "5 bytes, its structure has 144");
}

Test(state_decode, msrs_must_be_whole_entries)
{
	add_vm_section(2 << 20, 1);
	add(KM_ST_MSRS, 0, 17);
	seal();
	refused(-EINVAL, "17 bytes is not a list of at most 4096 MSRs");
}

Test(state_decode, sections_must_belong_and_appear_once)
{
	add_vm_section(2 << 20, 1);
	add(KM_ST_REGS, 1, sizeof(struct kvm_regs)); /* no vCPU 1 */
	seal();
	refused(-EINVAL, "type 10 index 1 does not belong to this VM");

	reset_blob();
	add_vm_section(2 << 20, 1);
	add(KM_ST_CLOCK, 0, sizeof(struct kvm_clock_data));
	add(KM_ST_CLOCK, 0, sizeof(struct kvm_clock_data));
	seal();
	refused(-EINVAL, "appears twice");

	reset_blob();
	add_vm_section(2 << 20, 1);
	add(999, 0, 4);
	seal();
	refused(-EINVAL, "type 999 index 0 does not belong");
}

Test(state_decode, the_vm_must_match_and_be_complete)
{
	add_vm_section(4 << 20, 1);
	seal();
	refused(-EINVAL, "it is for 4 MiB and 1 vCPUs, this VM has 2 MiB");

	reset_blob();
	add_vm_section(2 << 20, 1);
	add(KM_ST_REGS, 0, sizeof(struct kvm_regs));
	seal();
	refused(-EINVAL, "vCPU 0 has no section of type 11");

	reset_blob();
	seal();
	refused(-EINVAL, "the VM section is missing");
}

Test(state_decode, trailing_bytes_are_refused)
{
	add_vm_section(2 << 20, 1);
	blob_len += 3;
	seal();
	refused(-EINVAL, "3 bytes follow the last section");
}

Test(state_decode, device_state_round_trips_and_checks_length)
{
	struct km_err err = { 0 };
	struct km_ioport *io;
	uint8_t buf[512];
	size_t n;

	cr_assert_eq(km_serial_init(vm, -1, &err), 0);
	cr_assert_eq(km_rtc_init(vm, &err), 0);
	cr_assert_eq(km_i8042_init(vm, &err), 0);
	cr_assert_eq(km_pci_init(vm, &err), 0);
	fake_outb(vm, 0x3fb, 0x83);
	fake_outb(vm, 0x3f8, 0x0c);
	fake_outb(vm, 0x3fb, 0x03);
	fake_outb(vm, 0x3ff, 0x77);
	io = fake_io_find(vm, 0x3f8);
	n = io->ops->save(io, buf, sizeof(buf));
	fake_outb(vm, 0x3ff, 0x00);
	fake_outb(vm, 0x3fb, 0x00);
	cr_assert_eq(io->ops->restore(io, buf, n), 0);
	cr_assert_eq(fake_inb(vm, 0x3ff), 0x77);
	cr_assert_eq(fake_inb(vm, 0x3fb), 0x03);
	cr_assert_eq(io->ops->restore(io, buf, n - 1), -EINVAL);

	io = fake_io_find(vm, 0x70);
	fake_outb(vm, 0x70, 0x40);
	fake_outb(vm, 0x71, 0x99);
	n = io->ops->save(io, buf, sizeof(buf));
	fake_outb(vm, 0x71, 0x00);
	cr_assert_eq(io->ops->restore(io, buf, n), 0);
	cr_assert_eq(fake_inb(vm, 0x71), 0x99);
	cr_assert_eq(io->ops->restore(io, buf, n + 1), -EINVAL);

	/* A complete-looking blob without the devices is refused. */
	add_vm_section(2 << 20, 0);
	vm->ncpus = 0;
	for (uint32_t i = 0; i < 3; i++)
		add(KM_ST_IRQCHIP, i, sizeof(struct kvm_irqchip));
	add(KM_ST_PIT, 0, sizeof(struct kvm_pit_state2));
	add(KM_ST_CLOCK, 0, sizeof(struct kvm_clock_data));
	seal();
	refused(-EINVAL, "the serial device at 0x3f8 is missing");
}
