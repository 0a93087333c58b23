// SPDX-License-Identifier: GPL-2.0
/*
 * bench-vmm-exits: PIO exit rates of a raw 2-vCPU guest, untapped (the
 * floor, measured in the same run) and tapped with a no-op hook (the other
 * vCPU kicked out of the guest and parked at every exit), interleaved over
 * a few rounds. One JSON object per line; only ratios within one run mean
 * anything under the lab's TCG. Fails only if a VM fails.
 *   bench-vmm-exits [OUTS [ROUNDS]]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boot.h"
#include "vm.h"

#define TEST_PORT 0xf0
#define LOOP_GPA 0x9000

extern const uint8_t bench_loop_start[], bench_loop_end[];

/* vCPU 0: LOOP_GPA's count of OUTs to TEST_PORT, then reset; vCPU 1 spins. */
__asm__(".pushsection .rodata\n"
	".code16\n"
	"bench_loop_start:\n"
	"	test %si, %si\n"
	"	jnz 3f\n"
	"	mov 0x9000, %cx\n"
	"1:	out %al, $0xf0\n"
	"	loop 1b\n"
	"2:	mov $0xfe, %al\n"
	"	out %al, $0x64\n"
	"	jmp 2b\n"
	"3:	addr32 incl 0x8000\n"
	"	jmp 3b\n"
	"bench_loop_end:\n"
	".code64\n"
	".popsection\n");

static void nop_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		    unsigned int size)
{
	(void)io;
	(void)port;
	(void)data;
	(void)size;
}

static const struct km_ioport_ops nop_ops = { .name = "bench-port",
					      .out = nop_out };

static int nop_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
		    void *opaque)
{
	(void)vcpu;
	(void)ev;
	(void)opaque;
	return 0;
}

/* One VM run of @outs exits; its duration in seconds, or < 0. */
static double run_once(const char *tap, uint16_t outs)
{
	struct km_vm_config cfg = { .mem_size = 2 << 20,
				    .ncpus = 2,
				    .console_fd = -1 };
	struct km_tap_policy policy;
	struct km_boot_image img;
	struct km_err err = { 0 };
	struct km_vm *vm;
	double secs = -1;

	vm = km_vm_create(&cfg, &err);
	if (!vm) {
		fprintf(stderr, "bench-vmm-exits: %s\n", err.msg);
		return -1;
	}
	if (km_ioport_register(vm, TEST_PORT, 1, &nop_ops, NULL) < 0 ||
	    km_tap_policy_parse(&policy, tap, &err) < 0 ||
	    km_boot_set_raw(&img, bench_loop_start,
			    bench_loop_end - bench_loop_start,
			    KM_RAW_DEFAULT_ADDR) < 0)
		goto out;
	km_vm_set_tap(vm, &policy, nop_hook, NULL);
	km_vm_set_timeout(vm, 120);
	if (km_boot_setup(vm, &img, &err) < 0) {
		km_boot_release(&img);
		goto out;
	}
	km_boot_release(&img);
	memcpy(vm->mem + LOOP_GPA, &outs, sizeof(outs));
	if (km_vm_run(vm) < 0) {
		fprintf(stderr, "bench-vmm-exits: %s\n", km_vm_end_message(vm));
		goto out;
	}
	secs = (vm->t_end.tv_sec - vm->t_start.tv_sec) +
	       (vm->t_end.tv_nsec - vm->t_start.tv_nsec) / 1e9;
out:
	if (err.msg[0])
		fprintf(stderr, "bench-vmm-exits: %s\n", err.msg);
	km_vm_destroy(vm);
	return secs;
}

int main(int argc, char **argv)
{
	unsigned long outs = argc > 1 ? strtoul(argv[1], NULL, 0) : 10000;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	double best_floor = 0, best_tapped = 0;

	if (outs < 1 || outs > 65535 || rounds < 1 || rounds > 100) {
		fprintf(stderr, "usage: bench-vmm-exits [OUTS 1-65535 "
				"[ROUNDS 1-100]]\n");
		return 2;
	}
	for (int r = 0; r < rounds; r++) {
		double u = run_once("devices", (uint16_t)outs);
		double t = run_once("0xf0", (uint16_t)outs);

		if (u <= 0 || t <= 0)
			return 1;
		printf("{\"bench\":\"vmm-pio-exits\",\"round\":%d,"
		       "\"exits\":%lu,\"untapped_s\":%.4f,"
		       "\"tapped_s\":%.4f,\"untapped_per_s\":%.0f,"
		       "\"tapped_per_s\":%.0f,\"tapped_over_untapped\":%.3f}\n",
		       r, outs, u, t, outs / u, outs / t, u / t);
		fflush(stdout);
		if (outs / u > best_floor)
			best_floor = outs / u;
		if (outs / t > best_tapped)
			best_tapped = outs / t;
	}
	printf("{\"bench\":\"vmm-pio-exits\",\"summary\":true,"
	       "\"best_untapped_per_s\":%.0f,\"best_tapped_per_s\":%.0f,"
	       "\"ratio\":%.3f}\n",
	       best_floor, best_tapped, best_tapped / best_floor);
	return 0;
}
