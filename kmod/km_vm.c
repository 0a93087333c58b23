// SPDX-License-Identifier: GPL-2.0
/*
 * Registered VMs: registration, the gate, and the agent file.
 *
 * The agent registers a KVM VM with the ports to tap and gets back the
 * agent file. When a vCPU of that VM exits to userspace on an OUT to a
 * tapped port and KVM still has to complete it (6.1 advances RIP past the
 * OUT only in the next KVM_RUN), the exit observer arms the vCPU with the
 * next epoch and queues an event on the agent file. Until that epoch is
 * acked, every KVM_RUN of the vCPU, from any thread, sleeps in
 * km__vm_hold() without vcpu->mutex (so the agent can read registers);
 * a signal ends the sleep with EINTR and RIP still at the OUT.
 *
 * Closing the agent file without KEMARI_IOC_UNREGISTER is agent loss:
 * fail-open releases the VM (unprotected, reported); fail-closed keeps it
 * held until a new agent registers the same VM and acks.
 *
 * Lock order: km_vms_lock, then km_vm.lock. The hooks never sleep and
 * look records up under RCU.
 */
#include "km_int.h"
#include "km_vm.h"

#include <linux/anon_inodes.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

static DEFINE_HASHTABLE(km_vms, 6);
static DEFINE_SPINLOCK(km_vms_lock);
/* How many records exist: 0 makes every hook return at once. */
static atomic_t km_nr_vms = ATOMIC_INIT(0);

static struct km_vm *vm_lookup(const struct kvm *kvm)
{
	struct km_vm *vm;

	hash_for_each_possible_rcu(km_vms, vm, node,
				   (unsigned long)kvm) if (vm->kvm ==
							   kvm) return vm;
	return NULL;
}

static void vm_free_rcu(struct rcu_head *rcu)
{
	struct km_vm *vm = container_of(rcu, struct km_vm, rcu);
	struct eventfd_ctx *efd = rcu_dereference_protected(vm->efd, 1);
	unsigned int i;

	for (i = 0; i < vm->nr_threads; i++)
		put_pid(vm->threads[i]);
	if (efd)
		eventfd_ctx_put(efd);
	kvfree(vm->vcpus);
	kfree(vm);
}

void km__vm_put(struct km_vm *vm)
{
	if (refcount_dec_and_test(&vm->ref))
		call_rcu(&vm->rcu, vm_free_rcu);
}

void km__vm_signal(struct km_vm *vm)
{
	struct eventfd_ctx *efd;

	rcu_read_lock();
	efd = rcu_dereference(vm->efd);
	if (efd)
		eventfd_signal(efd, 1);
	rcu_read_unlock();
}

/* Does the gate hold armed vCPUs in this state? */
static bool gating(u32 state)
{
	return state == KEMARI_VM_ATTACHED || state == KEMARI_VM_LOST_CLOSED;
}

static bool vcpu_held(const struct km_vm *vm, const struct km_vcpu *v)
{
	return gating(READ_ONCE(vm->state)) &&
	       READ_ONCE(v->armed) > READ_ONCE(vm->acked);
}

static struct km_vcpu *vcpu_slot(struct km_vm *vm, struct kvm_vcpu *vcpu)
{
	int idx = vcpu->vcpu_idx;

	if (idx < 0 || idx >= KVM_MAX_VCPUS)
		return NULL;
	return &vm->vcpus[array_index_nospec(idx, KVM_MAX_VCPUS)];
}

bool km__vm_wants_hold(struct kvm_vcpu *vcpu)
{
	struct km_vcpu *v;
	struct km_vm *vm;
	bool hold = false;

	if (!atomic_read(&km_nr_vms))
		return false;
	rcu_read_lock();
	vm = vm_lookup(vcpu->kvm);
	v = vm ? vcpu_slot(vm, vcpu) : NULL;
	if (v) {
		WRITE_ONCE(v->exits_at_entry, vcpu->stat.exits);
		hold = vcpu_held(vm, v) || READ_ONCE(v->test_fault);
	}
	rcu_read_unlock();
	return hold;
}

static bool tapped(const struct km_vm *vm, u16 port)
{
	u32 i;

	for (i = 0; i < vm->nr_ranges; i++)
		if (port >= vm->ranges[i].first && port <= vm->ranges[i].last)
			return true;
	return false;
}

/* Under vm->lock. */
static void queue_event(struct km_vm *vm, const struct km_vcpu *v)
{
	struct kemari_event *ev;

	if (vm->ev_tail - vm->ev_head >= KM_RING) {
		vm->events_lost++;
		return;
	}
	ev = &vm->ring[vm->ev_tail++ % KM_RING];
	ev->vcpu_id = v->vcpu_id;
	ev->port = v->port;
	ev->size = v->size;
	ev->epoch = v->armed;
}

static void arm(struct km_vm *vm, struct km_vcpu *v, struct kvm_vcpu *vcpu)
{
	const struct kvm_run *run = vcpu->run;
	bool queued = false;

	spin_lock(&vm->lock);
	if (gating(vm->state) && tapped(vm, run->io.port)) {
		v->vcpu_id = vcpu->vcpu_id;
		v->port = run->io.port;
		v->size = run->io.size;
		WRITE_ONCE(v->armed, ++vm->next_epoch);
		queue_event(vm, v);
		queued = true;
	}
	spin_unlock(&vm->lock);
	if (queued)
		wake_up_interruptible(&vm->event_wq);
}

void km__vm_observe_exit(struct kvm_vcpu *vcpu)
{
	const struct kvm_run *run = vcpu->run;
	struct km_vcpu *v;
	struct km_vm *vm;

	if (!atomic_read(&km_nr_vms))
		return;
	/*
	 * An OUT still waiting for completion: complete_userspace_io is set
	 * and RIP is at the instruction. Requiring that the guest ran in this
	 * KVM_RUN (the exit count moved) keeps a KVM_RUN that failed before
	 * entering the guest from re-arming the same, older exit.
	 */
	if (run->exit_reason != KVM_EXIT_IO ||
	    run->io.direction != KVM_EXIT_IO_OUT ||
	    !vcpu->arch.complete_userspace_io)
		return;
	rcu_read_lock();
	vm = vm_lookup(vcpu->kvm);
	v = vm ? vcpu_slot(vm, vcpu) : NULL;
	if (v && READ_ONCE(v->exits_at_entry) != vcpu->stat.exits)
		arm(vm, v, vcpu);
	rcu_read_unlock();
}

static bool may_run(const struct km_vm *vm, const struct km_vcpu *v)
{
	return !vcpu_held(vm, v) || READ_ONCE(km__unloading) ||
	       atomic_read(&vm->dead);
}

/* Sleep until the vCPU may run; vcpu->mutex is dropped meanwhile. */
static int wait_released(struct kvm_vcpu *vcpu, struct km_vm *vm,
			 const struct km_vcpu *v)
{
	bool sigset_active = vcpu->sigset_active;
	sigset_t sigset = vcpu->sigset;
	int ret;

	mutex_unlock(&vcpu->mutex);
	/* As KVM_RUN itself: the vCPU's signal mask applies while it waits. */
	if (sigset_active)
		sigprocmask(SIG_SETMASK, &sigset, &current->real_blocked);
	ret = wait_event_interruptible(vm->gate_wq, may_run(vm, v));
	if (sigset_active) {
		sigprocmask(SIG_SETMASK, &current->real_blocked, NULL);
		sigemptyset(&current->real_blocked);
	}
	mutex_lock(&vcpu->mutex);
	return ret ? -EINTR : 0;
}

int km__vm_hold(struct kvm_vcpu *vcpu)
{
	struct km_vcpu *v = NULL;
	struct km_vm *vm;
	int ret = 0;

	rcu_read_lock();
	vm = vm_lookup(vcpu->kvm);
	if (vm && !refcount_inc_not_zero(&vm->ref))
		vm = NULL;
	rcu_read_unlock();
	if (vm)
		v = vcpu_slot(vm, vcpu);
	if (!v)
		goto out_put;
	/*
	 * With vcpu->mutex dropped another thread may run the vCPU, which
	 * may then be armed again: re-check after every wake-up.
	 */
	while (!ret && !may_run(vm, v))
		ret = wait_released(vcpu, vm, v);
	if (!ret && READ_ONCE(km__unloading))
		ret = -EINTR;
	else if (!ret && atomic_read(&vm->dead))
		ret = -EIO;
	WRITE_ONCE(v->exits_at_entry, vcpu->stat.exits);
out_put:
	if (vm)
		km__vm_put(vm);
	return ret;
}

unsigned int km__vm_take_test_fault(struct kvm_vcpu *vcpu)
{
	unsigned int kind = 0;
	struct km_vcpu *v;
	struct km_vm *vm;

	if (!KM_TEST_BUILD)
		return 0;
	rcu_read_lock();
	vm = vm_lookup(vcpu->kvm);
	v = vm ? vcpu_slot(vm, vcpu) : NULL;
	if (v)
		kind = xchg(&v->test_fault, 0);
	rcu_read_unlock();
	return kind;
}

/* Remove @vm from the hash (caller holds km_vms_lock); drops no reference. */
static void unlink_locked(struct km_vm *vm)
{
	hash_del_rcu(&vm->node);
	atomic_dec(&km_nr_vms);
	spin_lock(&vm->lock);
	WRITE_ONCE(vm->state, 0);
	vm->agent = NULL;
	spin_unlock(&vm->lock);
}

void km__vm_destroyed(struct kvm *kvm)
{
	struct km_vm *vm;

	if (!atomic_read(&km_nr_vms))
		return;
	spin_lock(&km_vms_lock);
	vm = vm_lookup(kvm);
	if (vm)
		unlink_locked(vm);
	spin_unlock(&km_vms_lock);
	/* No vCPU thread and no agent file can exist: they hold the kvm. */
	if (vm)
		km__vm_put(vm);
}

void km__vm_release_all(void)
{
	struct hlist_node *tmp;
	struct km_vm *vm;
	HLIST_HEAD(gone);
	int bkt;

	spin_lock(&km_vms_lock);
	hash_for_each_safe(km_vms, bkt, tmp, vm, node)
	{
		unlink_locked(vm);
		hlist_add_head(&vm->node, &gone);
	}
	spin_unlock(&km_vms_lock);
	/* The hooks are gone: nobody walks the hash any more. */
	synchronize_rcu();
	hlist_for_each_entry_safe(vm, tmp, &gone, node)
	{
		hlist_del(&vm->node);
		wake_up_all(&vm->gate_wq);
		km__vm_put(vm);
	}
}

struct km_vm *km__fault_thread_vm(void)
{
	struct pid *pid = task_pid(current);
	struct km_vm *vm;
	unsigned int i, n;
	int bkt;

	if (!atomic_read(&km_nr_vms))
		return NULL;
	hash_for_each_rcu(km_vms, bkt, vm, node)
	{
		n = smp_load_acquire(&vm->nr_threads);
		for (i = 0; i < n; i++)
			if (READ_ONCE(vm->threads[i]) == pid)
				return vm;
	}
	return NULL;
}

/* The agent file. */

/* Is @file the VM's current agent? Under vm->lock or as a hint. */
static bool is_agent(const struct km_vm *vm, const struct file *file)
{
	return vm && READ_ONCE(vm->agent) == file;
}

static bool has_events(struct km_vm *vm, struct file *file)
{
	return READ_ONCE(vm->ev_tail) != READ_ONCE(vm->ev_head) ||
	       !is_agent(vm, file);
}

static ssize_t agent_read(struct file *file, char __user *buf, size_t len,
			  loff_t *ppos)
{
	struct km_vm *vm = file->private_data;
	struct kemari_event evs[16];
	size_t n = 0, max = min(len / sizeof(evs[0]), ARRAY_SIZE(evs));
	int ret;

	if (!max)
		return -EINVAL;
	for (;;) {
		spin_lock(&vm->lock);
		if (!is_agent(vm, file)) {
			spin_unlock(&vm->lock);
			return -ENODEV;
		}
		while (n < max && vm->ev_head != vm->ev_tail)
			evs[n++] = vm->ring[vm->ev_head++ % KM_RING];
		spin_unlock(&vm->lock);
		if (n)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(vm->event_wq,
					       has_events(vm, file));
		if (ret)
			return ret;
	}
	if (copy_to_user(buf, evs, n * sizeof(evs[0])))
		return -EFAULT;
	return n * sizeof(evs[0]);
}

static __poll_t agent_poll(struct file *file, poll_table *pt)
{
	struct km_vm *vm = file->private_data;

	poll_wait(file, &vm->event_wq, pt);
	if (!is_agent(vm, file))
		return EPOLLERR | EPOLLHUP;
	if (READ_ONCE(vm->ev_tail) != READ_ONCE(vm->ev_head))
		return EPOLLIN | EPOLLRDNORM;
	return 0;
}

static long agent_ack(struct km_vm *vm, void __user *arg)
{
	u64 epoch;
	long ret = 0;

	if (copy_from_user(&epoch, arg, sizeof(epoch)))
		return -EFAULT;
	spin_lock(&vm->lock);
	if (epoch > vm->next_epoch)
		ret = -EINVAL;
	else if (epoch > vm->acked)
		WRITE_ONCE(vm->acked, epoch);
	spin_unlock(&vm->lock);
	if (!ret)
		wake_up_interruptible_all(&vm->gate_wq);
	return ret;
}

static long agent_add_thread(struct km_vm *vm, void __user *arg)
{
	struct kemari_thread t;
	struct pid *pid;
	unsigned int i;
	long ret = 0;

	if (copy_from_user(&t, arg, sizeof(t)))
		return -EFAULT;
	if (t.pad || t.tid < 0)
		return -EINVAL;
	pid = t.tid ? find_get_pid(t.tid) : get_pid(task_pid(current));
	if (!pid)
		return -ESRCH;
	spin_lock(&vm->lock);
	for (i = 0; i < vm->nr_threads; i++)
		if (vm->threads[i] == pid)
			break;
	if (i < vm->nr_threads) {
		ret = -EEXIST;
	} else if (vm->nr_threads == KEMARI_MAX_THREADS) {
		ret = -ENOSPC;
	} else {
		WRITE_ONCE(vm->threads[i], pid);
		/* The die notifier reads the count, then the entries. */
		smp_store_release(&vm->nr_threads, i + 1);
		pid = NULL;
	}
	spin_unlock(&vm->lock);
	put_pid(pid);
	return ret;
}

static long agent_set_eventfd(struct km_vm *vm, void __user *arg)
{
	struct eventfd_ctx *efd = NULL, *old;
	s32 fd;

	if (copy_from_user(&fd, arg, sizeof(fd)))
		return -EFAULT;
	if (fd != -1) {
		efd = eventfd_ctx_fdget(fd);
		if (IS_ERR(efd))
			return PTR_ERR(efd);
	}
	spin_lock(&vm->lock);
	old = rcu_replace_pointer(vm->efd, efd, lockdep_is_held(&vm->lock));
	spin_unlock(&vm->lock);
	if (old) {
		/* The die notifier may be signalling it under RCU. */
		synchronize_rcu();
		eventfd_ctx_put(old);
	}
	return 0;
}

static void fill_status(struct km_vm *vm, struct kemari_vm_status *st)
{
	unsigned long i;
	struct kvm_vcpu *vcpu;

	spin_lock(&vm->lock);
	st->state = atomic_read(&vm->dead) ? KEMARI_VM_DEAD : vm->state;
	st->flags = vm->flags;
	st->armed_epoch = vm->next_epoch;
	st->acked_epoch = vm->acked;
	st->events_lost = vm->events_lost;
	st->agent_losses = vm->agent_losses;
	st->fault_cpu = atomic_read(&vm->dead) ? vm->fault_cpu : -1;
	st->held_vcpus = 0;
	kvm_for_each_vcpu(i, vcpu, vm->kvm)
	{
		struct km_vcpu *v = vcpu_slot(vm, vcpu);

		if (v && vcpu_held(vm, v))
			st->held_vcpus++;
	}
	spin_unlock(&vm->lock);
}

static long agent_status(struct km_vm *vm, void __user *arg)
{
	struct kemari_vm_status st = { .vm_fd = -1 };

	fill_status(vm, &st);
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static long agent_unregister(struct km_vm *vm, struct file *file)
{
	bool found;

	spin_lock(&km_vms_lock);
	found = is_agent(vm, file);
	if (found)
		unlink_locked(vm);
	spin_unlock(&km_vms_lock);
	if (!found)
		return -ENODEV;
	wake_up_all(&vm->gate_wq);
	wake_up_all(&vm->event_wq);
	km__vm_put(vm); /* the hash's reference */
	return 0;
}

static long agent_test_fault(struct km_vm *vm, void __user *arg)
{
	struct kemari_test_fault tf;
	struct kvm_vcpu *vcpu;
	struct km_vcpu *v;

	if (copy_from_user(&tf, arg, sizeof(tf)))
		return -EFAULT;
	if (tf.kind != KEMARI_TEST_FAULT_NULL &&
	    tf.kind != KEMARI_TEST_FAULT_GP)
		return -EINVAL;
	vcpu = kvm_get_vcpu_by_id(vm->kvm, tf.vcpu_id);
	v = vcpu ? vcpu_slot(vm, vcpu) : NULL;
	if (!v)
		return -ENOENT;
	pr_warn("test build: the next KVM_RUN of vCPU %u faults (kind %u)\n",
		tf.vcpu_id, tf.kind);
	WRITE_ONCE(v->test_fault, tf.kind);
	return 0;
}

static long agent_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct km_vm *vm = file->private_data;
	void __user *uarg = (void __user *)arg;

	if (!is_agent(vm, file))
		return -ENODEV;
	switch (cmd) {
	case KEMARI_IOC_ACK:
		return agent_ack(vm, uarg);
	case KEMARI_IOC_ADD_THREAD:
		return agent_add_thread(vm, uarg);
	case KEMARI_IOC_SET_EVENTFD:
		return agent_set_eventfd(vm, uarg);
	case KEMARI_IOC_UNREGISTER:
		return agent_unregister(vm, file);
	case KEMARI_IOC_STATUS:
		return agent_status(vm, uarg);
	case KEMARI_IOC_TEST_FAULT:
		if (KM_TEST_BUILD)
			return agent_test_fault(vm, uarg);
		return -ENOTTY;
	}
	return -ENOTTY;
}

/* The agent closed its file: lost unless it unregistered first. */
static void agent_lost(struct km_vm *vm)
{
	bool closed;

	spin_lock(&vm->lock);
	vm->agent = NULL;
	vm->agent_losses++;
	closed = vm->flags & KEMARI_REG_FAIL_CLOSED;
	if (!closed)
		vm->acked = vm->next_epoch;
	WRITE_ONCE(vm->state,
		   closed ? KEMARI_VM_LOST_CLOSED : KEMARI_VM_LOST_OPEN);
	spin_unlock(&vm->lock);
	pr_warn("VM of pid %d: agent lost, %s\n", vm->kvm->userspace_pid,
		closed ?
			"fail-closed: armed vCPUs stay held until a new agent registers it" :
			"fail-open: vCPUs released, the VM runs unprotected");
	wake_up_all(&vm->gate_wq);
	km__vm_signal(vm);
}

static int agent_release(struct inode *inode, struct file *file)
{
	struct km_vm *vm = file->private_data;
	struct kvm *kvm;

	if (!vm)
		return 0;
	kvm = vm->kvm;
	if (is_agent(vm, file))
		agent_lost(vm);
	km__vm_put(vm);
	kvm_put_kvm(kvm);
	return 0;
}

static const struct file_operations km_agent_fops = {
	.owner = THIS_MODULE,
	.read = agent_read,
	.poll = agent_poll,
	.unlocked_ioctl = agent_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = agent_release,
	.llseek = noop_llseek,
};

/* Registration. */

static int check_register(const struct kemari_register *reg)
{
	u32 i;

	if (reg->flags & ~KEMARI_REG_FLAGS_KNOWN || reg->pad ||
	    reg->nr_ranges > KEMARI_MAX_RANGES)
		return -EINVAL;
	for (i = 0; i < reg->nr_ranges; i++)
		if (reg->ranges[i].first > reg->ranges[i].last)
			return -EINVAL;
	return 0;
}

static struct km_vm *vm_alloc(struct kvm *kvm)
{
	struct km_vm *vm = kzalloc(sizeof(*vm), GFP_KERNEL);

	if (!vm)
		return NULL;
	vm->vcpus = kvcalloc(KVM_MAX_VCPUS, sizeof(*vm->vcpus), GFP_KERNEL);
	if (!vm->vcpus) {
		kfree(vm);
		return NULL;
	}
	refcount_set(&vm->ref, 1);
	vm->kvm = kvm;
	spin_lock_init(&vm->lock);
	init_waitqueue_head(&vm->gate_wq);
	init_waitqueue_head(&vm->event_wq);
	vm->fault_cpu = -1;
	INIT_WORK(&vm->fault_work, km__fault_work);
	return vm;
}

/* Under vm->lock: a new agent takes over; re-queue the held vCPUs. */
static void attach(struct km_vm *vm, struct file *file,
		   const struct kemari_register *reg)
{
	unsigned int i;

	vm->agent = file;
	vm->flags = reg->flags;
	vm->nr_ranges = reg->nr_ranges;
	memcpy(vm->ranges, reg->ranges, sizeof(vm->ranges));
	WRITE_ONCE(vm->state, KEMARI_VM_ATTACHED);
	vm->ev_head = vm->ev_tail = 0;
	for (i = 0; i < KVM_MAX_VCPUS; i++)
		if (vm->vcpus[i].armed > vm->acked)
			queue_event(vm, &vm->vcpus[i]);
}

/*
 * Link @file to the record of @kvm, @fresh if there is none yet. Returns
 * the record (with a reference for @file) or an ERR_PTR; consumes @fresh.
 */
static struct km_vm *vm_attach(struct kvm *kvm, struct km_vm *fresh,
			       struct file *file,
			       const struct kemari_register *reg)
{
	struct km_vm *vm;

	spin_lock(&km_vms_lock);
	vm = vm_lookup(kvm);
	if (!vm) {
		vm = fresh;
		fresh = NULL;
		hash_add_rcu(km_vms, &vm->node, (unsigned long)kvm);
		atomic_inc(&km_nr_vms);
	} else if (atomic_read(&vm->dead)) {
		vm = ERR_PTR(-EIO);
	} else if (vm->state == KEMARI_VM_ATTACHED) {
		vm = ERR_PTR(-EBUSY);
	}
	if (!IS_ERR(vm)) {
		refcount_inc(&vm->ref);
		spin_lock(&vm->lock);
		attach(vm, file, reg);
		spin_unlock(&vm->lock);
	}
	spin_unlock(&km_vms_lock);
	if (fresh)
		km__vm_put(fresh);
	return vm;
}

long km__vm_register(void __user *uarg)
{
	struct kemari_register reg;
	struct km_vm *fresh, *vm;
	struct file *file;
	struct kvm *kvm;
	struct fd f;
	int fd, ret;

	if (copy_from_user(&reg, uarg, sizeof(reg)))
		return -EFAULT;
	ret = check_register(&reg);
	if (ret)
		return ret;
	f = fdget(reg.vm_fd);
	if (!f.file)
		return -EBADF;
	ret = -EINVAL;
	if (!km__is_kvm_vm_file(f.file))
		goto err_fdput;
	kvm = f.file->private_data;
	ret = -ENOMEM;
	fresh = vm_alloc(kvm);
	if (!fresh)
		goto err_fdput;
	fd = get_unused_fd_flags(O_CLOEXEC);
	ret = fd;
	if (fd < 0)
		goto err_free;
	file = anon_inode_getfile("kemari-vm", &km_agent_fops, NULL,
				  O_RDWR | O_CLOEXEC);
	ret = PTR_ERR(file);
	if (IS_ERR(file))
		goto err_put_fd;
	vm = vm_attach(kvm, fresh, file, &reg);
	if (IS_ERR(vm)) {
		fput(file); /* private_data NULL: release does nothing */
		put_unused_fd(fd);
		fdput(f);
		return PTR_ERR(vm);
	}
	kvm_get_kvm(kvm); /* the agent file's, dropped at release */
	file->private_data = vm;
	fd_install(fd, file);
	fdput(f);
	return fd;

err_put_fd:
	put_unused_fd(fd);
err_free:
	km__vm_put(fresh);
err_fdput:
	fdput(f);
	return ret;
}

long km__vm_query(void __user *uarg)
{
	struct kemari_vm_status st;
	struct km_vm *vm;
	struct fd f;
	long ret = 0;

	if (copy_from_user(&st, uarg, sizeof(st)))
		return -EFAULT;
	f = fdget(st.vm_fd);
	if (!f.file)
		return -EBADF;
	if (!km__is_kvm_vm_file(f.file)) {
		fdput(f);
		return -EINVAL;
	}
	rcu_read_lock();
	vm = vm_lookup(f.file->private_data);
	if (vm && !refcount_inc_not_zero(&vm->ref))
		vm = NULL;
	rcu_read_unlock();
	if (vm) {
		fill_status(vm, &st);
		km__vm_put(vm);
		if (copy_to_user(uarg, &st, sizeof(st)))
			ret = -EFAULT;
	} else {
		ret = -ENOENT;
	}
	fdput(f);
	return ret;
}
