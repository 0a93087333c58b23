/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A km_vm without KVM for the device and dispatcher suites: no vCPU
 * threads, vm->fd -1 (IRQ line changes fail harmlessly), and helpers that
 * drive a device's ops the way the dispatcher does.
 */
#ifndef KEMARI_TESTS_FAKE_VM_H
#define KEMARI_TESTS_FAKE_VM_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

static inline struct km_vm *fake_vm(void)
{
	struct km_vm *vm = calloc(1, sizeof(*vm));

	cr_assert_not_null(vm);
	vm->fd = vm->mem_fd = vm->kvm.fd = -1;
	km_tap_policy_default(&vm->tap);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	return vm;
}

/* A fake VM with @size bytes of zeroed RAM and a device dirty log. */
static inline struct km_vm *fake_vm_ram(uint64_t size)
{
	struct km_vm *vm = fake_vm();

	vm->mem = calloc(1, size);
	cr_assert_not_null(vm->mem);
	vm->mem_size = size;
	cr_assert_eq(km_dirty_init(&vm->dirty, size), 0);
	return vm;
}

static inline void fake_vm_free(struct km_vm *vm)
{
	km__ioport_destroy_all(vm);
	km_dirty_destroy(&vm->dirty);
	free(vm->mem);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static inline struct km_ioport *fake_io_find(struct km_vm *vm, uint16_t port)
{
	for (unsigned int i = 0; i < vm->nioports; i++)
		if (port >= vm->ioports[i].base &&
		    port < vm->ioports[i].base + vm->ioports[i].len)
			return &vm->ioports[i];
	cr_assert_fail("no device at port %#x", port);
	return NULL;
}

static inline void fake_outb(struct km_vm *vm, uint16_t port, uint8_t v)
{
	struct km_ioport *io = fake_io_find(vm, port);

	io->ops->out(io, port, &v, 1);
}

static inline void fake_outw(struct km_vm *vm, uint16_t port, uint16_t v)
{
	struct km_ioport *io = fake_io_find(vm, port);

	io->ops->out(io, port, (uint8_t *)&v, 2);
}

static inline void fake_outl(struct km_vm *vm, uint16_t port, uint32_t v)
{
	struct km_ioport *io = fake_io_find(vm, port);

	io->ops->out(io, port, (uint8_t *)&v, 4);
}

static inline uint8_t fake_inb(struct km_vm *vm, uint16_t port)
{
	struct km_ioport *io = fake_io_find(vm, port);
	uint8_t v = 0xff;

	io->ops->in(io, port, &v, 1);
	return v;
}

static inline uint32_t fake_inl(struct km_vm *vm, uint16_t port)
{
	struct km_ioport *io = fake_io_find(vm, port);
	uint32_t v = 0xffffffff;

	io->ops->in(io, port, (uint8_t *)&v, 4);
	return v;
}

#endif
