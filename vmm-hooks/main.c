// SPDX-License-Identifier: GPL-2.0
/*
 * kemari-vmm: boot a Linux bzImage (or a raw test image) in a KVM VM with
 * the event tap in place. Files and options are checked before KVM is
 * opened, so every user error is reported on any host.
 *
 * Exit status: 0 the guest reset or powered off; 1 bad options, files or
 * no usable KVM; 2 the VM failed (triple fault, KVM error, hook failure).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "console.h"
#include "statefile.h"
#include "vm.h"

#define DEFAULT_CMDLINE                                   \
	"console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 " \
	"i8042.noaux i8042.nomux i8042.nopnp"

struct opts {
	const char *kernel, *initrd, *cmdline, *raw, *serial, *kvm_path;
	const char *tap_log, *save, *restore;
	unsigned long save_at;
	bool save_on_signal; /* --save-at signal */
	bool mem_given, cpus_given;
	uint64_t raw_addr;
	unsigned long timeout;
	struct km_vm_config vm;
	struct km_tap_policy tap;
};

static const struct option long_opts[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'c' },
	{ "memory", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'p' },
	{ "serial", required_argument, NULL, 's' },
	{ "raw", required_argument, NULL, 'r' },
	{ "raw-addr", required_argument, NULL, 'a' },
	{ "kvm-device", required_argument, NULL, 'K' },
	{ "tap", required_argument, NULL, 't' },
	{ "tap-log", required_argument, NULL, 'l' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "disk", required_argument, NULL, 'd' },
	{ "net", required_argument, NULL, 'n' },
	{ "save", required_argument, NULL, 'S' },
	{ "save-at", required_argument, NULL, 'A' },
	{ "restore", required_argument, NULL, 'R' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fputs("usage: kemari-vmm --kernel BZIMAGE [--initrd FILE] "
	      "[--cmdline STR]\n"
	      "                  [--memory SIZE] [--cpus N] "
	      "[--serial stdout|file:PATH|unix:PATH|none]\n"
	      "                  [--tap SPEC] [--tap-log FILE] "
	      "[--kvm-device PATH]\n"
	      "                  [--disk PATH[,ro]]... [--net tap:IFNAME[,mac=MAC]]\n"
	      "                  [--save FILE --save-at N|signal]\n"
	      "       kemari-vmm --raw IMAGE [--raw-addr ADDR] [...]\n"
	      "       kemari-vmm --restore FILE [--disk ...] [--net ...] "
	      "[...]\n"
	      "  --kernel      a Linux bzImage with a 64-bit entry point\n"
	      "  --initrd      an initramfs, placed at the top of RAM\n"
	      "  --cmdline     kernel command line (default: " DEFAULT_CMDLINE
	      ")\n"
	      "  --memory      guest RAM, e.g. 256M or 1G (default 256M; "
	      "plain numbers are MiB)\n"
	      "  --cpus        vCPUs, 1 to 8 (default 1)\n"
	      "  --serial      where the UART's output goes (default stdout)\n"
	      "  --raw         a raw real-mode image instead of a kernel "
	      "(tests); vCPU n starts\n"
	      "                at 0:ADDR with RSI=n\n"
	      "  --raw-addr    where the raw image goes (default 0x1000)\n"
	      "  --tap         tapped exits: devices, all, none, PORT or "
	      "FIRST-LAST, comma-separated\n"
	      "                (default devices: UART transmit writes)\n"
	      "  --tap-log     record every tapped exit in FILE\n"
	      "  --disk        a raw disk image as a virtio-blk device "
	      "(up to 3; ,ro: read-only)\n"
	      "  --net         a virtio-net device on an existing TAP "
	      "interface\n"
	      "  --save        at the N-th tapped exit (--save-at), write the "
	      "whole VM to FILE\n"
	      "                and stop before that I/O; --save-at signal: "
	      "at the first tapped\n"
	      "                exit after kemari-vmm receives SIGUSR2\n"
	      "  --restore     run the VM saved in FILE (same --disk and --net "
	      "as when saved)\n"
	      "  --timeout     fail if the guest still runs after SEC "
	      "seconds\n"
	      "  --kvm-device  the KVM device (default /dev/kvm)\n"
	      "See kemari-vmm(1).\n",
	      f);
}

static int __attribute__((format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	fputs("kemari-vmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n", stderr);
	return -EINVAL;
}

static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'G':
	case 'g':
		v <<= 30;
		end++;
		break;
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	case 'M':
	case 'm':
	case '\0':
		v <<= 20;
		end += *end != '\0';
		break;
	default:
		return -EINVAL;
	}
	if (*end || v == 0 || v > (1ull << 40))
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	return errno || end == s || *end || *s == '-' || *out > max ? -EINVAL :
								      0;
}

/* PATH or PATH,ro; the option string lives as long as argv. */
static int parse_disk(struct opts *o, char *arg)
{
	struct km_virtio_blk_cfg *d;
	size_t len = strlen(arg);

	if (o->vm.ndisks == KM_MAX_DISKS)
		return bad("more than %d --disk options", KM_MAX_DISKS);
	d = &o->vm.disks[o->vm.ndisks];
	if (len > 3 && !strcmp(arg + len - 3, ",ro")) {
		arg[len - 3] = '\0';
		d->read_only = true;
	}
	if (!*arg || strchr(arg, ','))
		return bad("--disk '%s' is not PATH or PATH,ro", arg);
	d->path = arg;
	d->id = NULL;
	o->vm.ndisks++;
	return 0;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;
	int i;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5], &end) != 6 ||
	    (b[0] & 1))
		return -EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

/* tap:IFNAME or tap:IFNAME,mac=XX:XX:XX:XX:XX:XX */
static int parse_net(struct opts *o, char *arg)
{
	char *comma;

	if (o->vm.net.ifname)
		return bad("%s", "only one --net is supported");
	if (strncmp(arg, "tap:", 4) || !arg[4])
		return bad("--net '%s' is not tap:IFNAME[,mac=MAC]", arg);
	comma = strchr(arg, ',');
	if (comma) {
		*comma = '\0';
		if (strncmp(comma + 1, "mac=", 4) ||
		    parse_mac(comma + 5, o->vm.net.mac) < 0)
			return bad("--net: '%s' is not mac=XX:XX:XX:XX:XX:XX "
				   "(a unicast address)",
				   comma + 1);
	}
	if (strlen(arg + 4) >= 16)
		return bad("--net: the interface name '%s' is too long",
			   arg + 4);
	o->vm.net.ifname = arg + 4;
	return 0;
}

static int parse_one(struct opts *o, int c, char *arg)
{
	struct km_err err = { 0 };
	unsigned long v;

	switch (c) {
	case 'k':
		o->kernel = arg;
		return 0;
	case 'i':
		o->initrd = arg;
		return 0;
	case 'c':
		o->cmdline = arg;
		return 0;
	case 's':
		o->serial = arg;
		return 0;
	case 'r':
		o->raw = arg;
		return 0;
	case 'K':
		o->kvm_path = arg;
		return 0;
	case 'l':
		o->tap_log = arg;
		return 0;
	case 'm':
		o->mem_given = true;
		if (parse_size(arg, &o->vm.mem_size) < 0)
			return bad("--memory '%s' is not a size; use e.g. 256M "
				   "or 1G",
				   arg);
		return 0;
	case 'p':
		if (parse_uint(arg, KM_MAX_VCPUS, &v) < 0 || v == 0)
			return bad("--cpus '%s' is not a number from 1 to 8",
				   arg);
		o->vm.ncpus = v;
		o->cpus_given = true;
		return 0;
	case 'a':
		if (parse_uint(arg, 0xffff, &v) < 0)
			return bad("--raw-addr '%s' is not an address below "
				   "64 KiB",
				   arg);
		o->raw_addr = v;
		return 0;
	case 'T':
		if (parse_uint(arg, 86400, &o->timeout) < 0)
			return bad("--timeout '%s' is not a number of seconds",
				   arg);
		return 0;
	case 't':
		if (km_tap_policy_parse(&o->tap, arg, &err) < 0)
			return bad("--tap: %s", err.msg);
		return 0;
	case 'S':
		o->save = arg;
		return 0;
	case 'R':
		o->restore = arg;
		return 0;
	case 'A':
		if (!strcmp(arg, "signal")) {
			o->save_on_signal = true;
			o->save_at = 1; /* given; the count is not used */
			return 0;
		}
		if (parse_uint(arg, 1ul << 40, &o->save_at) < 0 || !o->save_at)
			return bad("--save-at '%s' is not a tapped-exit count "
				   "from 1 or 'signal'",
				   arg);
		return 0;
	case 'd':
		return parse_disk(o, arg);
	case 'n':
		return parse_net(o, arg);
	default:
		return bad("%s", "unknown option; see kemari-vmm --help");
	}
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	int c, r;

	o->serial = "stdout";
	o->raw_addr = KM_RAW_DEFAULT_ADDR;
	o->vm.mem_size = 256ull << 20;
	o->vm.ncpus = 1;
	km_tap_policy_default(&o->tap);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == 'h')
			return 1;
		if (c == '?')
			return bad("unknown or incomplete option '%s'; see "
				   "kemari-vmm --help",
				   argv[optind - 1]);
		r = parse_one(o, c, optarg);
		if (r < 0)
			return r;
	}
	if (optind < argc)
		return bad("unexpected argument '%s'; see kemari-vmm --help",
			   argv[optind]);
	if (!!o->save != !!o->save_at)
		return bad("%s", "--save FILE and --save-at N|signal go "
				 "together");
	if (o->restore) {
		if (o->kernel || o->raw || o->initrd || o->cmdline ||
		    o->mem_given || o->cpus_given)
			return bad("%s",
				   "--restore takes the VM from its file: "
				   "no --kernel, --raw, --initrd, "
				   "--cmdline, --memory or --cpus");
		return 0;
	}
	if (!o->kernel == !o->raw)
		return bad("%s",
			   o->kernel ?
				   "give --kernel or --raw, not both" :
				   "nothing to boot: give --kernel BZIMAGE (or "
				   "--raw IMAGE, or --restore FILE)");
	if (o->raw && (o->initrd || o->cmdline))
		return bad("%s", "--initrd and --cmdline need --kernel, not "
				 "--raw");
	return 0;
}

static void print_stats(const struct km_vm *vm)
{
	struct km_vcpu_stats t = { 0 };
	double secs = (vm->t_end.tv_sec - vm->t_start.tv_sec) +
		      (vm->t_end.tv_nsec - vm->t_start.tv_nsec) / 1e9;
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		t.exits += vm->vcpus[i].stats.exits;
		t.io += vm->vcpus[i].stats.io;
		t.tapped += vm->vcpus[i].stats.tapped;
		t.mmio += vm->vcpus[i].stats.mmio;
		t.kicks += vm->vcpus[i].stats.kicks;
		t.turn_waits += vm->vcpus[i].stats.turn_waits;
	}
	fprintf(stderr,
		"kemari-vmm: ran %.3f s: %llu exits (%.0f/s), %llu "
		"PIO (%llu tapped, %llu waited for another vCPU's turn), "
		"%llu MMIO, %llu kicks (%llu repeated, unanswered)\n",
		secs, (unsigned long long)t.exits,
		secs > 0 ? t.exits / secs : 0.0, (unsigned long long)t.io,
		(unsigned long long)t.tapped, (unsigned long long)t.turn_waits,
		(unsigned long long)t.mmio, (unsigned long long)t.kicks,
		(unsigned long long)vm->rekicks);
	fprintf(stderr,
		"kemari-vmm: %llu device-dirty pages (guest RAM "
		"the VMM's devices wrote)\n",
		(unsigned long long)km_dirty_count(&vm->dirty));
	for (i = 0; i < vm->nioports; i++) {
		struct km_ioport *io = (struct km_ioport *)&vm->ioports[i];
		char line[256];

		if (!io->ops->describe)
			continue;
		io->ops->describe(io, line, sizeof(line));
		fprintf(stderr, "kemari-vmm: %s\n", line);
	}
}

static void print_rips(struct km_vm *vm)
{
	unsigned int i;
	uint64_t rip;

	for (i = 0; i < vm->ncpus; i++)
		if (km_vcpu_get_rip(&vm->vcpus[i], &rip) == 0)
			fprintf(stderr, "kemari-vmm: vCPU %u RIP %#llx\n", i,
				(unsigned long long)rip);
}

struct hook_ctx {
	FILE *log;
	const char *save;
	unsigned long save_at, seen;
	bool on_signal, saved;
	double save_ms;
	struct km_err err;
};

/* --save-at signal: set by SIGUSR2, read by the tap hook. */
static volatile sig_atomic_t save_requested;

static void save_request_handler(int sig)
{
	(void)sig;
	save_requested = 1;
}

/*
 * SA_RESTART keeps the main thread's and devices' system calls going;
 * KVM_RUN is never restarted (KVM returns EINTR itself), so a vCPU thread
 * that takes the signal only sees one more kick.
 */
static int catch_save_request(struct km_err *err)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = save_request_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) == 0)
		return 0;
	km_err_set(err, "installing the SIGUSR2 handler failed: %s",
		   strerror(errno));
	return -errno;
}

/*
 * --tap-log and --save: record, and at the N-th tapped exit (or the first
 * one after SIGUSR2) save and stop.
 */
static int cli_hook(struct km_vcpu *vcpu, const struct km_tap_event *ev,
		    void *opaque)
{
	struct hook_ctx *h = opaque;
	struct timespec t0, t1;
	int r;

	if (h->log) {
		r = km_tap_log_hook(vcpu, ev, h->log);
		if (r)
			return r;
	}
	if (!h->save)
		return 0;
	++h->seen;
	if (h->on_signal ? !save_requested : h->seen != h->save_at)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = km_statefile_save(vcpu->vm, h->save, &h->err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	h->save_ms =
		(t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	if (r == 0)
		h->saved = true;
	/* Either way the VM stops here, before the I/O. */
	return r ? r : 1;
}

static int load_image(const struct opts *o, struct km_boot_image *img,
		      struct km_err *err)
{
	int r;

	if (o->raw)
		r = km_boot_load_raw(img, o->raw, o->raw_addr, err);
	else
		r = km_boot_load_linux(
			img, o->kernel, o->initrd,
			o->cmdline ? o->cmdline : DEFAULT_CMDLINE, err);
	if (r == 0)
		r = km_boot_check_memory(img, o->vm.mem_size, err);
	return r;
}

/* The VM from --restore's file, or booted from @img. */
static int prepare(struct km_vm *vm, const struct opts *o,
		   struct km_boot_image *img, int state_fd,
		   const struct km_statefile_hdr *hdr, struct km_err *err)
{
	struct timespec t0, t1;
	int r;

	if (!o->restore)
		return km_boot_setup(vm, img, err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = km_statefile_load(vm, state_fd, hdr, err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r == 0)
		fprintf(stderr,
			"kemari-vmm: restored %s (%llu MiB, %u vCPUs) in "
			"%.0f ms\n",
			o->restore, (unsigned long long)(hdr->mem_size >> 20),
			hdr->ncpus,
			(t1.tv_sec - t0.tv_sec) * 1e3 +
				(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return r;
}

static int run_vm(struct opts *o, struct km_boot_image *img, int state_fd,
		  const struct km_statefile_hdr *hdr, struct km_err *err)
{
	struct hook_ctx h = { .save = o->save,
			      .save_at = o->save_at,
			      .on_signal = o->save_on_signal };
	struct km_vm *vm;
	int r;

	if (o->tap_log) {
		h.log = fopen(o->tap_log, "we");
		if (!h.log) {
			km_err_set(err, "--tap-log %s: %s", o->tap_log,
				   strerror(errno));
			return 1;
		}
		setvbuf(h.log, NULL, _IOLBF, 0);
	}
	o->vm.kvm_path = o->kvm_path;
	vm = km_vm_create(&o->vm, err);
	r = 1;
	if (!vm)
		goto err_close_log;
	km_vm_set_tap(vm, &o->tap, h.log || h.save ? cli_hook : NULL, &h);
	if (prepare(vm, o, img, state_fd, hdr, err) < 0)
		goto err_destroy;
	km_vm_set_timeout(vm, o->timeout);
	if (h.on_signal && catch_save_request(err) < 0) {
		r = 1;
		goto err_destroy;
	}
	r = km_vm_run(vm) == 0 ? 0 : 2;
	if (h.saved) {
		fprintf(stderr,
			"kemari-vmm: saved the VM to %s at tapped exit %lu "
			"in %.0f ms and stopped before that I/O\n",
			o->save, h.seen, h.save_ms);
		r = 0;
	} else {
		fprintf(stderr, "kemari-vmm: %s\n", km_vm_end_message(vm));
	}
	if (h.err.msg[0])
		fprintf(stderr, "kemari-vmm: %s\n", h.err.msg);
	if (r)
		print_rips(vm);
	print_stats(vm);
err_destroy:
	km_vm_destroy(vm);
err_close_log:
	if (h.log)
		fclose(h.log);
	return r;
}

int main(int argc, char **argv)
{
	struct km_boot_image img = { 0 };
	struct km_statefile_hdr hdr = { 0 };
	struct km_err err = { 0 };
	struct opts o = { 0 };
	int r, fd = -1, state_fd = -1;

	r = parse_opts(&o, argc, argv);
	if (r)
		return r > 0 ? (usage(stdout), 0) : 1;
	if (o.restore) {
		state_fd = km_statefile_open(o.restore, &hdr, &err);
		if (state_fd < 0) {
			fprintf(stderr, "kemari-vmm: %s\n", err.msg);
			return 1;
		}
		o.vm.mem_size = hdr.mem_size;
		o.vm.ncpus = hdr.ncpus;
	}
	if (o.vm.mem_size < KM_MEM_MIN || o.vm.mem_size > KM_MEM_MAX ||
	    o.vm.mem_size % KM_PAGE_SIZE) {
		fprintf(stderr,
			"kemari-vmm: --memory must be a multiple of "
			"4 KiB from %llu MiB to %llu MiB\n",
			KM_MEM_MIN >> 20, KM_MEM_MAX >> 20);
		return 1;
	}
	for (unsigned int i = 0; i < o.vm.ndisks; i++)
		if (km_virtio_blk_check(&o.vm.disks[i], &err) < 0) {
			fprintf(stderr, "kemari-vmm: %s\n", err.msg);
			if (state_fd >= 0)
				close(state_fd);
			return 1;
		}
	if (!o.restore && load_image(&o, &img, &err) < 0) {
		fprintf(stderr, "kemari-vmm: %s\n", err.msg);
		km_boot_release(&img);
		return 1;
	}
	r = 1;
	if (km_console_open(o.serial, &fd, &err) == 0) {
		o.vm.console_fd = fd;
		r = run_vm(&o, &img, state_fd, &hdr, &err);
		km_console_close(fd);
	}
	if (err.msg[0])
		fprintf(stderr, "kemari-vmm: %s\n", err.msg);
	if (state_fd >= 0)
		close(state_fd);
	km_boot_release(&img);
	return r;
}
