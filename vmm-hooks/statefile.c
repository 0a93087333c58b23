// SPDX-License-Identifier: GPL-2.0
/* A whole VM in one file; see statefile.h. */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "state.h"
#include "vm.h"

#define BLOB_MAX (16u << 20)

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int km_statefile_save(struct km_vm *vm, const char *path, struct km_err *err)
{
	struct km_statefile_hdr hdr = {
		.magic = KM_STATEFILE_MAGIC,
		.version = KM_STATEFILE_VERSION,
		.mem_size = vm->mem_size,
		.ncpus = vm->ncpus,
	};
	char tmp[4096];
	uint8_t *blob = NULL;
	size_t len;
	int fd, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		km_err_set(err, "the state file name is too long");
		return -ENAMETOOLONG;
	}
	r = km_vm_state_save(vm, &blob, &len, err);
	if (r < 0)
		return r;
	hdr.blob_len = len;
	hdr.ram_hash = XXH64(vm->mem, vm->mem_size, 0);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		km_err_set(err, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	r = write_all(fd, &hdr, sizeof(hdr));
	if (r == 0)
		r = write_all(fd, blob, len);
	if (r == 0)
		r = write_all(fd, vm->mem, vm->mem_size);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		km_err_set(err, "writing the state file %s failed: %s", path,
			   strerror(-r));
		unlink(tmp);
	}
out:
	free(blob);
	return r;
}

int km_statefile_open(const char *path, struct km_statefile_hdr *hdr,
		      struct km_err *err)
{
	struct stat st;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		km_err_set(err, "cannot open the state file %s: %s", path,
			   strerror(errno));
		return r;
	}
	r = -EINVAL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < sizeof(*hdr) ||
	    read_all(fd, hdr, sizeof(*hdr)) < 0) {
		km_err_set(err, "%s is not a kemari-vmm state file (too short)",
			   path);
		goto err_close;
	}
	if (hdr->magic != KM_STATEFILE_MAGIC) {
		km_err_set(err,
			   "%s is not a kemari-vmm state file (magic "
			   "%#x)",
			   path, hdr->magic);
		goto err_close;
	}
	if (hdr->version != KM_STATEFILE_VERSION || hdr->flags ||
	    hdr->reserved) {
		km_err_set(err,
			   "%s: state file version %u flags %#x is not "
			   "version 1",
			   path, hdr->version, hdr->flags);
		goto err_close;
	}
	if (hdr->mem_size < KM_MEM_MIN || hdr->mem_size > KM_MEM_MAX ||
	    hdr->mem_size % KM_PAGE_SIZE || !hdr->ncpus ||
	    hdr->ncpus > KM_MAX_VCPUS || !hdr->blob_len ||
	    hdr->blob_len > BLOB_MAX) {
		km_err_set(err,
			   "%s: a VM of %llu bytes, %u vCPUs and a "
			   "%llu-byte state is out of range",
			   path, (unsigned long long)hdr->mem_size, hdr->ncpus,
			   (unsigned long long)hdr->blob_len);
		goto err_close;
	}
	if ((uint64_t)st.st_size !=
	    sizeof(*hdr) + hdr->blob_len + hdr->mem_size) {
		km_err_set(err, "%s: %llu bytes, its header announces %llu",
			   path, (unsigned long long)st.st_size,
			   (unsigned long long)(sizeof(*hdr) + hdr->blob_len +
						hdr->mem_size));
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return r;
}

int km_statefile_load(struct km_vm *vm, int fd,
		      const struct km_statefile_hdr *hdr, struct km_err *err)
{
	uint8_t *blob;
	int r;

	if (vm->mem_size != hdr->mem_size || vm->ncpus != hdr->ncpus) {
		km_err_set(err, "the state file is for %llu MiB and %u vCPUs",
			   (unsigned long long)(hdr->mem_size >> 20),
			   hdr->ncpus);
		return -EINVAL;
	}
	blob = malloc(hdr->blob_len);
	if (!blob)
		return -ENOMEM;
	r = read_all(fd, blob, hdr->blob_len);
	if (r == 0)
		r = read_all(fd, vm->mem, vm->mem_size);
	if (r < 0) {
		km_err_set(err, "reading the state file failed: %s",
			   strerror(-r));
		goto out;
	}
	if (XXH64(vm->mem, vm->mem_size, 0) != hdr->ram_hash) {
		km_err_set(err, "the state file's RAM fails its checksum");
		r = -EBADMSG;
		goto out;
	}
	r = km_vm_state_restore(vm, blob, hdr->blob_len, err);
out:
	free(blob);
	return r;
}
