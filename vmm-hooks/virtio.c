// SPDX-License-Identifier: GPL-2.0
/*
 * The legacy virtio-pci transport and the split-virtqueue walker; see
 * virtio.h. The ring lives in guest RAM and the guest may change it under
 * us at any time: every field is read once into a local, validated, and
 * only then used.
 */
#include "virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

#define PCI_VENDOR_REDHAT_QUMRANET 0x1af4

/* The transport's checkpoint: fixed-width, little-endian. */
struct virtio_state_q {
	uint32_t pfn;
	uint16_t last_avail;
	uint16_t used_idx;
};

struct virtio_state {
	uint32_t guest_features;
	uint16_t queue_sel;
	uint8_t status;
	uint8_t isr;
	uint8_t irq_level;
	uint8_t nqueues;
	uint8_t config_len;
	uint8_t reserved;
	struct virtio_state_q q[KM_VIRTIO_MAX_QUEUES];
	uint8_t config[KM_VIRTIO_CONFIG_MAX];
};

static uint64_t ring_desc(const struct km_virtq *vq)
{
	return (uint64_t)vq->pfn << KM_VIRTIO_PAGE_SHIFT;
}

static uint64_t ring_avail(const struct km_virtq *vq)
{
	return ring_desc(vq) + 16ull * vq->num;
}

static uint64_t ring_used(const struct km_virtq *vq)
{
	uint64_t end = ring_avail(vq) + 6 + 2ull * vq->num;

	return (end + KM_VRING_ALIGN - 1) & ~(uint64_t)(KM_VRING_ALIGN - 1);
}

static uint64_t ring_end(const struct km_virtq *vq)
{
	return ring_used(vq) + 6 + 8ull * vq->num;
}

static uint16_t guest_u16(struct km_vm *vm, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, vm->mem + gpa, 2);
	return v;
}

static void set_irq(struct km_virtio *v, int level)
{
	if (v->irq_level == level)
		return;
	v->irq_level = level;
	km_vm_irq_line(v->vm, v->irq, level);
}

void km_virtio_interrupt(struct km_virtio *v)
{
	v->isr |= 1;
	set_irq(v, 1);
}

unsigned int km_virtq_pending(struct km_virtio *v, unsigned int q)
{
	struct km_virtq *vq = &v->vq[q];
	uint16_t idx;

	if (!vq->pfn)
		return 0;
	idx = __atomic_load_n((uint16_t *)(v->vm->mem + ring_avail(vq) + 2),
			      __ATOMIC_ACQUIRE);
	/* More than num pending is a broken driver: treat as num. */
	return (uint16_t)(idx - vq->last_avail) > vq->num ?
		       vq->num :
		       (uint16_t)(idx - vq->last_avail);
}

/* Walk the chain starting at @head into @c; 0 or -EINVAL. */
static int walk(struct km_virtio *v, struct km_virtq *vq, uint16_t head,
		struct km_vchain *c)
{
	struct km_vm *vm = v->vm;
	uint16_t i = head;

	c->head = head;
	c->n = 0;
	for (;;) {
		uint8_t raw[16];
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		void *host;

		if (i >= vq->num || c->n == KM_VIRTIO_MAX_CHAIN ||
		    c->n >= vq->num)
			return -EINVAL;
		memcpy(raw, vm->mem + ring_desc(vq) + 16ull * i, 16);
		memcpy(&addr, raw, 8);
		memcpy(&len, raw + 8, 4);
		memcpy(&flags, raw + 12, 2);
		memcpy(&next, raw + 14, 2);
		if (flags & KM_VRING_DESC_F_INDIRECT)
			return -EINVAL; /* not offered */
		host = km_vm_guest(vm, addr, len);
		if (!host)
			return -EINVAL;
		c->d[c->n].gpa = addr;
		c->d[c->n].len = len;
		c->d[c->n].write = flags & KM_VRING_DESC_F_WRITE;
		c->d[c->n].host = host;
		c->n++;
		if (!(flags & KM_VRING_DESC_F_NEXT))
			return 0;
		i = next;
	}
}

int km_virtq_peek(struct km_virtio *v, unsigned int q, unsigned int nth,
		  struct km_vchain *c)
{
	struct km_virtq *vq = &v->vq[q];
	uint16_t slot, head;

	if (nth >= km_virtq_pending(v, q))
		return 0;
	slot = (uint16_t)(vq->last_avail + nth) % vq->num;
	head = guest_u16(v->vm, ring_avail(vq) + 4 + 2ull * slot);
	return walk(v, vq, head, c) < 0 ? -EINVAL : 1;
}

int km_virtq_pop(struct km_virtio *v, unsigned int q, struct km_vchain *c)
{
	struct km_virtq *vq = &v->vq[q];
	int r = km_virtq_peek(v, q, 0, c);

	if (r == 0)
		return 0;
	vq->last_avail++;
	if (r < 0) {
		/* Hand a broken chain back empty rather than wedge. */
		if (c->head < vq->num)
			km_virtq_push(v, q, c->head, 0);
		return -EINVAL;
	}
	return 1;
}

void km_virtq_push(struct km_virtio *v, unsigned int q, uint16_t head,
		   uint32_t len)
{
	struct km_virtq *vq = &v->vq[q];
	struct km_vm *vm = v->vm;
	uint64_t elem = ring_used(vq) + 4 + 8ull * (vq->used_idx % vq->num);
	uint32_t id = head;

	memcpy(vm->mem + elem, &id, 4);
	memcpy(vm->mem + elem + 4, &len, 4);
	km_vm_mark_dirty(vm, elem, 8);
	vq->used_idx++;
	/* The element before the index, as the driver reads them. */
	__atomic_store_n((uint16_t *)(vm->mem + ring_used(vq) + 2),
			 vq->used_idx, __ATOMIC_RELEASE);
	km_vm_mark_dirty(vm, ring_used(vq) + 2, 2);
	v->requests++;
}

size_t km_vchain_copy_from(const struct km_vchain *c, size_t off, void *buf,
			   size_t len)
{
	uint8_t *out = buf;
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < c->n && done < len; i++) {
		const struct km_vdesc *d = &c->d[i];
		size_t n;

		if (d->write)
			continue;
		if (off >= d->len) {
			off -= d->len;
			continue;
		}
		n = d->len - off < len - done ? d->len - off : len - done;
		memcpy(out + done, (uint8_t *)d->host + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t km_vchain_copy_to(struct km_virtio *v, const struct km_vchain *c,
			 size_t off, const void *buf, size_t len)
{
	const uint8_t *in = buf;
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < c->n && done < len; i++) {
		const struct km_vdesc *d = &c->d[i];
		size_t n;

		if (!d->write)
			continue;
		if (off >= d->len) {
			off -= d->len;
			continue;
		}
		n = d->len - off < len - done ? d->len - off : len - done;
		memcpy((uint8_t *)d->host + off, in + done, n);
		km_vm_mark_dirty(v->vm, d->gpa + off, n);
		done += n;
		off = 0;
	}
	return done;
}

static void reset(struct km_virtio *v)
{
	unsigned int i;

	v->guest_features = 0;
	v->queue_sel = 0;
	v->status = 0;
	v->isr = 0;
	set_irq(v, 0);
	for (i = 0; i < v->nqueues; i++) {
		v->vq[i].pfn = 0;
		v->vq[i].last_avail = 0;
		v->vq[i].used_idx = 0;
	}
	if (v->ops->reset)
		v->ops->reset(v);
}

static void set_pfn(struct km_virtio *v, uint32_t pfn)
{
	struct km_virtq *vq;

	if (v->queue_sel >= v->nqueues)
		return;
	vq = &v->vq[v->queue_sel];
	vq->last_avail = vq->used_idx = 0;
	vq->pfn = pfn;
	/* A ring that does not lie wholly in RAM is never set up. */
	if (pfn &&
	    !km_vm_guest(v->vm, ring_desc(vq), ring_end(vq) - ring_desc(vq)))
		vq->pfn = 0;
}

static uint32_t reg_read(struct km_virtio *v, unsigned int off,
			 unsigned int size)
{
	uint32_t val = 0;

	switch (off) {
	case KM_VIRTIO_HOST_FEATURES:
		return v->host_features;
	case KM_VIRTIO_GUEST_FEATURES:
		return v->guest_features;
	case KM_VIRTIO_QUEUE_PFN:
		return v->queue_sel < v->nqueues ? v->vq[v->queue_sel].pfn : 0;
	case KM_VIRTIO_QUEUE_NUM:
		return v->queue_sel < v->nqueues ? v->vq[v->queue_sel].num : 0;
	case KM_VIRTIO_QUEUE_SEL:
		return v->queue_sel;
	case KM_VIRTIO_STATUS:
		return v->status;
	case KM_VIRTIO_ISR:
		/* Reading acknowledges: clear and drop INTx. */
		val = v->isr;
		v->isr = 0;
		set_irq(v, 0);
		return val;
	}
	if (off >= KM_VIRTIO_CONFIG &&
	    off - KM_VIRTIO_CONFIG + size <= v->config_len)
		memcpy(&val, v->config + off - KM_VIRTIO_CONFIG, size);
	return val;
}

static void reg_write(struct km_virtio *v, unsigned int off, uint32_t val,
		      unsigned int size)
{
	switch (off) {
	case KM_VIRTIO_GUEST_FEATURES:
		v->guest_features = val & v->host_features;
		return;
	case KM_VIRTIO_QUEUE_PFN:
		set_pfn(v, val);
		return;
	case KM_VIRTIO_QUEUE_SEL:
		v->queue_sel = (uint16_t)val;
		return;
	case KM_VIRTIO_QUEUE_NOTIFY:
		/* Handled by virtio_out(), which knows whether it was tapped. */
		return;
	case KM_VIRTIO_STATUS:
		if ((uint8_t)val == 0)
			reset(v);
		else
			v->status = (uint8_t)val;
		return;
	}
	if (off >= KM_VIRTIO_CONFIG &&
	    off - KM_VIRTIO_CONFIG + size <= v->config_writable)
		memcpy(v->config + off - KM_VIRTIO_CONFIG, &val, size);
}

static void virtio_in(struct km_ioport *io, uint16_t port, uint8_t *data,
		      unsigned int size)
{
	struct km_virtio *v = io->priv;
	uint32_t val;

	if (size > 4)
		return;
	pthread_mutex_lock(&v->lock);
	val = reg_read(v, port - io->base, size);
	pthread_mutex_unlock(&v->lock);
	memcpy(data, &val, size);
}

static void virtio_out(struct km_ioport *io, uint16_t port, const uint8_t *data,
		       unsigned int size)
{
	struct km_virtio *v = io->priv;
	unsigned int off = port - io->base;
	uint32_t val = 0;

	if (size > 4)
		return;
	memcpy(&val, data, size);
	pthread_mutex_lock(&v->lock);
	if (off == KM_VIRTIO_QUEUE_NOTIFY && size == 2) {
		v->notifies++;
		if (val < v->nqueues && v->vq[val].pfn &&
		    (v->status & KM_VIRTIO_STATUS_DRIVER_OK))
			v->ops->notify(v, val, km_ioport_tapped_now());
	} else {
		reg_write(v, off, val, size);
	}
	pthread_mutex_unlock(&v->lock);
}

/* A QueueNotify of a queue that holds output now is a tapped exit. */
static bool virtio_tapped(struct km_ioport *io, uint16_t port,
			  const uint8_t *data, unsigned int size)
{
	struct km_virtio *v = io->priv;
	uint16_t q;
	bool out;

	if (port - io->base != KM_VIRTIO_QUEUE_NOTIFY || size != 2)
		return false;
	memcpy(&q, data, 2);
	if (q >= v->nqueues)
		return false;
	pthread_mutex_lock(&v->lock);
	out = v->vq[q].pfn && v->ops->has_output(v, q);
	pthread_mutex_unlock(&v->lock);
	return out;
}

static size_t virtio_save(struct km_ioport *io, void *buf, size_t cap)
{
	struct km_virtio *v = io->priv;
	struct virtio_state st;
	unsigned int i;

	if (cap < sizeof(st))
		return 0;
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&v->lock);
	st.guest_features = v->guest_features;
	st.queue_sel = v->queue_sel;
	st.status = v->status;
	st.isr = v->isr;
	st.irq_level = (uint8_t)v->irq_level;
	st.nqueues = (uint8_t)v->nqueues;
	st.config_len = (uint8_t)v->config_len;
	for (i = 0; i < v->nqueues; i++) {
		st.q[i].pfn = v->vq[i].pfn;
		st.q[i].last_avail = v->vq[i].last_avail;
		st.q[i].used_idx = v->vq[i].used_idx;
	}
	memcpy(st.config, v->config, v->config_len);
	pthread_mutex_unlock(&v->lock);
	memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

static int virtio_restore(struct km_ioport *io, const void *buf, size_t len)
{
	struct km_virtio *v = io->priv;
	struct virtio_state st;
	unsigned int i;

	if (len != sizeof(st))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	if (st.nqueues != v->nqueues || st.config_len != v->config_len ||
	    st.irq_level > 1 || st.guest_features & ~v->host_features)
		return -EINVAL;
	pthread_mutex_lock(&v->lock);
	v->guest_features = st.guest_features;
	v->queue_sel = st.queue_sel;
	v->status = st.status;
	v->isr = st.isr;
	for (i = 0; i < v->nqueues; i++) {
		v->queue_sel = (uint16_t)i;
		set_pfn(v, st.q[i].pfn);
		v->vq[i].last_avail = st.q[i].last_avail;
		v->vq[i].used_idx = st.q[i].used_idx;
	}
	v->queue_sel = st.queue_sel;
	memcpy(v->config, st.config, v->config_len);
	/* The IOAPIC pin's level travels in the irqchip state; keep ours
	 * in step without toggling it. */
	v->irq_level = st.irq_level;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

static void virtio_describe(struct km_ioport *io, char *buf, size_t len)
{
	struct km_virtio *v = io->priv;
	size_t n;

	pthread_mutex_lock(&v->lock);
	n = (size_t)snprintf(buf, len,
			     "%s at %#x (IRQ %u): status %#x, %llu notifies, "
			     "%llu chains returned",
			     v->ops->name, v->io_base, v->irq, v->status,
			     (unsigned long long)v->notifies,
			     (unsigned long long)v->requests);
	if (v->ops->describe && n < len)
		v->ops->describe(v, buf + n, len - n);
	pthread_mutex_unlock(&v->lock);
}

static void virtio_destroy(struct km_ioport *io)
{
	struct km_virtio *v = io->priv;

	if (v->ops->destroy)
		v->ops->destroy(v);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static const struct km_ioport_ops virtio_ops = {
	.name = "virtio-pci",
	.in = virtio_in,
	.out = virtio_out,
	.tapped = virtio_tapped,
	.save = virtio_save,
	.restore = virtio_restore,
	.describe = virtio_describe,
	.destroy = virtio_destroy,
};

struct km_virtio *km_virtio_create(struct km_vm *vm,
				   const struct km_virtio_spec *spec,
				   struct km_err *err)
{
	struct km_pci_dev pci = {
		.vendor = PCI_VENDOR_REDHAT_QUMRANET,
		.device = spec->pci_device,
		.subsys_vendor = PCI_VENDOR_REDHAT_QUMRANET,
		.subsys_id = spec->virtio_id,
		.class_rev = spec->pci_class << 8, /* revision 0: legacy */
		.io_base = spec->io_base,
		.io_size = KM_VIRTIO_BAR_SIZE,
		.irq = spec->irq,
	};
	struct km_virtio *v;
	unsigned int i;
	int r;

	if (spec->nqueues > KM_VIRTIO_MAX_QUEUES ||
	    spec->config_len > KM_VIRTIO_CONFIG_MAX ||
	    spec->queue_num & (spec->queue_num - 1) || !spec->queue_num) {
		km_err_set(err, "bad virtio device description for %s",
			   spec->ops->name);
		errno = EINVAL;
		return NULL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&v->lock, NULL);
	v->vm = vm;
	v->ops = spec->ops;
	v->dev = spec->dev;
	v->io_base = spec->io_base;
	v->irq = spec->irq;
	v->host_features = spec->host_features;
	v->nqueues = spec->nqueues;
	for (i = 0; i < v->nqueues; i++)
		v->vq[i].num = spec->queue_num;
	memcpy(v->config, spec->config, spec->config_len);
	v->config_len = spec->config_len;
	r = km_pci_add(vm, &pci, err);
	if (r >= 0)
		r = km_ioport_register(vm, spec->io_base, KM_VIRTIO_BAR_SIZE,
				       &virtio_ops, v);
	if (r < 0) {
		km_err_set(err, "registering %s at %#x failed: %s",
			   spec->ops->name, spec->io_base, strerror(-r));
		/* The caller still owns spec->dev on failure. */
		pthread_mutex_destroy(&v->lock);
		free(v);
		errno = -r;
		return NULL;
	}
	return v;
}
