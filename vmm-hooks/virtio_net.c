// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-net over legacy virtio-pci with a TAP interface as the wire.
 * Features: MAC only (no offloads, no mergeable buffers), so every packet
 * carries the 10-byte legacy virtio_net_hdr, all zero on receive and
 * dropped on transmit.
 *
 * Transmit: a QueueNotify of the TX queue with packets pending is a tapped
 * exit; the packets reach the TAP only after the hook (the replica has the
 * epoch). An untapped TX notify sends nothing.
 *
 * Receive: a thread reads the TAP and copies each packet into the next RX
 * buffer, recording the pages in the device dirty log. It delivers with
 * the VM's lock held and never while the vCPUs are paused, so a
 * checkpoint taken at a tap point sees RAM, rings and indices that agree.
 * A packet that finds no RX buffer is dropped, as a full NIC ring would.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "virtio.h"
#include "virtio_dev.h"
#include "vm.h"

#define VIRTIO_ID_NET 1
#define PCI_DEVICE_NET 0x1000
#define PCI_CLASS_NETWORK_ETHERNET 0x020000
#define VIRTIO_NET_F_MAC (1u << 5)
#define HDR_LEN 10
#define RXQ 0
#define TXQ 1
#define QUEUE_NUM 256
#define MAX_FRAME 65550

struct net_config {
	uint8_t mac[6];
};

struct net {
	struct km_virtio *v;
	int tap_fd;
	int stop_fd;
	pthread_t rx_thread;
	bool rx_started;
	uint64_t rx_packets, rx_dropped, tx_packets;
	uint8_t frame[MAX_FRAME]; /* TX gather buffer; lock held */
};

static bool net_has_output(struct km_virtio *v, unsigned int q)
{
	return q == TXQ && km_virtq_pending(v, q) > 0;
}

static void transmit(struct km_virtio *v, struct net *n)
{
	struct km_vchain *c = malloc(sizeof(*c));
	bool done = false;
	int r;

	if (!c)
		return;
	while ((r = km_virtq_pop(v, TXQ, c)) != 0) {
		size_t len;

		done = true;
		if (r < 0)
			continue;
		len = km_vchain_copy_from(c, 0, n->frame, sizeof(n->frame));
		if (len > HDR_LEN &&
		    write(n->tap_fd, n->frame + HDR_LEN, len - HDR_LEN) > 0)
			n->tx_packets++;
		km_virtq_push(v, TXQ, c->head, 0);
	}
	free(c);
	if (done)
		km_virtio_interrupt(v);
}

static void net_notify(struct km_virtio *v, unsigned int q, bool tapped)
{
	/* Untapped: nothing leaves (RX notifies only add buffers). */
	if (q == TXQ && tapped)
		transmit(v, v->dev);
}

/* Deliver one received frame; VM lock and device lock held. */
static void deliver(struct km_virtio *v, struct net *n, const uint8_t *frame,
		    size_t len)
{
	static const uint8_t hdr[HDR_LEN];
	struct km_vchain *c = malloc(sizeof(*c));
	size_t put;
	int r;

	if (!c)
		return;
	r = (v->status & KM_VIRTIO_STATUS_DRIVER_OK) ? km_virtq_pop(v, RXQ, c) :
						       0;
	if (r <= 0) {
		n->rx_dropped++;
		free(c);
		return;
	}
	put = km_vchain_copy_to(v, c, 0, hdr, HDR_LEN);
	if (put == HDR_LEN)
		put += km_vchain_copy_to(v, c, HDR_LEN, frame, len);
	if (put != HDR_LEN + len)
		n->rx_dropped++; /* too big for the buffer: truncated */
	else
		n->rx_packets++;
	km_virtq_push(v, RXQ, c->head, (uint32_t)put);
	km_virtio_interrupt(v);
	free(c);
}

static void *rx_main(void *arg)
{
	struct net *n = arg;
	struct km_virtio *v = n->v;
	struct km_vm *vm = v->vm;
	uint8_t *frame = malloc(MAX_FRAME);
	struct pollfd pfd[2] = { { .fd = n->tap_fd, .events = POLLIN },
				 { .fd = n->stop_fd, .events = POLLIN } };

	if (!frame)
		return NULL;
	for (;;) {
		ssize_t len;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		len = read(n->tap_fd, frame, MAX_FRAME);
		if (len <= 0)
			continue;
		/* Never while a checkpoint has the vCPUs parked. */
		pthread_mutex_lock(&vm->lock);
		while (vm->pause_owner && !vm->stopping)
			pthread_cond_wait(&vm->cond, &vm->lock);
		pthread_mutex_lock(&v->lock);
		deliver(v, n, frame, (size_t)len);
		pthread_mutex_unlock(&v->lock);
		pthread_mutex_unlock(&vm->lock);
	}
	free(frame);
	return NULL;
}

static void net_describe(struct km_virtio *v, char *buf, size_t len)
{
	struct net *n = v->dev;

	snprintf(buf, len, "; rx %llu packets (%llu dropped), tx %llu",
		 (unsigned long long)__atomic_load_n(&n->rx_packets,
						     __ATOMIC_RELAXED),
		 (unsigned long long)__atomic_load_n(&n->rx_dropped,
						     __ATOMIC_RELAXED),
		 (unsigned long long)n->tx_packets);
}

static void net_destroy(struct km_virtio *v)
{
	struct net *n = v->dev;

	if (n->rx_started) {
		eventfd_write(n->stop_fd, 1);
		pthread_join(n->rx_thread, NULL);
	}
	close(n->stop_fd);
	close(n->tap_fd);
	free(n);
}

static const struct km_virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.notify = net_notify,
	.has_output = net_has_output,
	.describe = net_describe,
	.destroy = net_destroy,
};

static int open_tap(const char *ifname, struct km_err *err)
{
	struct ifreq ifr;
	int fd, r;

	if (strlen(ifname) >= IFNAMSIZ) {
		km_err_set(err, "the TAP name '%s' is longer than %d", ifname,
			   IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		km_err_set(err, "cannot open /dev/net/tun for TAP %s: %s",
			   ifname, strerror(errno));
		return r;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		km_err_set(err, "cannot attach to TAP %s: %s", ifname,
			   strerror(errno));
		close(fd);
		return r;
	}
	return fd;
}

int km_virtio_net_init(struct km_vm *vm, const struct km_virtio_net_cfg *cfg,
		       struct km_err *err)
{
	static const uint8_t zero[6];
	struct net_config config;
	struct km_virtio_spec spec = {
		.ops = &net_ops,
		.pci_device = PCI_DEVICE_NET,
		.virtio_id = VIRTIO_ID_NET,
		.pci_class = PCI_CLASS_NETWORK_ETHERNET,
		.io_base = cfg->io_base,
		.irq = cfg->irq,
		.host_features = VIRTIO_NET_F_MAC,
		.nqueues = 2,
		.queue_num = QUEUE_NUM,
		.config = &config,
		.config_len = sizeof(config),
	};
	struct net *n;
	int r;

	memcpy(config.mac, cfg->mac, 6);
	if (!memcmp(config.mac, zero, 6))
		memcpy(config.mac,
		       (const uint8_t[]){ 0x52, 0x54, 0x00, 0x4b, 0x4d,
					  (uint8_t)cfg->io_base },
		       6);
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (n->stop_fd < 0) {
		free(n);
		return -errno;
	}
	n->tap_fd = open_tap(cfg->ifname, err);
	if (n->tap_fd < 0) {
		r = n->tap_fd;
		goto err_stop;
	}
	spec.dev = n;
	n->v = km_virtio_create(vm, &spec, err);
	if (!n->v) {
		r = -errno;
		goto err_tap;
	}
	/* From here the transport owns n: net_destroy() undoes the rest. */
	r = -pthread_create(&n->rx_thread, NULL, rx_main, n);
	if (r < 0) {
		km_err_set(err, "starting the receive thread of %s failed",
			   cfg->ifname);
		return r;
	}
	n->rx_started = true;
	return 0;

err_tap:
	close(n->tap_fd);
err_stop:
	close(n->stop_fd);
	free(n);
	return r;
}
