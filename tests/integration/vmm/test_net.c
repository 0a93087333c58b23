// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-net on a real TAP, without KVM: each test runs in its own network
 * namespace with a TAP "kt0"; the test is the guest's driver (rings in a
 * fake VM's RAM, kicks through the dispatcher) and a packet socket on kt0
 * is the outside world.
 *
 *  - a frame sent into kt0 lands in the next RX buffer behind a zero
 *    virtio_net_hdr, and the buffer's and used ring's pages are in the
 *    device dirty log;
 *  - the receive thread does not deliver while the vCPUs are paused (a
 *    checkpoint is being taken), and does once they resume;
 *  - a TX notify is tapped, the frame reaches kt0 only then, without the
 *    header; an untapped TX notify sends nothing.
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../unit/vmm/fake_vm.h"
#include "devices.h"
#include "virtio.h"
#include "virtio_dev.h"

#define RAM (1u << 20)
#define BASE KM_VIRTIO_IO_BASE(0)
#define RX_PFN 0x10
#define TX_PFN 0x20
#define RX_DESC 0x10000
#define RX_AVAIL (RX_DESC + 16 * 256)
#define RX_USED 0x12000
#define TX_DESC 0x20000
#define TX_AVAIL (TX_DESC + 16 * 256)
#define TX_USED 0x22000
#define RX_BUF 0x40000
#define TX_HDR 0x50000
#define TX_FRAME 0x51000
#define FRAME_LEN 60

static struct km_vm *vm;
static struct km_vcpu *vcpu;
static uint8_t run_page[4096] __attribute__((aligned(64)));
static int psock = -1;
static unsigned int hook_calls;
static uint8_t frame[FRAME_LEN];

static int count_hook(struct km_vcpu *v, const struct km_tap_event *ev,
		      void *opaque)
{
	(void)v;
	(void)ev;
	(void)opaque;
	hook_calls++;
	return 0;
}

static void sh(const char *cmd)
{
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

static void setup(void)
{
	struct km_virtio_net_cfg cfg = { .ifname = "kt0",
					 .io_base = BASE,
					 .irq = 10 };
	struct sockaddr_ll ll = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ALL) };
	struct km_err err = { 0 };

	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %m");
	/* No IPv6 on the TAP: its DAD and MLD packets would take the RX
	 * buffer before the test's frame (seen under load in CI). */
	sh("ip tuntap add dev kt0 mode tap && "
	   "{ echo 1 >/proc/sys/net/ipv6/conf/kt0/disable_ipv6 || true; } && "
	   "ip link set kt0 up");
	vm = fake_vm_ram(RAM);
	cr_assert_eq(km_pci_init(vm, &err), 0, "%s", err.msg);
	cr_assert_eq(km_virtio_net_init(vm, &cfg, &err), 0, "%s", err.msg);
	vcpu = &vm->vcpus[0];
	vcpu->vm = vm;
	vcpu->fd = -1;
	vcpu->run = (struct kvm_run *)run_page;
	km_vm_set_tap(vm, NULL, count_hook, NULL);
	hook_calls = 0;

	psock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	cr_assert_geq(psock, 0, "packet socket: %m");
	ll.sll_ifindex = (int)if_nametoindex("kt0");
	cr_assert_gt(ll.sll_ifindex, 0);
	cr_assert_eq(bind(psock, (struct sockaddr *)&ll, sizeof(ll)), 0);

	/* A broadcast frame with an experimental EtherType and a pattern. */
	memset(frame, 0xff, 6);
	memcpy(frame + 6, (uint8_t[]){ 0x02, 0, 0, 0, 0, 1 }, 6);
	frame[12] = 0x88;
	frame[13] = 0xb5;
	for (unsigned int i = 14; i < FRAME_LEN; i++)
		frame[i] = (uint8_t)i;
}

static void teardown(void)
{
	fake_vm_free(vm); /* joins the receive thread */
	close(psock);
}

TestSuite(virtio_net, .init = setup, .fini = teardown);

static void pio_out(uint16_t port, uint32_t val, uint8_t size)
{
	struct kvm_run *run = vcpu->run;

	memset(run_page, 0, sizeof(run_page));
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.count = 1;
	run->io.port = port;
	run->io.data_offset = 1024;
	memcpy(run_page + 1024, &val, size);
	cr_assert_eq(km__ioport_dispatch(vcpu), 0);
}

static void put_desc(uint64_t table, uint16_t i, uint64_t gpa, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *d = vm->mem + table + 16 * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void avail(uint64_t ring, uint16_t idx, uint16_t head)
{
	memcpy(vm->mem + ring + 4 + 2 * (idx % 256), &head, 2);
	__atomic_store_n((uint16_t *)(vm->mem + ring + 2), (uint16_t)(idx + 1),
			 __ATOMIC_RELEASE);
}

static uint16_t used_idx(uint64_t ring)
{
	return __atomic_load_n((uint16_t *)(vm->mem + ring + 2),
			       __ATOMIC_ACQUIRE);
}

static void driver_up(void)
{
	cr_assert_eq(fake_inl(vm, BASE + KM_VIRTIO_HOST_FEATURES), 1u << 5,
		     "MAC only");
	cr_assert_eq(fake_inb(vm, BASE + KM_VIRTIO_CONFIG), 0x52);
	fake_outb(vm, BASE + KM_VIRTIO_STATUS, 3);
	fake_outw(vm, BASE + KM_VIRTIO_QUEUE_SEL, 0);
	fake_outl(vm, BASE + KM_VIRTIO_QUEUE_PFN, RX_PFN);
	fake_outw(vm, BASE + KM_VIRTIO_QUEUE_SEL, 1);
	fake_outl(vm, BASE + KM_VIRTIO_QUEUE_PFN, TX_PFN);
	fake_outb(vm, BASE + KM_VIRTIO_STATUS, 7);
	put_desc(RX_DESC, 0, RX_BUF, 2048, KM_VRING_DESC_F_WRITE, 0);
	avail(RX_AVAIL, 0, 0);
}

/* Wait (bounded, not timed) for the RX used index to reach @want. */
static bool rx_used_reaches(uint16_t want, int ms)
{
	struct timespec step = { .tv_nsec = 10 * 1000 * 1000 };

	for (int i = 0; i < ms / 10; i++) {
		if (used_idx(RX_USED) == want)
			return true;
		nanosleep(&step, NULL);
	}
	return used_idx(RX_USED) == want;
}

Test(virtio_net, a_received_frame_lands_in_ram_and_in_the_dirty_log)
{
	uint64_t bits[RAM / 4096 / 64] = { 0 };
	uint32_t len;

	driver_up();
	cr_assert_geq(km_vm_dirty_harvest(vm, bits, RAM / 4096 / 64), 0);
	memset(bits, 0, sizeof(bits));
	cr_assert_eq(send(psock, frame, FRAME_LEN, 0), FRAME_LEN);
	cr_assert(rx_used_reaches(1, 10000), "the frame never arrived");
	memcpy(&len, vm->mem + RX_USED + 4 + 4, 4);
	cr_assert_eq(len, 10 + FRAME_LEN);
	for (unsigned int i = 0; i < 10; i++)
		cr_assert_eq(vm->mem[RX_BUF + i], 0, "header byte %u", i);
	cr_assert_eq(memcmp(vm->mem + RX_BUF + 10, frame, FRAME_LEN), 0);
	cr_assert_gt(km_vm_dirty_harvest(vm, bits, RAM / 4096 / 64), 0);
	cr_assert(bits[RX_BUF / 4096 / 64] & (1ull << (RX_BUF / 4096 % 64)));
	cr_assert(bits[RX_USED / 4096 / 64] & (1ull << (RX_USED / 4096 % 64)));
}

Test(virtio_net, nothing_is_delivered_while_the_vcpus_are_paused)
{
	struct timespec wait = { .tv_nsec = 300 * 1000 * 1000 };

	driver_up();
	pthread_mutex_lock(&vm->lock);
	vm->pause_owner = &vm->vcpus[1]; /* a checkpoint in progress */
	pthread_mutex_unlock(&vm->lock);
	cr_assert_eq(send(psock, frame, FRAME_LEN, 0), FRAME_LEN);
	nanosleep(&wait, NULL);
	cr_assert_eq(used_idx(RX_USED), 0, "delivered during a checkpoint");
	pthread_mutex_lock(&vm->lock);
	vm->pause_owner = NULL;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	cr_assert(rx_used_reaches(1, 10000), "never delivered after resume");
}

/* The next frame on kt0 with our EtherType, or -1 after a bounded wait. */
static ssize_t next_frame(uint8_t *buf, size_t cap)
{
	struct pollfd p = { .fd = psock, .events = POLLIN };

	while (poll(&p, 1, 2000) == 1) {
		ssize_t n = recv(psock, buf, cap, 0);

		if (n >= 14 && buf[12] == 0x88 && buf[13] == 0xb6)
			return n;
	}
	return -1;
}

Test(virtio_net, transmit_is_tapped_and_only_then_leaves)
{
	uint8_t buf[2048];

	driver_up();
	frame[13] = 0xb6; /* tell our TX apart from anything else */
	memset(vm->mem + TX_HDR, 0, 10);
	memcpy(vm->mem + TX_FRAME, frame, FRAME_LEN);
	put_desc(TX_DESC, 0, TX_HDR, 10, KM_VRING_DESC_F_NEXT, 1);
	put_desc(TX_DESC, 1, TX_FRAME, FRAME_LEN, 0, 0);
	avail(TX_AVAIL, 0, 0);

	km_tap_policy_parse(&vm->tap, "none", NULL);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 1, 2);
	cr_assert_eq(used_idx(TX_USED), 0, "an untapped notify transmitted");
	cr_assert_eq(next_frame(buf, sizeof(buf)), -1);

	km_tap_policy_default(&vm->tap);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 0, 2); /* RX: not output */
	cr_assert_eq(hook_calls, 0);
	pio_out(BASE + KM_VIRTIO_QUEUE_NOTIFY, 1, 2);
	cr_assert_eq(hook_calls, 1);
	cr_assert_eq(used_idx(TX_USED), 1);
	cr_assert_eq(next_frame(buf, sizeof(buf)), FRAME_LEN);
	cr_assert_eq(memcmp(buf, frame, FRAME_LEN), 0, "sent with its header");
}
