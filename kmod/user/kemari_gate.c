// SPDX-License-Identifier: GPL-2.0
/*
 * The userspace side of kemari.ko: thin wrappers over the ioctls of
 * <linux/kemari.h>, plus the "absent" case, which is normal: kemari runs
 * without the module, with the ordering enforced in userspace only.
 */
#include "kemari_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct km_gate {
	int fd;
	struct kemari_version version;
};

struct km_gate_vm {
	int fd;
};

int km_gate_open(const char *path, struct km_gate **out)
{
	struct km_gate *gate;
	int ret;

	gate = calloc(1, sizeof(*gate));
	if (!gate)
		return -ENOMEM;
	gate->fd = open(path ? path : KM_GATE_DEFAULT_PATH, O_RDWR | O_CLOEXEC);
	if (gate->fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (ioctl(gate->fd, KEMARI_IOC_GET_VERSION, &gate->version) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (gate->version.abi_version != KEMARI_ABI_VERSION ||
	    gate->version.size != sizeof(gate->version)) {
		ret = -EPROTO;
		goto err_close;
	}
	*out = gate;
	return 0;

err_close:
	close(gate->fd);
err_free:
	free(gate);
	return ret;
}

void km_gate_close(struct km_gate *gate)
{
	if (!gate)
		return;
	close(gate->fd);
	free(gate);
}

uint64_t km_gate_features(const struct km_gate *gate)
{
	return gate->version.features;
}

const char *km_gate_describe(const struct km_gate *gate, int err, char *buf,
			     size_t len)
{
	uint64_t f;

	if (!gate) {
		if (err == -ENOENT)
			snprintf(buf, len, "kernel gate: absent");
		else
			snprintf(buf, len, "kernel gate: unusable (%s)",
				 err == -EPROTO ? "another ABI version" :
						  strerror(-err));
		return buf;
	}
	f = gate->version.features;
	snprintf(buf, len, "kernel gate: present (ABI %u, features %s%s%s)",
		 gate->version.abi_version,
		 f & KEMARI_FEATURE_GATE ? "gate" : "-",
		 f & KEMARI_FEATURE_FAULT ? ",fault" : "",
		 f & KEMARI_FEATURE_TEST_FAULT ? ",TEST-BUILD" : "");
	return buf;
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

int km_gate_register(struct km_gate *gate, int vm_fd,
		     const struct kemari_port_range *ranges, size_t n,
		     uint32_t flags, struct km_gate_vm **out)
{
	struct kemari_register reg = { .vm_fd = vm_fd, .flags = flags };
	struct km_gate_vm *vm;
	int fd;

	if (n > KEMARI_MAX_RANGES || (n && !ranges))
		return -EINVAL;
	reg.nr_ranges = n;
	if (n)
		memcpy(reg.ranges, ranges, n * sizeof(*ranges));
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	fd = ioctl(gate->fd, KEMARI_IOC_REGISTER_VM, &reg);
	if (fd < 0) {
		fd = -errno;
		free(vm);
		return fd;
	}
	vm->fd = fd;
	*out = vm;
	return 0;
}

int km_gate_vm_fd(const struct km_gate_vm *vm)
{
	return vm->fd;
}

int km_gate_read_events(struct km_gate_vm *vm, struct kemari_event *ev,
			size_t max, int timeout_ms)
{
	struct pollfd pfd = { .fd = vm->fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (!max)
		return -EINVAL;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	n = read(vm->fd, ev, max * sizeof(*ev));
	if (n < 0)
		return -errno;
	return n / sizeof(*ev);
}

int km_gate_ack(struct km_gate_vm *vm, uint64_t epoch)
{
	return xioctl(vm->fd, KEMARI_IOC_ACK, &epoch);
}

int km_gate_add_thread(struct km_gate_vm *vm, pid_t tid)
{
	struct kemari_thread t = { .tid = tid };

	return xioctl(vm->fd, KEMARI_IOC_ADD_THREAD, &t);
}

int km_gate_set_eventfd(struct km_gate_vm *vm, int efd)
{
	int32_t fd = efd;

	return xioctl(vm->fd, KEMARI_IOC_SET_EVENTFD, &fd);
}

int km_gate_vm_status(struct km_gate_vm *vm, struct kemari_vm_status *st)
{
	return xioctl(vm->fd, KEMARI_IOC_STATUS, st);
}

int km_gate_query(struct km_gate *gate, int vm_fd, struct kemari_vm_status *st)
{
	memset(st, 0, sizeof(*st));
	st->vm_fd = vm_fd;
	return xioctl(gate->fd, KEMARI_IOC_QUERY_VM, st);
}

int km_gate_unregister(struct km_gate_vm *vm)
{
	int ret = xioctl(vm->fd, KEMARI_IOC_UNREGISTER, NULL);

	close(vm->fd);
	free(vm);
	return ret;
}

void km_gate_vm_close(struct km_gate_vm *vm)
{
	if (!vm)
		return;
	close(vm->fd);
	free(vm);
}
