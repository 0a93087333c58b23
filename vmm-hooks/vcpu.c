// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU threads: KVM_RUN, the exit handlers, and the pause protocol that
 * stops every other vCPU at an event-tap point.
 *
 * Pausing, with A at a tapped OUT and B running the guest:
 *
 *   A: lock; pause_owner = A; B.immediate_exit = 1; kick B; wait parked
 *   B:   KVM_RUN returns EINTR (any I/O B had pending is completed first)
 *   B:   lock; drained and paused by another: nparked++; broadcast; wait
 *   A: parked == nactive - 1: unlock; run the hook; lock; owner = NULL
 *   B:   woken: nparked--; immediate_exit = 0; back to KVM_RUN
 *
 * A vCPU parks only right after a KVM_RUN that returned EINTR, so its
 * registers never hide a half-done I/O from a state save. The one
 * exception is a vCPU that hits a tapped exit while it may not own the VM
 * yet: it parks at its exit, before its OUT is performed, with RIP at the
 * OUT; that is also a consistent point (on restore the OUT runs again).
 *
 * Fairness. Without it a vCPU making back-to-back tapped exits starves
 * the others: its release wakes them, but it is back at its next tapped
 * exit and kicks them again before they have re-entered the guest (or
 * even left their wait). So:
 *  - tapped exits own the VM in ticket order (next_ticket, now_serving):
 *    a vCPU already waiting at its own tapped exit goes before one that
 *    comes back for another;
 *  - every release bumps resume_gen, and a vCPU going back into KVM_RUN
 *    to run the guest records it (turn_gen); nobody takes the VM again
 *    until every other vCPU has done so since, or is itself waiting at a
 *    tapped exit (it holds a ticket: waiting for it would deadlock, and
 *    the ticket order gives it its turn).
 * A halted vCPU's turn costs its wake-up and one KVM_RUN entry, not a
 * time slice: a kick can still arrive before it executes an instruction,
 * so progress is measured (lab_vmm_tap), not promised per exit.
 */
#include "vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void set_apic_ids(struct kvm_cpuid2 *cpuid, unsigned int id)
{
	uint32_t i;

	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffffu) | (id << 24);
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = id;
	}
}

static int set_cpuid(struct km_vcpu *vcpu, const struct kvm_cpuid2 *cpuid,
		     struct km_err *err)
{
	size_t sz = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);
	struct kvm_cpuid2 *mine = malloc(sz);
	int r = 0;

	if (!mine)
		return -ENOMEM;
	memcpy(mine, cpuid, sz);
	set_apic_ids(mine, vcpu->id);
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, mine) < 0) {
		r = -errno;
		km_err_set(err, "KVM_SET_CPUID2 on vCPU %u failed: %s",
			   vcpu->id, strerror(errno));
	}
	free(mine);
	return r;
}

/*
 * Start XCR0 at every user state component the guest's CPUID offers, the
 * value Linux writes with XSETBV first thing. KVM derives CPUID.0xD.0:EBX
 * (the XSAVE area size the guest checks against its own sum) from the XCR0
 * it knows; where XSETBV is not intercepted (nested SVM under TCG in the
 * lab) KVM never learns the guest's value, reports the 576-byte legacy size
 * and the guest kernel disables XSAVE or worse. Real hardware intercepts
 * XSETBV and the guest's own write simply lands on the same value.
 */
static int set_xcr0(struct km_vcpu *vcpu, const struct kvm_cpuid2 *cpuid,
		    struct km_err *err)
{
	struct kvm_xcrs xcrs = { .nr_xcrs = 1 };
	uint32_t i;
	int r;

	for (i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 0xd && e->index == 0)
			xcrs.xcrs[0].value = e->eax | (uint64_t)e->edx << 32;
	}
	if (!(xcrs.xcrs[0].value & 1))
		return 0;	/* no XSAVE leaf: leave the reset value */
	if (ioctl(vcpu->fd, KVM_SET_XCRS, &xcrs) == 0)
		return 0;
	r = -errno;
	km_err_set(err, "KVM_SET_XCRS (XCR0 %#llx) on vCPU %u failed: %s",
		   (unsigned long long)xcrs.xcrs[0].value, vcpu->id,
		   strerror(-r));
	return r;
}

static void lvt_set_mode(struct kvm_lapic_state *lapic, int reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, lapic->regs + reg, 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(lapic->regs + reg, &v, 4);
}

/* LINT0 takes the PIC's ExtINT and LINT1 NMIs, as the MP table says. */
static int setup_lapic(struct km_vcpu *vcpu, struct km_err *err)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		goto err_ioctl;
	lvt_set_mode(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lvt_set_mode(&lapic, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		goto err_ioctl;
	return 0;

err_ioctl:
	km_err_set(err, "setting up the LAPIC of vCPU %u failed: %s", vcpu->id,
		   strerror(errno));
	return -errno;
}

int km__vcpu_create(struct km_vm *vm, unsigned int id,
		    const struct kvm_cpuid2 *cpuid, struct km_err *err)
{
	struct km_vcpu *vcpu = &vm->vcpus[id];
	int r;

	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (vcpu->fd < 0) {
		r = -errno;
		km_err_set(err, "KVM_CREATE_VCPU %u failed: %s", id,
			   strerror(errno));
		return r;
	}
	vcpu->run = mmap(NULL, vm->kvm.run_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		r = -errno;
		vcpu->run = NULL;
		km_err_set(err, "mapping kvm_run of vCPU %u failed: %s", id,
			   strerror(errno));
		goto err_close;
	}
	r = set_cpuid(vcpu, cpuid, err);
	if (r < 0)
		goto err_unmap;
	r = set_xcr0(vcpu, cpuid, err);
	if (r < 0)
		goto err_unmap;
	r = setup_lapic(vcpu, err);
	if (r < 0)
		goto err_unmap;
	return 0;

err_unmap:
	munmap(vcpu->run, vm->kvm.run_size);
	vcpu->run = NULL;
err_close:
	close(vcpu->fd);
	vcpu->fd = -1;
	return r;
}

void km__vcpu_destroy(struct km_vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->kvm.run_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}

int km_vcpu_get_rip(struct km_vcpu *vcpu, uint64_t *rip)
{
	struct kvm_regs regs;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0)
		return -errno;
	*rip = regs.rip;
	return 0;
}

/* Called with vm->lock held. */
static void kick(struct km_vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
	/*
	 * Anywhere but in (or entering) KVM_RUN it sees immediate_exit
	 * before it runs the guest again. Fewer signals matter in the lab:
	 * QEMU's nested SVM has been seen to corrupt the guest's RIP when a
	 * kick's IPI lands at VMRUN (tests/lab/README.md).
	 */
	if (vcpu->thread_started &&
	    __atomic_load_n(&vcpu->in_guest, __ATOMIC_ACQUIRE))
		pthread_kill(vcpu->thread, KM_KICK_SIGNAL);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void deadline_in(struct timespec *t, long ns)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_nsec += ns;
	while (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

/*
 * Wait (lock held) until every active vCPU but @self (NULL: every one) is
 * parked, kicking the others again after 1 ms, then 2, 4, ... up to every
 * 100 ms. On hardware a kick is answered in microseconds and this never
 * fires; under nested SVM on TCG (the lab) a kick has been seen to go
 * unanswered until a later interrupt, tens of ms on, and a second signal
 * costs nothing (a parked vCPU has immediate_exit set anyway).
 */
static void wait_parked(struct km_vm *vm, const struct km_vcpu *self)
{
	long wait_ns = 1000 * 1000;
	struct timespec t;
	unsigned int i;

	while (vm->nparked + (self != NULL) < vm->nactive && !vm->stopping) {
		deadline_in(&t, wait_ns);
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &t) !=
		    ETIMEDOUT)
			continue;
		vm->rekicks++;
		for (i = 0; i < vm->ncpus; i++)
			if (&vm->vcpus[i] != self)
				kick(&vm->vcpus[i]);
		if (wait_ns < 100 * 1000 * 1000)
			wait_ns *= 2;
	}
}

/* Park @vcpu until nobody but itself would own the VM. Lock held. */
static void park(struct km_vcpu *vcpu)
{
	struct km_vm *vm = vcpu->vm;

	vm->nparked++;
	pthread_cond_broadcast(&vm->cond);
	while (vm->pause_owner && vm->pause_owner != vcpu && !vm->stopping)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->nparked--;
}

/* Has every other vCPU been back in the guest since the last release? */
static bool others_had_turn(const struct km_vm *vm, const struct km_vcpu *self)
{
	unsigned int i;

	for (i = 0; i < vm->ncpus; i++) {
		const struct km_vcpu *v = &vm->vcpus[i];

		if (v == self || v->done || v->wants_vm)
			continue;
		if (v->turn_gen != vm->resume_gen)
			return false;
	}
	return true;
}

static bool may_own(const struct km_vm *vm, const struct km_vcpu *self,
		    uint64_t ticket)
{
	return !vm->pause_owner && vm->now_serving == ticket &&
	       others_had_turn(vm, self);
}

bool km__vm_pause_others(struct km_vcpu *self)
{
	struct km_vm *vm = self->vm;
	uint64_t ticket, t0, t1, park_ns;
	unsigned int i;
	bool ok;

	t0 = now_ns();
	pthread_mutex_lock(&vm->lock);
	ticket = vm->next_ticket++;
	if (!may_own(vm, self, ticket) && !vm->stopping) {
		/* Parked at the OUT, not performed: a consistent point. */
		self->wants_vm = true;
		self->stats.turn_waits += !vm->pause_owner &&
					  vm->now_serving == ticket;
		vm->nparked++;
		pthread_cond_broadcast(&vm->cond);
		while (!may_own(vm, self, ticket) && !vm->stopping)
			pthread_cond_wait(&vm->cond, &vm->lock);
		vm->nparked--;
		self->wants_vm = false;
	}
	t1 = now_ns();
	self->stats.turn_wait_ns += t1 - t0;
	if (!vm->stopping) {
		vm->pause_owner = self;
		for (i = 0; i < vm->ncpus; i++)
			if (&vm->vcpus[i] != self)
				kick(&vm->vcpus[i]);
		wait_parked(vm, self);
		park_ns = now_ns() - t1;
		self->stats.park_wait_ns += park_ns;
		if (park_ns > self->stats.park_wait_max_ns)
			self->stats.park_wait_max_ns = park_ns;
	}
	ok = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return ok;
}

void km__vm_resume_others(struct km_vcpu *self)
{
	struct km_vm *vm = self->vm;

	pthread_mutex_lock(&vm->lock);
	if (vm->pause_owner == self) {
		vm->pause_owner = NULL;
		vm->now_serving++;
		vm->resume_gen++;
	}
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

unsigned int km_vm_parked(struct km_vm *vm)
{
	unsigned int n;

	pthread_mutex_lock(&vm->lock);
	n = vm->nparked;
	pthread_mutex_unlock(&vm->lock);
	return n;
}

/*
 * Before each KVM_RUN: park if another vCPU owns the VM and nothing is
 * pending, and decide immediate_exit. Returns false when the VM stops.
 */
static bool vcpu_sync(struct km_vcpu *vcpu)
{
	struct km_vm *vm = vcpu->vm;
	bool paused, go;

	pthread_mutex_lock(&vm->lock);
	paused = vm->pause_owner && vm->pause_owner != vcpu;
	if (paused && vcpu->drained && !vm->stopping)
		park(vcpu);
	paused = vm->pause_owner && vm->pause_owner != vcpu;
	vcpu->run->immediate_exit = paused || vm->stopping;
	vcpu->stats.runs += !vcpu->run->immediate_exit;
	__atomic_store_n(&vcpu->in_guest, !vcpu->run->immediate_exit,
			 __ATOMIC_RELEASE);
	if (!vcpu->run->immediate_exit && vcpu->turn_gen != vm->resume_gen) {
		/* Its turn: a vCPU waiting to take the VM may go on. */
		vcpu->turn_gen = vm->resume_gen;
		pthread_cond_broadcast(&vm->cond);
	}
	go = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return go;
}

static int handle_mmio(struct km_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	/* Nothing is mapped outside RAM: reads float high, writes vanish. */
	vcpu->stats.mmio++;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
	return 0;
}

static int handle_fatal(struct km_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[400];
	uint64_t rip = 0;

	km_kvm_exit_describe(run, what, sizeof(what));
	km_vcpu_get_rip(vcpu, &rip);
	km_vm_stop(vcpu->vm, KM_VM_FAILED, "vCPU %u stopped at RIP %#llx: %s",
		   vcpu->id, (unsigned long long)rip, what);
	return -EIO;
}

static int handle_system_event(struct km_vcpu *vcpu)
{
	uint32_t type = vcpu->run->system_event.type;

	if (type == KVM_SYSTEM_EVENT_CRASH)
		return handle_fatal(vcpu);
	km_vm_stop(vcpu->vm, KM_VM_RESET, "the guest requested %s",
		   type == KVM_SYSTEM_EVENT_RESET ? "a reset" : "power off");
	return 0;
}

static int handle_exit(struct km_vcpu *vcpu)
{
	vcpu->stats.exits++;
	switch (vcpu->run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu->stats.io++;
		return km__ioport_dispatch(vcpu);
	case KVM_EXIT_MMIO:
		return handle_mmio(vcpu);
	case KVM_EXIT_INTR:
		vcpu->stats.kicks++;
		return 0;
	case KVM_EXIT_SYSTEM_EVENT:
		return handle_system_event(vcpu);
	default:
		/* SHUTDOWN, FAIL_ENTRY, INTERNAL_ERROR, HLT and the rest. */
		return handle_fatal(vcpu);
	}
}

static void vcpu_loop(struct km_vcpu *vcpu)
{
	uint64_t t0 = now_ns(), t1;
	int r;

	while (vcpu_sync(vcpu)) {
		t1 = now_ns();
		vcpu->stats.sync_ns += t1 - t0;
		r = ioctl(vcpu->fd, KVM_RUN, 0);
		__atomic_store_n(&vcpu->in_guest, false, __ATOMIC_RELEASE);
		t0 = now_ns();
		vcpu->stats.run_ns += t0 - t1;
		vcpu->drained = r < 0 && errno == EINTR;
		if (vcpu->drained) {
			vcpu->stats.kicks++;
			continue;
		}
		if (r < 0 && errno == EAGAIN)
			continue;
		if (r < 0) {
			km_vm_stop(vcpu->vm, KM_VM_FAILED,
				   "KVM_RUN on vCPU %u failed: %s", vcpu->id,
				   strerror(errno));
			return;
		}
		if (handle_exit(vcpu) < 0)
			return;
	}
}

static void *vcpu_thread(void *arg)
{
	struct km_vcpu *vcpu = arg;
	struct km_vm *vm = vcpu->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, KM_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	vcpu_loop(vcpu);

	pthread_mutex_lock(&vm->lock);
	vm->nactive--;
	vcpu->done = true;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

/* The kick only has to interrupt KVM_RUN; the handler does nothing. */
static void kick_handler(int sig)
{
	(void)sig;
}

static int install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return EINTR. */
	return sigaction(KM_KICK_SIGNAL, &sa, NULL) < 0 ? -errno : 0;
}

static void stop_and_join(struct km_vm *vm, unsigned int started)
{
	unsigned int i;

	for (i = 0; i < started; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
}

#define MONITOR(vm) ((struct km_vcpu *)(void *)&(vm)->monitor)
#define X86_EFLAGS_IF 0x200

/* The main thread parks every vCPU (it is not one itself). */
static bool pause_all(struct km_vm *vm)
{
	unsigned int i;
	bool ok;

	pthread_mutex_lock(&vm->lock);
	while (vm->pause_owner && !vm->stopping)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (!vm->stopping) {
		vm->pause_owner = MONITOR(vm);
		for (i = 0; i < vm->ncpus; i++)
			kick(&vm->vcpus[i]);
		wait_parked(vm, NULL);
	}
	ok = !vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return ok;
}

static void resume_all(struct km_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->pause_owner == MONITOR(vm))
		vm->pause_owner = NULL;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/*
 * Without ACPI, Linux turns poweroff into halt: every CPU ends in HLT with
 * interrupts disabled, inside KVM, where userspace never sees it. A vCPU
 * that was never started (UNINITIALIZED) counts as off too.
 */
static bool guest_is_off(struct km_vm *vm)
{
	unsigned int i, halted = 0;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	bool off = true;

	if (!pause_all(vm))
		return false;
	for (i = 0; i < vm->ncpus && off; i++) {
		struct km_vcpu *v = &vm->vcpus[i];

		if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0 ||
		    ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
			off = false;
		else if (mp.mp_state == KVM_MP_STATE_HALTED &&
			 !(regs.rflags & X86_EFLAGS_IF))
			halted++;
		else if (mp.mp_state != KVM_MP_STATE_UNINITIALIZED)
			off = false;
	}
	resume_all(vm);
	return off && halted > 0;
}

static double elapsed(const struct km_vm *vm)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - vm->t_start.tv_sec) +
	       (now.tv_nsec - vm->t_start.tv_nsec) / 1e9;
}

/* Once a second: the timeout, and whether the guest powered off. */
/*
 * For the timeout's message: where the pause protocol stands, so a stall
 * in the guest can be told from one in the protocol. Counters are read
 * without their threads' cooperation: a hint, not a snapshot.
 */
static void describe_pause(struct km_vm *vm, char *buf, size_t len)
{
	size_t n;
	unsigned int i;

	pthread_mutex_lock(&vm->lock);
	n = (size_t)snprintf(buf, len,
			     "pause owner %s, %u of %u vCPUs parked, "
			     "resume generation %llu, %llu re-kicks",
			     !vm->pause_owner		    ? "none" :
			     vm->pause_owner == MONITOR(vm) ? "main" :
							      "a vCPU",
			     vm->nparked, vm->nactive,
			     (unsigned long long)vm->resume_gen,
			     (unsigned long long)vm->rekicks);
	for (i = 0; i < vm->ncpus && n < len; i++) {
		const struct km_vcpu *v = &vm->vcpus[i];

		n += (size_t)snprintf(buf + n, len - n,
				      "; vCPU %u%s: turn %llu, %llu guest "
				      "entries, %llu kicks, %.3f s waiting "
				      "for its turn, %.3f s for the others "
				      "to park (worst %.1f ms), %.3f s in "
				      "KVM_RUN, %.3f s parked or syncing",
				      i,
				      v == vm->pause_owner ? " (owner)" :
				      v->wants_vm ? " (waiting at a tapped "
						    "exit)" :
						    "",
				      (unsigned long long)v->turn_gen,
				      (unsigned long long)v->stats.runs,
				      (unsigned long long)v->stats.kicks,
				      v->stats.turn_wait_ns / 1e9,
				      v->stats.park_wait_ns / 1e9,
				      v->stats.park_wait_max_ns / 1e6,
				      v->stats.run_ns / 1e9,
				      v->stats.sync_ns / 1e9);
	}
	pthread_mutex_unlock(&vm->lock);
}

static void monitor_tick(struct km_vm *vm, unsigned int *off_ticks)
{
	char why[960];

	if (vm->timeout_s && elapsed(vm) >= vm->timeout_s) {
		describe_pause(vm, why, sizeof(why));
		km_vm_stop(vm, KM_VM_FAILED,
			   "the guest was still running "
			   "after the %u s timeout (%s)",
			   vm->timeout_s, why);
		return;
	}
	/* Twice in a row, a second apart: HLT with IF clear is final. */
	*off_ticks = guest_is_off(vm) ? *off_ticks + 1 : 0;
	if (*off_ticks == 2)
		km_vm_stop(vm, KM_VM_RESET,
			   "the guest halted every vCPU with "
			   "interrupts disabled (poweroff or halt)");
}

/*
 * The monitor: a tick every second whatever wakes the condition variable
 * in between (tapped exits broadcast it many times a second). Once the VM
 * is stopping, every vCPU still in KVM_RUN is kicked again each tick, so a
 * lost signal cannot leave the VM unjoinable.
 */
static void wait_end(struct km_vm *vm)
{
	unsigned int off_ticks = 0, i;
	struct timespec tick;

	pthread_mutex_lock(&vm->lock);
	deadline_in(&tick, 1000 * 1000 * 1000);
	while (vm->nactive > 0) {
		if (pthread_cond_timedwait(&vm->cond, &vm->lock, &tick) !=
		    ETIMEDOUT)
			continue;
		deadline_in(&tick, 1000 * 1000 * 1000);
		if (vm->stopping) {
			for (i = 0; i < vm->ncpus; i++)
				if (!vm->vcpus[i].done)
					kick(&vm->vcpus[i]);
			continue;
		}
		pthread_mutex_unlock(&vm->lock);
		monitor_tick(vm, &off_ticks);
		pthread_mutex_lock(&vm->lock);
	}
	pthread_mutex_unlock(&vm->lock);
}

int km_vm_run(struct km_vm *vm)
{
	unsigned int i;
	int r;

	r = install_kick_handler();
	if (r < 0)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &vm->t_start);
	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < vm->ncpus; i++) {
		r = -pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread,
				    &vm->vcpus[i]);
		if (r < 0)
			break;
		vm->vcpus[i].thread_started = true;
		vm->nactive++;
	}
	pthread_mutex_unlock(&vm->lock);
	if (r < 0)
		km_vm_stop(vm, KM_VM_FAILED,
			   "starting vCPU thread %u failed: "
			   "%s",
			   i, strerror(-r));

	wait_end(vm);
	stop_and_join(vm, i);
	clock_gettime(CLOCK_MONOTONIC, &vm->t_end);
	if (r < 0)
		return r;
	return vm->end == KM_VM_RESET ? 0 : -EIO;
}
