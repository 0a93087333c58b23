// SPDX-License-Identifier: GPL-2.0
/*
 * The lab's KVM self-test, in the KVM-selftest shape: the guests are real
 * mode code in this file and report through PIO ports; the host asserts
 * each exit. Runs inside the lab under kvm_amd (nested SVM under TCG).
 *
 * What kemari relies on and this proves on the lab's kernel:
 *  - at a KVM_EXIT_IO for an OUT, RIP is still *at* the OUT: KVM skips the
 *    instruction only when userspace re-enters (complete_userspace_io);
 *  - a KVM_RUN with immediate_exit completes that I/O without entering the
 *    guest, after which RIP is past the OUT (and the OUT is not repeated);
 *  - KVM_GET_DIRTY_LOG reports exactly the pages the guest wrote, and each
 *    call starts a new round.
 *
 * Measured in the lab: the very first KVM_RUN reports the page holding the
 * first instruction as dirty although nothing wrote it (the first NPT
 * fault, a fetch, is logged as a write under TCG's nested SVM). A superset
 * is harmless to replication (one page too many is sent), so the test
 * allows exactly that page in a warm-up round and is exact afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "kvm_util.h"

#define PORT_A 0xf0
#define PORT_B 0xf1
#define MEM_SIZE (2u << 20)

extern const uint8_t guest_rip_start[], guest_rip_out1[], guest_rip_out2[],
	guest_rip_end[];
extern const uint8_t guest_dirty_start[], guest_dirty_end[];

__asm__(".pushsection .rodata\n"
	".code16\n"
	"guest_rip_start:\n"
	"	mov $0x41, %al\n"
	"guest_rip_out1:\n"
	"	out %al, $0xf0\n"
	"	mov $0x42, %al\n"
	"guest_rip_out2:\n"
	"	out %al, $0xf1\n"
	"	jmp guest_rip_out2\n"
	"guest_rip_end:\n"
	"guest_dirty_start:\n"
	"	mov $0, %al\n"
	"	out %al, $0xf0\n"
	"	movb $1, 0x3000\n"
	"	movb $1, 0x5000\n"
	"	movb $1, 0x9000\n"
	"	mov $1, %al\n"
	"	out %al, $0xf0\n"
	"	movb $2, 0x5000\n"
	"	movw $0x1234, 0x7ffe\n"
	"	mov $2, %al\n"
	"	out %al, $0xf0\n"
	"1:	mov $3, %al\n"
	"	out %al, $0xf0\n"
	"	jmp 1b\n"
	"guest_dirty_end:\n"
	".code64\n"
	".popsection\n");

static uint64_t gpa_of(const uint8_t *label)
{
	return LAB_CODE_GPA + (label - guest_rip_start);
}

Test(kvm, rip_at_out_until_next_run)
{
	struct lab_vm vm;
	uint8_t val;
	uint16_t port;

	lab_vm_create(&vm, MEM_SIZE, 0, guest_rip_start, guest_rip_end);

	port = lab_vcpu_run_io(&vm, &val);
	cr_assert_eq(port, PORT_A);
	cr_assert_eq(val, 0x41);
	cr_assert_eq(lab_vcpu_rip(&vm), gpa_of(guest_rip_out1),
		     "RIP %#lx is not at the OUT (%#lx)",
		     (unsigned long)lab_vcpu_rip(&vm),
		     (unsigned long)gpa_of(guest_rip_out1));
	/* Reading the registers again must not move RIP either. */
	cr_assert_eq(lab_vcpu_rip(&vm), gpa_of(guest_rip_out1));

	/* Complete the I/O without entering the guest. */
	vm.run->immediate_exit = 1;
	cr_assert_eq(lab_vcpu_run(&vm), -EINTR);
	vm.run->immediate_exit = 0;
	cr_assert_eq(lab_vcpu_rip(&vm), gpa_of(guest_rip_out1) + 2,
		     "RIP did not advance past the 2-byte OUT");

	/* The first OUT is not repeated: the next exit is the second one. */
	port = lab_vcpu_run_io(&vm, &val);
	cr_assert_eq(port, PORT_B);
	cr_assert_eq(val, 0x42);
	cr_assert_eq(lab_vcpu_rip(&vm), gpa_of(guest_rip_out2));

	lab_vm_destroy(&vm);
}

static void assert_dirty(struct lab_vm *vm, const uint64_t *want, int nwant)
{
	uint64_t got[64];
	int n = lab_vm_dirty_pages(vm, got, 64);

	for (int i = 0; i < n; i++)
		cr_log_info("dirty page %lu", (unsigned long)got[i]);
	cr_assert_eq(n, nwant, "%d dirty pages reported, %d written", n,
		     nwant);
	for (int i = 0; i < n; i++)
		cr_assert_eq(got[i], want[i], "dirty page %lu, expected %lu",
			     (unsigned long)got[i], (unsigned long)want[i]);
}

Test(kvm, dirty_log_is_exactly_the_written_pages)
{
	static const uint64_t round1[] = { 3, 5, 9 };
	static const uint64_t round2[] = { 5, 7 };
	struct lab_vm vm;
	uint8_t val;

	lab_vm_create(&vm, MEM_SIZE, 1, guest_dirty_start, guest_dirty_end);
	uint64_t warm[64];
	int nwarm;

	/* The VMM's own writes (the code copy) are invisible to the log. */
	assert_dirty(&vm, NULL, 0);

	/* Warm-up: no writes; at most the code page may be reported. */
	cr_assert_eq(lab_vcpu_run_io(&vm, &val), PORT_A);
	cr_assert_eq(val, 0);
	nwarm = lab_vm_dirty_pages(&vm, warm, 64);
	cr_assert(nwarm == 0 || (nwarm == 1 && warm[0] == LAB_CODE_GPA /
						      LAB_PAGE_SIZE),
		  "warm-up round reported %d dirty pages", nwarm);

	cr_assert_eq(lab_vcpu_run_io(&vm, &val), PORT_A);
	cr_assert_eq(val, 1);
	assert_dirty(&vm, round1, 3);
	cr_assert_eq(vm.mem[0x9000], 1);

	cr_assert_eq(lab_vcpu_run_io(&vm, &val), PORT_A);
	cr_assert_eq(val, 2);
	assert_dirty(&vm, round2, 2);
	cr_assert_eq(vm.mem[0x7ffe], 0x34);

	/* A round with no writes reports nothing. */
	cr_assert_eq(lab_vcpu_run_io(&vm, &val), PORT_A);
	cr_assert_eq(val, 3);
	assert_dirty(&vm, NULL, 0);

	lab_vm_destroy(&vm);
}
