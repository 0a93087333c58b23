// SPDX-License-Identifier: GPL-2.0
/*
 * The one PIO dispatcher. At a tapped exit the order is the point of
 * kemari:
 *
 *   vCPU exits at OUT (RIP still at the OUT)
 *     -> park every other vCPU
 *     -> tap hook (the replicator ships epoch N and waits for its ack)
 *     -> resume the others
 *     -> perform the I/O (the byte leaves the VM)
 *     -> next KVM_RUN skips the OUT
 */
#include "ioport.h"

#include <errno.h>
#include <string.h>

#include "vm.h"

int km_ioport_register(struct km_vm *vm, uint16_t base, uint16_t len,
		       const struct km_ioport_ops *ops, void *priv)
{
	struct km_ioport *io;
	unsigned int i;

	for (i = 0; i < vm->nioports; i++) {
		io = &vm->ioports[i];
		if (base < io->base + io->len && io->base < base + len)
			return -EEXIST;
	}
	if (vm->nioports == KM_MAX_IOPORTS)
		return -ENOSPC;
	io = &vm->ioports[vm->nioports++];
	io->base = base;
	io->len = len;
	io->ops = ops;
	io->priv = priv;
	io->vm = vm;
	return 0;
}

void km__ioport_destroy_all(struct km_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->nioports; i++)
		if (vm->ioports[i].ops->destroy)
			vm->ioports[i].ops->destroy(&vm->ioports[i]);
	vm->nioports = 0;
}

/* Per vCPU thread: the OUT being performed was tapped. */
static __thread bool tapped_now;

bool km_ioport_tapped_now(void)
{
	return tapped_now;
}

static struct km_ioport *find(struct km_vm *vm, uint16_t port)
{
	unsigned int i;

	for (i = 0; i < vm->nioports; i++) {
		struct km_ioport *io = &vm->ioports[i];

		if (port >= io->base && port - io->base < io->len)
			return io;
	}
	return NULL;
}

static bool is_tapped(struct km_vm *vm, struct km_ioport *io,
		      const struct kvm_run *run)
{
	bool dev = false;

	if (run->io.direction != KVM_EXIT_IO_OUT)
		return false;
	if (io && io->ops->tapped && vm->tap.devices)
		dev = io->ops->tapped(io, run->io.port,
				      (const uint8_t *)run +
					      run->io.data_offset,
				      run->io.size);
	return km_tap_policy_match(&vm->tap, run->io.port, dev);
}

static int call_tap(struct km_vcpu *vcpu, struct km_ioport *io,
		    const uint8_t *data)
{
	struct km_vm *vm = vcpu->vm;
	struct kvm_run *run = vcpu->run;
	struct km_tap_event ev = {
		.vcpu = vcpu->id,
		.port = run->io.port,
		.size = run->io.size,
		.count = run->io.count,
		.data = data,
		.device = io ? io->ops->name : NULL,
	};
	int r;

	vcpu->stats.tapped++;
	if (!vm->tap_hook)
		return 0;
	if (!km__vm_pause_others(vcpu))
		return 0;
	r = vm->tap_hook(vcpu, &ev, vm->tap_opaque);
	km__vm_resume_others(vcpu);
	if (r != 0)
		km_vm_stop(vm, KM_VM_FAILED,
			   "the event-tap hook failed at "
			   "port %#x on vCPU %u (%d)",
			   ev.port, vcpu->id, r);
	return r ? -EIO : 0;
}

static void perform(struct km_ioport *io, struct kvm_run *run, uint8_t *data)
{
	unsigned int i, size = run->io.size;

	for (i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			if (io && io->ops->out)
				io->ops->out(io, run->io.port, data, size);
		} else {
			/* Unclaimed ports float high, as on a real ISA bus. */
			memset(data, 0xff, size);
			if (io && io->ops->in)
				io->ops->in(io, run->io.port, data, size);
		}
	}
}

int km__ioport_dispatch(struct km_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct km_ioport *io = find(vcpu->vm, run->io.port);
	int r;

	tapped_now = is_tapped(vcpu->vm, io, run);
	if (tapped_now) {
		r = call_tap(vcpu, io, data);
		if (r < 0)
			return r;
	}
	perform(io, run, data);
	tapped_now = false;
	return 0;
}
