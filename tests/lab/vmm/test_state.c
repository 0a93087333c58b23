// SPDX-License-Identifier: GPL-2.0
/*
 * Exact continuation, in the KVM-selftest shape. A deterministic real-mode
 * guest mixes memory writes (an LCG scattering adds over 16 KiB), x87
 * state (pi loaded at the start, stored at the end) and UART output (one
 * tapped byte every 64 steps, 41 in all). The reference run goes through
 * uninterrupted. Then, at randomly chosen tapped exits, the tap hook saves
 * the whole VM state and a copy of RAM and stops the VM before the I/O; a
 * new process builds a fresh KVM VM, loads RAM and the state, and runs to
 * the end. The bytes out before the checkpoint plus the restored run's
 * must equal the reference output, and the memory hash must match.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "boot.h"
#include "state.h"
#include "vm.h"

#define MEM_SIZE (2u << 20)
#define HASH_FROM 0x3000
#define HASH_TO 0x8000 /* vCPU 1's free-running counter is at 0x8000 */
#define NBYTES 41

extern const uint8_t guest_det_start[], guest_det_end[];

__asm__(".pushsection .rodata\n"
	".code16\n"
	"guest_det_start:\n"
	"	test %si, %si\n"
	"	jnz 9f\n"
	"	fninit\n"
	"	fldpi\n"
	"	mov $0x3f8, %dx\n"
	"	xor %ecx, %ecx\n"
	"	mov $0x12345678, %ebx\n"
	"1:	imul $1103515245, %ebx, %ebx\n"
	"	add $12345, %ebx\n"
	"	mov %ebx, %edi\n"
	"	shr $16, %edi\n"
	"	and $0x3ffc, %edi\n"
	"	addr32 add %ebx, 0x4000(%edi)\n"
	"	push %ebx\n"
	"	pop %eax\n"
	"	inc %ecx\n"
	"	test $0x3f, %cl\n"
	"	jnz 2f\n"
	"	shr $24, %eax\n"
	"	and $0x0f, %al\n"
	"	add $0x61, %al\n"
	"	out %al, %dx\n"
	"2:	cmp $2560, %ecx\n"
	"	jb 1b\n"
	"	fstpt 0x3000\n"
	"	mov $0x0a, %al\n"
	"	out %al, %dx\n"
	"3:	mov $0xfe, %al\n"
	"	out %al, $0x64\n"
	"	jmp 3b\n"
	"9:	addr32 incl 0x8000\n"
	"	jmp 9b\n"
	"guest_det_end:\n"
	".code64\n"
	".popsection\n");

struct result {
	int rc;
	uint64_t hash;
	size_t out_len;
	char out[64];
};

struct checkpoint {
	unsigned int at; /* save at this tapped exit */
	unsigned int seen;
	uint8_t *blob;
	size_t blob_len;
	uint8_t *ram;
	struct km_err err;
};

static struct km_vm *new_vm(unsigned int ncpus, int console)
{
	struct km_vm_config cfg = { .mem_size = MEM_SIZE,
				    .ncpus = ncpus,
				    .console_fd = console };
	struct km_err err = { 0 };
	struct km_vm *vm = km_vm_create(&cfg, &err);

	cr_assert_not_null(vm, "%s", err.msg);
	km_vm_set_timeout(vm, 60);
	return vm;
}

static void boot(struct km_vm *vm)
{
	struct km_boot_image img;
	struct km_err err = { 0 };

	cr_assert_eq(km_boot_set_raw(&img, guest_det_start,
				     guest_det_end - guest_det_start,
				     KM_RAW_DEFAULT_ADDR),
		     0);
	cr_assert_eq(km_boot_setup(vm, &img, &err), 0, "%s", err.msg);
	km_boot_release(&img);
}

static void collect(struct km_vm *vm, int console, int rc, struct result *res)
{
	ssize_t n = pread(console, res->out, sizeof(res->out) - 1, 0);

	res->rc = rc;
	res->out_len = n > 0 ? (size_t)n : 0;
	res->out[res->out_len] = '\0';
	res->hash = XXH64(vm->mem + HASH_FROM, HASH_TO - HASH_FROM, 0);
}

static void reference(unsigned int ncpus, struct result *res)
{
	int console = memfd_create("console", MFD_CLOEXEC);
	struct km_vm *vm = new_vm(ncpus, console);

	boot(vm);
	collect(vm, console, km_vm_run(vm), res);
	if (res->rc)
		fprintf(stderr, "reference run: %s\n", km_vm_end_message(vm));
	km_vm_destroy(vm);
	close(console);
	cr_assert_eq(res->rc, 0);
	cr_assert_eq(res->out_len, NBYTES, "reference output: '%s'", res->out);
}

static int save_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
		     void *opaque)
{
	struct checkpoint *cp = opaque;
	struct km_vm *vm = vcpu->vm;

	(void)ev;
	if (cp->seen++ != cp->at)
		return 0;
	if (km_vm_state_save(vm, &cp->blob, &cp->blob_len, &cp->err) < 0)
		return -1;
	cp->ram = malloc(vm->mem_size);
	if (!cp->ram)
		return -1;
	memcpy(cp->ram, vm->mem, vm->mem_size);
	return 1; /* stop here: the "primary" dies before the I/O */
}

/* The "primary": run until tapped exit @cp->at, checkpoint, stop. */
static void run_until_checkpoint(unsigned int ncpus, struct checkpoint *cp,
				 const struct result *ref)
{
	int console = memfd_create("console", MFD_CLOEXEC);
	struct km_vm *vm = new_vm(ncpus, console);
	struct result res;

	boot(vm);
	km_vm_set_tap(vm, NULL, save_hook, cp);
	collect(vm, console, km_vm_run(vm), &res);
	km_vm_destroy(vm);
	close(console);
	cr_assert_null(cp->err.msg[0] ? cp->err.msg : NULL, "%s", cp->err.msg);
	cr_assert_not_null(cp->blob, "no checkpoint taken at exit %u", cp->at);
	cr_assert_eq(res.out_len, cp->at, "%zu bytes out before exit %u",
		     res.out_len, cp->at);
	cr_assert_eq(memcmp(res.out, ref->out, cp->at), 0);
}

/* The "secondary", in a new process: a fresh VM from RAM + state. */
static void restore_child(unsigned int ncpus, const struct checkpoint *cp,
			  int wfd)
{
	int console = memfd_create("console", MFD_CLOEXEC);
	struct km_vm *vm = new_vm(ncpus, console);
	struct km_err err = { 0 };
	struct result res = { .rc = -1 };
	int r;

	memcpy(vm->mem, cp->ram, MEM_SIZE);
	r = km_vm_state_restore(vm, cp->blob, cp->blob_len, &err);
	if (r == 0)
		r = km_vm_run(vm);
	else
		fprintf(stderr, "restore: %s\n", err.msg);
	collect(vm, console, r, &res);
	if (r != 0)
		fprintf(stderr, "restored run: %s\n", km_vm_end_message(vm));
	km_vm_destroy(vm);
	if (write(wfd, &res, sizeof(res)) != sizeof(res))
		_exit(2);
	_exit(0);
}

static void restore_elsewhere(unsigned int ncpus, const struct checkpoint *cp,
			      struct result *res)
{
	int fds[2], status;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		restore_child(ncpus, cp, fds[1]);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], res, sizeof(*res)), (ssize_t)sizeof(*res),
		     "the restoring process died");
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void continuation(unsigned int ncpus, unsigned int npoints)
{
	unsigned int seed = (unsigned int)time(NULL), i;
	struct result ref, res;

	reference(ncpus, &ref);
	fprintf(stderr, "%u vCPU(s): reference output %.*s, seed %u\n", ncpus,
		NBYTES - 1, ref.out, seed);
	srand(seed);
	for (i = 0; i < npoints; i++) {
		struct checkpoint cp = { .at = (unsigned int)rand() % NBYTES };
		struct timespec t0, t1;

		if (i == 0)
			cp.at = NBYTES - 1; /* the last byte, '\n' */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		run_until_checkpoint(ncpus, &cp, &ref);
		restore_elsewhere(ncpus, &cp, &res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		cr_assert_eq(res.rc, 0,
			     "checkpoint at exit %u: restored run "
			     "failed",
			     cp.at);
		cr_assert_eq(cp.at + res.out_len, NBYTES,
			     "checkpoint at %u: "
			     "%zu bytes after restore",
			     cp.at, res.out_len);
		cr_assert_eq(memcmp(res.out, ref.out + cp.at, res.out_len), 0,
			     "checkpoint at %u: output '%s', expected '%s'",
			     cp.at, res.out, ref.out + cp.at);
		cr_assert_eq(res.hash, ref.hash,
			     "checkpoint at %u: memory "
			     "differs from the uninterrupted run",
			     cp.at);
		fprintf(stderr,
			"  checkpoint at tapped exit %2u: %zu-byte "
			"state, continued exactly (%.0f ms)\n",
			cp.at, cp.blob_len,
			(t1.tv_sec - t0.tv_sec) * 1e3 +
				(t1.tv_nsec - t0.tv_nsec) / 1e6);
		free(cp.blob);
		free(cp.ram);
	}
}

Test(state, one_vcpu_continues_exactly_after_restore)
{
	continuation(1, 6);
}

Test(state, two_vcpus_continue_exactly_after_restore)
{
	continuation(2, 4);
}

static double ms(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1e3 + (b->tv_nsec - a->tv_nsec) / 1e6;
}

Test(state, save_and_restore_times_for_256_mib)
{
	struct km_vm_config cfg = { .mem_size = 256u << 20,
				    .ncpus = 2,
				    .console_fd = -1 };
	struct km_err err = { 0 };
	struct timespec t0, t1, t2, t3;
	struct km_vm *vm, *vm2;
	uint8_t *blob;
	size_t len;

	vm = km_vm_create(&cfg, &err);
	cr_assert_not_null(vm, "%s", err.msg);
	vm2 = km_vm_create(&cfg, &err);
	cr_assert_not_null(vm2, "%s", err.msg);
	memset(vm->mem, 0x5a, cfg.mem_size);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(km_vm_state_save(vm, &blob, &len, &err), 0, "%s", err.msg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	memcpy(vm2->mem, vm->mem, cfg.mem_size);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	cr_assert_eq(km_vm_state_restore(vm2, blob, len, &err), 0, "%s",
		     err.msg);
	clock_gettime(CLOCK_MONOTONIC, &t3);
	fprintf(stderr,
		"256 MiB, 2 vCPUs: state %zu bytes saved in %.2f ms, "
		"restored in %.2f ms; copying the 256 MiB of RAM into "
		"the new VM took %.0f ms\n",
		len, ms(&t0, &t1), ms(&t2, &t3), ms(&t1, &t2));
	cr_assert_eq(memcmp(vm2->mem + (100u << 20), vm->mem + (100u << 20),
			    4096),
		     0);
	free(blob);
	km_vm_destroy(vm2);
	km_vm_destroy(vm);
}
