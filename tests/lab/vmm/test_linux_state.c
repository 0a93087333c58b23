// SPDX-License-Identifier: GPL-2.0
/*
 * Save/restore smoke test on Linux: boot Debian's kernel on 2 vCPUs, stop
 * at a tapped console byte in the middle of the boot (the "primary" dies
 * there, before the byte is written), then in a new process build a fresh
 * VM from the RAM copy and the saved state. The restored guest must write
 * exactly that byte first, reach userspace on both vCPUs and reboot.
 *
 * Environment: KM_TEST_KERNEL, KM_TEST_INITRD (set by linux-state.sh).
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

#include "boot.h"
#include "state.h"
#include "vm.h"

#define MEM_SIZE (256ull << 20)
#define NCPUS 2
#define CHECKPOINT_AT 12000 /* tapped exits: about halfway through boot */
#define CMDLINE                                                   \
	"console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1 " \
	"i8042.noaux i8042.nomux i8042.nopnp rdinit=/init"

struct checkpoint {
	unsigned int seen;
	uint8_t byte;
	uint8_t *blob;
	size_t blob_len;
	uint8_t *ram;
	double save_ms;
	struct km_err err;
};

struct outcome {
	int rc;
	uint8_t first;
	int marker;
	double restore_ms, run_s;
	char end[600];
};

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 +
	       (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static struct km_vm *linux_vm(int console)
{
	struct km_vm_config cfg = { .mem_size = MEM_SIZE,
				    .ncpus = NCPUS,
				    .console_fd = console };
	struct km_err err = { 0 };
	struct km_vm *vm = km_vm_create(&cfg, &err);

	cr_assert_not_null(vm, "%s", err.msg);
	km_vm_set_timeout(vm, 200);
	return vm;
}

static int checkpoint_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
			   void *opaque)
{
	struct checkpoint *cp = opaque;
	struct timespec t0;

	if (++cp->seen != CHECKPOINT_AT)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cp->byte = ev->data[0];
	if (km_vm_state_save(vcpu->vm, &cp->blob, &cp->blob_len, &cp->err))
		return -1;
	cp->save_ms = since(&t0);
	cp->ram = malloc(MEM_SIZE);
	if (!cp->ram)
		return -1;
	memcpy(cp->ram, vcpu->vm->mem, MEM_SIZE);
	return 1; /* the primary dies before the byte leaves */
}

static void primary(struct checkpoint *cp)
{
	const char *kernel = getenv("KM_TEST_KERNEL");
	const char *initrd = getenv("KM_TEST_INITRD");
	int console = memfd_create("console", MFD_CLOEXEC);
	struct km_boot_image img;
	struct km_err err = { 0 };
	struct km_vm *vm;

	cr_assert(kernel && initrd, "KM_TEST_KERNEL/KM_TEST_INITRD unset");
	cr_assert_eq(km_boot_load_linux(&img, kernel, initrd, CMDLINE, &err), 0,
		     "%s", err.msg);
	vm = linux_vm(console);
	cr_assert_eq(km_boot_setup(vm, &img, &err), 0, "%s", err.msg);
	km_boot_release(&img);
	km_vm_set_tap(vm, NULL, checkpoint_hook, cp);
	cr_assert_eq(km_vm_run(vm), -EIO, "%s", km_vm_end_message(vm));
	cr_assert_null(cp->err.msg[0] ? cp->err.msg : NULL, "%s", cp->err.msg);
	cr_assert_not_null(cp->blob,
			   "the guest wrote fewer than %d bytes (%u); the VM "
			   "ended: %s",
			   CHECKPOINT_AT, cp->seen, km_vm_end_message(vm));
	cr_assert_eq(lseek(console, 0, SEEK_END), CHECKPOINT_AT - 1,
		     "the checkpointed byte (or a later one) left the VM");
	km_vm_destroy(vm);
	close(console);
}

static void secondary(const struct checkpoint *cp, int wfd)
{
	int console = memfd_create("console", MFD_CLOEXEC);
	struct km_vm *vm = linux_vm(console);
	struct outcome o = { .rc = -1 };
	struct km_err err = { 0 };
	struct timespec t0;
	static char out[1 << 20];
	ssize_t n;

	memcpy(vm->mem, cp->ram, MEM_SIZE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	o.rc = km_vm_state_restore(vm, cp->blob, cp->blob_len, &err);
	o.restore_ms = since(&t0);
	if (o.rc == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		o.rc = km_vm_run(vm);
		o.run_s = since(&t0) / 1e3;
		snprintf(o.end, sizeof(o.end), "%s", km_vm_end_message(vm));
	} else {
		snprintf(o.end, sizeof(o.end), "%s", err.msg);
	}
	n = pread(console, out, sizeof(out) - 1, 0);
	if (n > 0) {
		out[n] = '\0';
		o.first = (uint8_t)out[0];
		o.marker = strstr(out, "KEMARI-BOOT-OK cpus=2 ") != NULL;
		fprintf(stderr, "restored guest's console (tail):\n%s\n",
			out + (n > 600 ? n - 600 : 0));
	}
	km_vm_destroy(vm);
	if (write(wfd, &o, sizeof(o)) != sizeof(o))
		_exit(2);
	_exit(0);
}

Test(linux_state, a_checkpointed_linux_guest_boots_on_elsewhere)
{
	struct checkpoint cp = { 0 };
	struct outcome o;
	int fds[2], status;
	pid_t pid;

	primary(&cp);
	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		secondary(&cp, fds[1]);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &o, sizeof(o)), (ssize_t)sizeof(o));
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	fprintf(stderr,
		"checkpoint at console byte %d ('%c'): %zu-byte state "
		"saved in %.1f ms, restored in %.1f ms in a new "
		"process; restored guest ran %.1f s: %s\n",
		CHECKPOINT_AT, cp.byte, cp.blob_len, cp.save_ms, o.restore_ms,
		o.run_s, o.end);
	cr_assert_eq(o.rc, 0, "the restored guest failed: %s", o.end);
	cr_assert_eq(o.first, cp.byte,
		     "the restored guest's first byte is "
		     "%#x, the checkpointed OUT wrote %#x",
		     o.first, cp.byte);
	cr_assert(o.marker, "the restored guest never reached userspace on "
			    "2 vCPUs");
	free(cp.blob);
	free(cp.ram);
}
