// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-hello: the lab's demonstration guest. A real-mode guest prints a
 * line through port 0xe9 and then counts through port 0xf1; the host
 * prints the line, counts @n exits and reports the exit rate as JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kvm_util.h"

extern const uint8_t guest_hello_start[], guest_hello_end[];

__asm__(".pushsection .rodata\n"
	".code16\n"
	"guest_hello_start:\n"
	"	mov $(0x1000 + hello_msg - guest_hello_start), %si\n"
	"1:	lodsb\n"
	"	test %al, %al\n"
	"	jz 2f\n"
	"	out %al, $0xe9\n"
	"	jmp 1b\n"
	"2:	xor %cx, %cx\n"
	"3:	inc %cx\n"
	"	mov %cl, %al\n"
	"	out %al, $0xf1\n"
	"	jmp 3b\n"
	"hello_msg: .asciz \"Hello from a KVM guest inside the kemari lab\\n\"\n"
	"guest_hello_end:\n"
	".code64\n"
	".popsection\n");

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	struct lab_vm vm;
	long exits = 0, counted = 0;
	uint8_t val, expect = 1;
	double t0 = 0;

	if (n <= 0) {
		fprintf(stderr, "usage: kvm-hello [EXITS>0]\n");
		return 2;
	}
	lab_vm_create(&vm, 1u << 20, 0, guest_hello_start, guest_hello_end);
	while (counted < n) {
		uint16_t port = lab_vcpu_run_io(&vm, &val);

		exits++;
		if (port == 0xe9) {
			putchar(val);
			continue;
		}
		if (!counted)
			t0 = now_us();
		if (val != expect) {
			fprintf(stderr, "kvm-hello: guest counted %u, expected "
					"%u\n", val, expect);
			return 1;
		}
		expect++;
		counted++;
	}
	printf("{\"test\":\"kvm_hello\",\"exits\":%ld,\"pio_exit_us\":%.1f}\n",
	       exits, (now_us() - t0) / (counted - 1 ? counted - 1 : 1));
	lab_vm_destroy(&vm);
	return 0;
}
