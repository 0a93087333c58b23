// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-blk over legacy virtio-pci with a raw file as the disk. Requests
 * are served synchronously in the notifying vCPU's thread, so a write
 * reaches the file only after the tap hook returned (the replica has the
 * epoch), which is what kemari needs; reads land in guest RAM through the
 * VMM's mapping and are recorded in the device dirty log.
 *
 * Tapping: a notify is tapped when a pending request writes (OUT) or
 * flushes, or is of a type we do not know. An untapped notify serves
 * reads only and stops at the first request that would be output, which
 * stays for the tapped notify that the driver's own kick of it makes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio.h"
#include "virtio_dev.h"
#include "vm.h"

#define VIRTIO_ID_BLOCK 2
#define PCI_DEVICE_BLOCK 0x1001
#define PCI_CLASS_STORAGE_SCSI 0x010000

#define VIRTIO_BLK_F_SEG_MAX (1u << 2)
#define VIRTIO_BLK_F_RO (1u << 5)
#define VIRTIO_BLK_F_FLUSH (1u << 9)

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define SECTOR 512u
#define QUEUE_NUM 128
#define ID_LEN 20

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_config {
	uint64_t capacity; /* in 512-byte sectors */
	uint32_t size_max;
	uint32_t seg_max;
} __attribute__((packed));

struct blk {
	int fd;
	bool read_only;
	uint64_t sectors;
	char id[ID_LEN];
};

static bool is_output(uint32_t type)
{
	return type != VIRTIO_BLK_T_IN && type != VIRTIO_BLK_T_GET_ID;
}

/* The request type of a chain; OUT (output, tapped) if unreadable. */
static uint32_t req_type(const struct km_vchain *c)
{
	struct blk_req_hdr h;

	if (km_vchain_copy_from(c, 0, &h, sizeof(h)) != sizeof(h))
		return VIRTIO_BLK_T_OUT;
	return h.type;
}

static bool blk_has_output(struct km_virtio *v, unsigned int q)
{
	unsigned int i, n = km_virtq_pending(v, q);
	struct km_vchain *c = malloc(sizeof(*c));
	bool out = false;

	if (!c)
		return true; /* cannot tell: tap */
	for (i = 0; i < n && !out; i++) {
		int r = km_virtq_peek(v, q, i, c);

		out = r <= 0 || is_output(req_type(c));
	}
	free(c);
	return out;
}

/* Data descriptors: all but the header's and the status byte's. */
static uint8_t do_rw(struct km_virtio *v, struct blk *b,
		     const struct km_vchain *c, const struct blk_req_hdr *h,
		     bool write, uint32_t *written)
{
	uint64_t off = h->sector * SECTOR, total = 0;
	unsigned int i;

	if (h->sector > b->sectors)
		return VIRTIO_BLK_S_IOERR;
	for (i = 1; i + 1 < c->n; i++) {
		const struct km_vdesc *d = &c->d[i];
		ssize_t n;

		if (d->write == write || d->len % SECTOR)
			return VIRTIO_BLK_S_IOERR;
		if (off + total + d->len > b->sectors * SECTOR)
			return VIRTIO_BLK_S_IOERR;
		if (write)
			n = pwrite(b->fd, d->host, d->len, off + total);
		else
			n = pread(b->fd, d->host, d->len, off + total);
		if (n != (ssize_t)d->len)
			return VIRTIO_BLK_S_IOERR;
		if (!write) {
			km_vm_mark_dirty(v->vm, d->gpa, d->len);
			*written += d->len;
		}
		total += d->len;
	}
	return VIRTIO_BLK_S_OK;
}

static void serve(struct km_virtio *v, struct blk *b, const struct km_vchain *c)
{
	const struct km_vdesc *st = &c->d[c->n - 1];
	struct blk_req_hdr h;
	uint32_t written = 0;
	uint8_t status;

	/* Header readable first, status writable last (Linux's layout). */
	if (c->n < 2 || c->d[0].write || c->d[0].len < sizeof(h) ||
	    !st->write || !st->len) {
		km_virtq_push(v, 0, c->head, 0);
		return;
	}
	memcpy(&h, c->d[0].host, sizeof(h));
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		status = do_rw(v, b, c, &h, false, &written);
		break;
	case VIRTIO_BLK_T_OUT:
		status = b->read_only ? VIRTIO_BLK_S_IOERR :
					do_rw(v, b, c, &h, true, &written);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = fdatasync(b->fd) == 0 ? VIRTIO_BLK_S_OK :
						 VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID:
		if (c->n < 3 || !c->d[1].write) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		written = c->d[1].len < ID_LEN ? c->d[1].len : ID_LEN;
		memcpy(c->d[1].host, b->id, written);
		km_vm_mark_dirty(v->vm, c->d[1].gpa, written);
		status = VIRTIO_BLK_S_OK;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	/* The status byte is the last byte of the last descriptor. */
	memcpy((uint8_t *)st->host + st->len - 1, &status, 1);
	km_vm_mark_dirty(v->vm, st->gpa + st->len - 1, 1);
	km_virtq_push(v, 0, c->head, written + 1);
}

static void blk_notify(struct km_virtio *v, unsigned int q, bool tapped)
{
	struct blk *b = v->dev;
	struct km_vchain *c;
	bool served = false;
	int r;

	if (q != 0)
		return;
	c = malloc(sizeof(*c));
	if (!c)
		return;
	for (;;) {
		/* Untapped: reads only; output waits for its tapped kick. */
		r = km_virtq_peek(v, q, 0, c);
		if (r == 0 || (!tapped && (r < 0 || is_output(req_type(c)))))
			break;
		r = km_virtq_pop(v, q, c);
		served = true;
		if (r > 0)
			serve(v, b, c);
	}
	free(c);
	if (served)
		km_virtio_interrupt(v);
}

static void blk_destroy(struct km_virtio *v)
{
	struct blk *b = v->dev;

	close(b->fd);
	free(b);
}

static const struct km_virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.notify = blk_notify,
	.has_output = blk_has_output,
	.destroy = blk_destroy,
};

/* Open and check the backing file: a regular file of whole sectors. */
static int open_disk(const struct km_virtio_blk_cfg *cfg, struct stat *sb,
		     struct km_err *err)
{
	int fd, r;

	fd = open(cfg->path, (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		km_err_set(err, "cannot open the disk %s: %s", cfg->path,
			   strerror(errno));
		return r;
	}
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode) ||
	    sb->st_size < (off_t)SECTOR) {
		km_err_set(err,
			   "the disk %s must be a regular file of at least "
			   "512 bytes",
			   cfg->path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int km_virtio_blk_check(const struct km_virtio_blk_cfg *cfg, struct km_err *err)
{
	struct stat sb;
	int fd = open_disk(cfg, &sb, err);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int km_virtio_blk_init(struct km_vm *vm, const struct km_virtio_blk_cfg *cfg,
		       struct km_err *err)
{
	struct blk_config config = { .seg_max = KM_VIRTIO_MAX_CHAIN - 2 };
	struct km_virtio_spec spec = {
		.ops = &blk_ops,
		.pci_device = PCI_DEVICE_BLOCK,
		.virtio_id = VIRTIO_ID_BLOCK,
		.pci_class = PCI_CLASS_STORAGE_SCSI,
		.io_base = cfg->io_base,
		.irq = cfg->irq,
		.host_features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_FLUSH,
		.nqueues = 1,
		.queue_num = QUEUE_NUM,
		.config = &config,
		.config_len = sizeof(config),
	};
	struct stat sb;
	struct blk *b;
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->read_only = cfg->read_only;
	b->fd = open_disk(cfg, &sb, err);
	if (b->fd < 0) {
		r = b->fd;
		goto err_free;
	}
	b->sectors = (uint64_t)sb.st_size / SECTOR;
	config.capacity = b->sectors;
	snprintf(b->id, sizeof(b->id), "kemari-%.12s", cfg->id ? cfg->id : "");
	if (b->read_only)
		spec.host_features |= VIRTIO_BLK_F_RO;
	spec.dev = b;
	if (!km_virtio_create(vm, &spec, err)) {
		r = -errno;
		goto err_close;
	}
	return 0;

err_close:
	close(b->fd);
err_free:
	free(b);
	return r;
}
