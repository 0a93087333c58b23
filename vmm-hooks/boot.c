// SPDX-License-Identifier: GPL-2.0
/*
 * Reading and checking boot images. Firecracker's linux-loader and
 * kvmtool's x86/kvm.c are the reference for what the 64-bit boot protocol
 * needs; see boot_linux.c for the guest side.
 */
#include "boot.h"

#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_OFFSET 0x1f1
#define HDR_MAGIC 0x53726448u /* "HdrS" */
#define BOOT_FLAG 0xaa55
#define PROTOCOL_64BIT 0x020c
#define FILE_MAX (1ull << 31)

static int read_file(const char *path, const char *what, uint8_t **buf,
		     size_t *len, struct km_err *err)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		e = errno;
		km_err_set(err, "cannot read the %s %s: %s", what, path,
			   strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (unsigned long long)st.st_size > FILE_MAX) {
		km_err_set(err, "the %s %s is %s; give a regular file", what,
			   path,
			   !S_ISREG(st.st_mode) ? "not a regular file" :
			   st.st_size == 0	? "empty" :
						  "larger than 2 GiB");
		close(fd);
		return -EINVAL;
	}
	*buf = malloc(st.st_size);
	if (!*buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, st.st_size - got);
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			km_err_set(err, "reading the %s %s failed: %s", what,
				   path, strerror(e));
			free(*buf);
			*buf = NULL;
			close(fd);
			return -e;
		}
		got += n;
	}
	*len = got;
	close(fd);
	return 0;
}

static int bad_kernel(const char *path, const char *why, struct km_err *err)
{
	km_err_set(err,
		   "the kernel %s is not a bootable bzImage: %s; give a "
		   "Linux bzImage such as /boot/vmlinuz-*",
		   path, why);
	return -ENOEXEC;
}

static int parse_bzimage(struct km_boot_image *img, const char *path,
			 struct km_err *err)
{
	struct setup_header hdr;
	size_t sects, payload;

	if (img->kernel_len < 0x1000)
		return bad_kernel(path,
				  "it is too short to hold a boot "
				  "header",
				  err);
	memcpy(&hdr, img->kernel + HDR_OFFSET, sizeof(hdr));
	if (hdr.boot_flag != BOOT_FLAG || hdr.header != HDR_MAGIC)
		return bad_kernel(path,
				  "there is no 'HdrS' boot header at "
				  "0x202 (is it a vmlinux ELF or compressed?)",
				  err);
	if (hdr.version < PROTOCOL_64BIT)
		return bad_kernel(path,
				  "its boot protocol is older than 2.12 "
				  "(no 64-bit entry point)",
				  err);
	if (!(hdr.xloadflags & XLF_KERNEL_64) || !(hdr.loadflags & LOADED_HIGH))
		return bad_kernel(path, "it has no 64-bit entry point", err);
	sects = hdr.setup_sects ? hdr.setup_sects : 4;
	img->setup_len = (sects + 1) * 512;
	if (img->setup_len >= img->kernel_len)
		return bad_kernel(path, "the file ends inside its setup code",
				  err);
	payload = img->kernel_len - img->setup_len;
	if ((size_t)hdr.syssize * 16 > payload + 15 || !hdr.init_size ||
	    hdr.init_size < payload)
		return bad_kernel(path,
				  "the file is truncated or its header "
				  "sizes are inconsistent",
				  err);
	img->version = hdr.version;
	img->init_size = hdr.init_size;
	img->pref_address = hdr.pref_address < (1ull << 32) ?
				    (uint32_t)hdr.pref_address :
				    0x1000000;
	img->initrd_addr_max = hdr.initrd_addr_max ? hdr.initrd_addr_max :
						     0x37ffffff;
	img->cmdline_size = hdr.cmdline_size ? hdr.cmdline_size : 255;
	return 0;
}

int km_boot_load_linux(struct km_boot_image *img, const char *kernel,
		       const char *initrd, const char *cmdline,
		       struct km_err *err)
{
	int r;

	memset(img, 0, sizeof(*img));
	img->kind = KM_BOOT_LINUX;
	r = read_file(kernel, "kernel", &img->kernel, &img->kernel_len, err);
	if (r == 0)
		r = parse_bzimage(img, kernel, err);
	if (r == 0 && initrd)
		r = read_file(initrd, "initrd", &img->initrd, &img->initrd_len,
			      err);
	if (r == 0) {
		img->cmdline = strdup(cmdline ? cmdline : "");
		if (!img->cmdline)
			r = -ENOMEM;
	}
	if (r == 0 && strlen(img->cmdline) >= img->cmdline_size) {
		km_err_set(err,
			   "the kernel command line is %zu bytes; this "
			   "kernel accepts at most %u",
			   strlen(img->cmdline), img->cmdline_size - 1);
		r = -E2BIG;
	}
	if (r < 0)
		km_boot_release(img);
	return r;
}

int km_boot_load_raw(struct km_boot_image *img, const char *path, uint64_t addr,
		     struct km_err *err)
{
	int r;

	memset(img, 0, sizeof(*img));
	img->kind = KM_BOOT_RAW;
	img->raw_addr = addr;
	r = read_file(path, "raw image", &img->kernel, &img->kernel_len, err);
	if (r == 0 && addr + img->kernel_len > 0x10000) {
		km_err_set(err,
			   "the raw image %s (%zu bytes at %#llx) does not "
			   "fit below 64 KiB, where real-mode code runs",
			   path, img->kernel_len, (unsigned long long)addr);
		r = -EFBIG;
	}
	if (r < 0)
		km_boot_release(img);
	return r;
}

int km_boot_set_raw(struct km_boot_image *img, const void *code, size_t len,
		    uint64_t addr)
{
	memset(img, 0, sizeof(*img));
	img->kind = KM_BOOT_RAW;
	img->raw_addr = addr;
	if (addr + len > 0x10000)
		return -EFBIG;
	img->kernel = malloc(len);
	if (!img->kernel)
		return -ENOMEM;
	memcpy(img->kernel, code, len);
	img->kernel_len = len;
	return 0;
}

int km_boot_check_memory(const struct km_boot_image *img, uint64_t mem_size,
			 struct km_err *err)
{
	uint64_t need;

	if (img->kind == KM_BOOT_RAW)
		need = img->raw_addr + img->kernel_len;
	else
		/* Decompression area, the initrd, and 16 MiB to run in. */
		need = (uint64_t)img->pref_address + img->init_size +
		       img->initrd_len + (16ull << 20);
	if (mem_size >= need)
		return 0;
	need = (need + (1 << 20) - 1) >> 20;
	km_err_set(err,
		   "%llu MiB of guest memory is too little for this %s: "
		   "it needs at least %llu MiB; raise --memory",
		   (unsigned long long)(mem_size >> 20),
		   img->kind == KM_BOOT_RAW ? "raw image" :
		   img->initrd		    ? "kernel and initrd" :
					      "kernel",
		   (unsigned long long)need);
	return -ENOMEM;
}

void km_boot_release(struct km_boot_image *img)
{
	free(img->kernel);
	free(img->initrd);
	free(img->cmdline);
	memset(img, 0, sizeof(*img));
}
