// SPDX-License-Identifier: GPL-2.0
/*
 * kemarid's VMs: one state machine each, fed from corosync, IPC, the
 * fence-peer handler and the backend; the actions it returns are carried
 * out here, and only here.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kemarid_int.h"

/*
 * ---- persistence: what survives a restart of kemarid ----
 *
 * One small key=value file per VM, state_dir/VM.state:
 *
 *     generation=3
 *     role=Primary
 *     replica=UpToDate
 *     protected=yes
 *
 * written to VM.state.tmp, fsync'ed, renamed over VM.state and the
 * directory fsync'ed: a crash at any point leaves the old file or the new
 * one, never a mix, and a rename that was reported done survives a power
 * cut. It is rewritten whenever one of these values changes, before the
 * action that follows the change runs (a promotion's generation is on disk
 * before the backend is asked to promote).
 */

static void state_path(const struct kd_vm *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.state", vm->kd->cfg->state_dir,
		 vm->cfg->name);
}

static int parse_enum(const char *v, const char *(*name)(int), int lo, int hi)
{
	int i;

	for (i = lo; i <= hi; i++)
		if (!strcmp(v, name(i)))
			return i;
	return -1;
}

static const char *role_name(int r)
{
	return km_role_name((enum km_role)r);
}

static const char *replica_name(int r)
{
	return km_replica_name((enum km_replica)r);
}

/* One "key=value" line into @s; -EINVAL if it makes no sense. */
static int parse_state_line(char *line, struct km_vmsm_saved *s)
{
	char *v = strchr(line, '='), *end;
	int i;

	if (!v)
		return -EINVAL;
	*v++ = '\0';
	v[strcspn(v, "\n")] = '\0';
	if (!strcmp(line, "generation")) {
		errno = 0;
		s->generation = strtoull(v, &end, 10);
		return errno || end == v || *end ? -EINVAL : 0;
	}
	if (!strcmp(line, "role")) {
		i = parse_enum(v, role_name, KM_ROLE_SECONDARY,
			       KM_ROLE_PRIMARY);
		s->role = (enum km_role)i;
		return i < 0 ? -EINVAL : 0;
	}
	if (!strcmp(line, "replica")) {
		i = parse_enum(v, replica_name, KM_REPLICA_INCONSISTENT,
			       KM_REPLICA_UPTODATE);
		s->replica = (enum km_replica)i;
		return i < 0 ? -EINVAL : 0;
	}
	if (!strcmp(line, "protected")) {
		s->protected = !strcmp(v, "yes");
		return s->protected || !strcmp(v, "no") ? 0 : -EINVAL;
	}
	return 0; /* a key from a newer kemarid: ignored */
}

/*
 * A missing file is a VM never run here: generation 0, Inconsistent. An
 * unreadable one must not restart the generation at 0 with a replica that
 * could be promoted: the VM comes up Outdated, so that only a resync from
 * the peer (which brings the peer's generation) makes it UpToDate.
 */
static void load_state(struct kd_vm *vm, struct km_vmsm_saved *s)
{
	char path[PATH_MAX + 80], line[128];
	bool generation = false;
	int r = 0;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->role = KM_ROLE_SECONDARY;
	s->replica = KM_REPLICA_INCONSISTENT;
	state_path(vm, path, sizeof(path));
	f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return;
		r = -errno;
		goto err;
	}
	while (!r && fgets(line, sizeof(line), f)) {
		generation |= !strncmp(line, "generation=", 11);
		r = parse_state_line(line, s);
	}
	fclose(f);
	if (!r && generation)
		return;
	r = r ?: -EINVAL;
err:
	qb_log(LOG_ERR,
	       "%s: state file %s is unreadable (%s): starting Outdated at generation 0",
	       vm->cfg->name, path, strerror(-r));
	memset(s, 0, sizeof(*s));
	s->role = KM_ROLE_SECONDARY;
	s->replica = KM_REPLICA_OUTDATED;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		r = -errno;
	close(fd);
	return r;
}

static int write_state(const char *dir, const char *path,
		       const struct km_vmsm_saved *s)
{
	char tmp[PATH_MAX + 90], buf[256];
	int fd, r, n;

	n = snprintf(buf, sizeof(buf),
		     "generation=%" PRIu64
		     "\nrole=%s\nreplica=%s\nprotected=%s\n",
		     s->generation, km_role_name(s->role),
		     km_replica_name(s->replica), s->protected ? "yes" : "no");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	r = write_all(fd, buf, (size_t)n);
	if (!r && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(tmp, path))
		r = -errno;
	if (r) {
		unlink(tmp);
		return r;
	}
	return fsync_dir(dir);
}

/*
 * Save when what must survive changed. A failure is logged loudly but does
 * not stop the action: refusing to promote because a disk is full would
 * turn a failover into an outage, and the peer holds the generation too.
 */
static void persist(struct kd_vm *vm)
{
	char path[PATH_MAX + 80];
	struct km_vmsm_saved now;
	int r;

	km_vmsm_save(&vm->sm, &now);
	if (vm->saved_valid && !memcmp(&now, &vm->saved, sizeof(now)))
		return;
	state_path(vm, path, sizeof(path));
	r = write_state(vm->kd->cfg->state_dir, path, &now);
	if (r) {
		qb_log(LOG_CRIT, "%s: cannot save state to %s: %s",
		       vm->cfg->name, path, strerror(-r));
		return;
	}
	vm->saved = now;
	vm->saved_valid = true;
}

/* ---- carrying out actions ---- */

static void send_state(struct kd_vm *vm, enum km_msg_type type)
{
	const struct km_vmsm *sm = &vm->sm;
	struct km_msg m = {
		.type = type,
		.generation = sm->generation,
		.role = sm->role,
		.replica = sm->replica,
		.conn = sm->conn,
		.repl = sm->repl,
		.protected = sm->protected,
		.suspended = sm->suspended,
	};

	snprintf(m.from, sizeof(m.from), "%s", vm->kd->node);
	snprintf(m.vm, sizeof(m.vm), "%s", vm->cfg->name);
	if (type != KM_WIRE_STATE)
		snprintf(m.to, sizeof(m.to), "%s", vm->peer);
	kd_cs_send(vm->kd, &m);
}

static enum km_msg_type wire_type(enum km_peer_msg m)
{
	switch (m) {
	case KM_MSG_PROTECT:
		return KM_WIRE_PROTECT;
	case KM_MSG_UNPROTECT:
		return KM_WIRE_UNPROTECT;
	case KM_MSG_HANDOVER:
		return KM_WIRE_HANDOVER;
	default:
		return KM_WIRE_FAULT;
	}
}

static void fence_done(void *arg, int code)
{
	struct kd_vm *vm = arg;
	struct km_vmsm_event ev = { .type = KM_EV_FENCE_RESULT, .code = code };

	vm->fence_child = NULL;
	qb_log(code == KM_FENCE_RC_PEER_FENCED ? LOG_NOTICE : LOG_WARNING,
	       "%s: fence-peer handler for %s exited %d (%s)", vm->cfg->name,
	       vm->peer, code, km_fence_rc_meaning(code));
	kd_vm_event(vm, &ev);
}

static void fence_start(void *data)
{
	struct kd_vm *vm = data;
	struct kd *kd = vm->kd;
	char e_vm[96], e_peer[96], e_id[64], e_node[96], e_role[64], e_gen[64];
	char *env[] = { e_vm, e_peer, e_id, e_node, e_role, e_gen, NULL };
	char *argv[] = { kd->cfg->fence_handler, (char *)vm->cfg->name,
			 vm->peer, NULL };
	int r;

	vm->fence_timer_armed = false;
	snprintf(e_vm, sizeof(e_vm), "KEMARI_VM=%s", vm->cfg->name);
	snprintf(e_peer, sizeof(e_peer), "KEMARI_PEER=%s", vm->peer);
	snprintf(e_id, sizeof(e_id), "KEMARI_PEER_NODEID=%u",
		 kd_cs_nodeid(kd, vm->peer));
	snprintf(e_node, sizeof(e_node), "KEMARI_NODE=%s", kd->node);
	snprintf(e_role, sizeof(e_role), "KEMARI_ROLE=%s",
		 km_role_name(vm->sm.role));
	snprintf(e_gen, sizeof(e_gen), "KEMARI_GENERATION=%" PRIu64,
		 vm->sm.generation);
	qb_log(LOG_NOTICE, "%s: fencing %s: %s %s %s", vm->cfg->name, vm->peer,
	       argv[0], argv[1], argv[2]);
	r = kd_child_spawn(kd->loop, argv, env, kd->cfg->fence_timeout_ms,
			   fence_done, vm, &vm->fence_child);
	if (r) {
		qb_log(LOG_ERR, "%s: cannot run the fence-peer handler: %s",
		       vm->cfg->name, strerror(-r));
		fence_done(vm, -1);
	}
}

static void fence(struct kd_vm *vm, uint32_t delay_ms)
{
	if (vm->fence_child || vm->fence_timer_armed)
		return;
	if (!delay_ms) {
		fence_start(vm);
		return;
	}
	qb_log(LOG_NOTICE, "%s: fencing %s in %u ms (fence delay)",
	       vm->cfg->name, vm->peer, delay_ms);
	vm->fence_timer_armed =
		!qb_loop_timer_add(vm->kd->loop, QB_LOOP_HIGH,
				   (uint64_t)delay_ms * QB_TIME_NS_IN_MSEC, vm,
				   fence_start, &vm->fence_timer);
	if (!vm->fence_timer_armed)
		fence_start(vm);
}

static void fence_cancel(struct kd_vm *vm)
{
	if (!vm->fence_timer_armed)
		return;
	qb_loop_timer_del(vm->kd->loop, vm->fence_timer);
	vm->fence_timer_armed = false;
	qb_log(LOG_NOTICE, "%s: fencing of %s cancelled", vm->cfg->name,
	       vm->peer);
}

static void run_backend(struct kd_vm *vm, enum km_backend_action a)
{
	int r;

	qb_log(LOG_NOTICE, "%s: backend %s: %s", vm->cfg->name,
	       vm->kd->backend->name, km_backend_action_name(a));
	r = vm->kd->backend->run(vm, a);
	if (r) {
		qb_log(LOG_ERR, "%s: backend %s failed to start: %s",
		       vm->cfg->name, km_backend_action_name(a), strerror(-r));
		kd_vm_backend_done(vm, a, -1);
	}
}

static void carry_out(struct kd_vm *vm, const struct km_vmsm_actions *a)
{
	persist(vm); /* a no-op unless something that must survive changed */
	if (a->flags & KM_ACT_FENCE_CANCEL)
		fence_cancel(vm);
	if (a->flags & KM_ACT_SEND)
		send_state(vm, wire_type(a->msg));
	if (a->flags & KM_ACT_BROADCAST)
		send_state(vm, KM_WIRE_STATE);
	if (a->flags & KM_ACT_BLACKBOX)
		kd_log_blackbox(vm->kd, vm->cfg->name);
	if (a->flags & KM_ACT_FENCE)
		fence(vm, a->fence_delay_ms);
	if (a->flags & KM_ACT_BACKEND)
		run_backend(vm, a->backend);
}

/*
 * A restored Primary learns that its peer is absent only from a quorate
 * membership that has lacked the peer's kemarid for ABSENT_SETTLE_MS:
 * corosync reports quorum and the CPG group in separate callbacks, and a
 * node that has just booted sees itself alone before totem merges.
 */
#define ABSENT_SETTLE_MS 1500

static void absent_check(struct kd_vm *vm);

static void absent_fire(void *data)
{
	struct kd_vm *vm = data;
	struct km_vmsm_event ev = { .type = KM_EV_PEER_ABSENT };

	vm->absent_timer_armed = false;
	if (!vm->sm.resuming || vm->sm.peer_present || !vm->kd->quorate)
		return;
	qb_log(LOG_NOTICE, "%s: peer %s is not in the group", vm->cfg->name,
	       vm->peer);
	kd_vm_event(vm, &ev); /* re-arms while the probe still runs */
}

static void absent_check(struct kd_vm *vm)
{
	bool want = vm->sm.resuming && !vm->sm.peer_present &&
		    vm->sm.fence == KM_FENCE_NONE && vm->kd->quorate;

	if (want && !vm->absent_timer_armed)
		vm->absent_timer_armed = !qb_loop_timer_add(
			vm->kd->loop, QB_LOOP_MED,
			(uint64_t)ABSENT_SETTLE_MS * QB_TIME_NS_IN_MSEC, vm,
			absent_fire, &vm->absent_timer);
	else if (!want && vm->absent_timer_armed) {
		qb_loop_timer_del(vm->kd->loop, vm->absent_timer);
		vm->absent_timer_armed = false;
	}
}

int kd_vm_event(struct kd_vm *vm, const struct km_vmsm_event *ev)
{
	char reason[KM_VMSM_REASON_MAX];
	struct km_vmsm_actions a;
	enum km_role role = vm->sm.role;
	int r;

	snprintf(reason, sizeof(reason), "%s", vm->sm.reason);
	r = km_vmsm_handle(&vm->sm, ev, &a);
	if (r)
		qb_log(LOG_NOTICE, "%s: %s refused: %s", vm->cfg->name,
		       km_vmsm_event_name(ev->type), vm->sm.reason);
	else
		qb_log(LOG_DEBUG, "%s: %s -> actions 0x%x", vm->cfg->name,
		       km_vmsm_event_name(ev->type), a.flags);
	/* The reason is the decision in words: the journal keeps them all. */
	if (!r && vm->sm.reason[0] && strcmp(reason, vm->sm.reason))
		qb_log(LOG_NOTICE, "%s: %s", vm->cfg->name, vm->sm.reason);
	if (role != vm->sm.role)
		qb_log(LOG_NOTICE, "%s: role %s -> %s (generation %" PRIu64 ")",
		       vm->cfg->name, km_role_name(role),
		       km_role_name(vm->sm.role), vm->sm.generation);
	carry_out(vm, &a);
	absent_check(vm);
	kd_ipc_publish_vm(vm->kd, vm);
	return r;
}

void kd_vm_backend_done(struct kd_vm *vm, enum km_backend_action a, int status)
{
	struct km_vmsm_event ev = { .type = KM_EV_BACKEND_DONE,
				    .action = a,
				    .code = status };

	qb_log(status ? LOG_ERR : LOG_INFO, "%s: backend %s finished: %d",
	       vm->cfg->name, km_backend_action_name(a), status);
	kd_vm_event(vm, &ev);
}

/* ---- inputs ---- */

static int admin_event(enum km_ipc_cmd cmd)
{
	static const enum km_vmsm_event_type map[KM_CMD__COUNT] = {
		[KM_CMD_PROTECT] = KM_EV_ADMIN_PROTECT,
		[KM_CMD_UNPROTECT] = KM_EV_ADMIN_UNPROTECT,
		[KM_CMD_SWITCHOVER] = KM_EV_ADMIN_SWITCHOVER,
		[KM_CMD_REPROTECT] = KM_EV_ADMIN_REPROTECT,
		[KM_CMD_DRILL] = KM_EV_LOCAL_FAULT,
	};

	return (unsigned int)cmd < KM_CMD__COUNT ? (int)map[cmd] : -1;
}

static int drill_allowed(struct kd_vm *vm, char *msg, size_t len)
{
	const struct km_vmsm *sm = &vm->sm;

	if (sm->role == KM_ROLE_PRIMARY && sm->conn == KM_CONN_CONNECTED &&
	    sm->repl == KM_REPL_LOCKSTEP)
		return 0;
	snprintf(
		msg, len,
		"a drill needs the VM Primary here, Connected and in Lockstep (it is %s, %s, %s)",
		km_role_name(sm->role), km_conn_name(sm->conn),
		km_repl_name(sm->repl));
	return -EPERM;
}

int kd_vm_admin(struct kd_vm *vm, enum km_ipc_cmd cmd, const char *peer,
		char *msg, size_t len)
{
	struct km_vmsm_event ev = { 0 };
	int type = admin_event(cmd), r;
	char saved[KM_VMSM_REASON_MAX];

	if (type < 0) {
		snprintf(msg, len, "unknown command %u", (unsigned int)cmd);
		return -EINVAL;
	}
	if (cmd == KM_CMD_PROTECT && peer[0] && strcmp(peer, vm->peer)) {
		snprintf(msg, len,
			 "%s is configured with peer %s, not %s (see %s)",
			 vm->cfg->name, vm->peer, peer, vm->cfg->file);
		return -EINVAL;
	}
	if (cmd == KM_CMD_DRILL) {
		r = drill_allowed(vm, msg, len);
		if (r)
			return r;
		qb_log(LOG_NOTICE, "%s: failover drill requested",
		       vm->cfg->name);
	}
	/* A refused command is answered to the operator who gave it; the
	 * status keeps saying why the VM is in the state it is in. */
	snprintf(saved, sizeof(saved), "%s", vm->sm.reason);
	ev.type = (enum km_vmsm_event_type)type;
	r = kd_vm_event(vm, &ev);
	snprintf(msg, len, "%s", r ? vm->sm.reason : "ok");
	if (r) {
		snprintf(vm->sm.reason, sizeof(vm->sm.reason), "%s", saved);
		kd_ipc_publish_vm(vm->kd, vm);
	}
	return r;
}

static void learn_nodeid(struct kd *kd, const char *name, uint32_t nodeid)
{
	if (kd_cs_nodeid(kd, name) || kd->n_nodes >= KD_MAX_NODES)
		return;
	kd->nodes[kd->n_nodes].nodeid = nodeid;
	snprintf(kd->nodes[kd->n_nodes].name, KM_NAME_MAX, "%s", name);
	kd->n_nodes++;
	qb_log(LOG_INFO, "node %s has id %u (learnt from its messages)", name,
	       nodeid);
}

static enum km_vmsm_event_type msg_event(enum km_msg_type t)
{
	switch (t) {
	case KM_WIRE_PROTECT:
		return KM_EV_PEER_PROTECT;
	case KM_WIRE_UNPROTECT:
		return KM_EV_PEER_UNPROTECT;
	case KM_WIRE_HANDOVER:
		return KM_EV_PEER_HANDOVER;
	case KM_WIRE_FAULT:
		return KM_EV_PEER_FAULT;
	default:
		return KM_EV_PEER_STATE;
	}
}

void kd_vms_message(struct kd *kd, uint32_t nodeid, const struct km_msg *m)
{
	struct kd_vm *vm = kd_vm_find(kd, m->vm);
	struct km_vmsm_event ev = { 0 };

	if (!vm || strcmp(m->from, vm->peer))
		return; /* not ours, or from a node not in its `on` */
	if (m->to[0] && strcmp(m->to, kd->node))
		return;
	learn_nodeid(kd, m->from, nodeid);
	ev.type = msg_event(m->type);
	ev.generation = m->generation;
	ev.role = m->role;
	ev.replica = m->replica;
	ev.repl = m->repl;
	kd_vm_event(vm, &ev);
}

void kd_vms_membership(struct kd *kd)
{
	struct km_vmsm_event ev = { 0 };
	size_t i;

	for (i = 0; i < kd->n_vms; i++) {
		struct kd_vm *vm = &kd->vms[i];
		uint32_t id = kd_cs_nodeid(kd, vm->peer);
		bool present = id && kd_cs_in_group(kd, id);

		if (present == vm->sm.peer_present)
			continue;
		ev.type = present ? KM_EV_PEER_JOIN : KM_EV_PEER_LEAVE;
		qb_log(LOG_NOTICE, "%s: peer %s %s the group", vm->cfg->name,
		       vm->peer, present ? "joined" : "left");
		kd_vm_event(vm, &ev);
	}
	for (i = 0; i < kd->n_vms; i++)
		absent_check(&kd->vms[i]);
}

static void all(struct kd *kd, enum km_vmsm_event_type t)
{
	struct km_vmsm_event ev = { .type = t };
	size_t i;

	for (i = 0; i < kd->n_vms; i++)
		kd_vm_event(&kd->vms[i], &ev);
}

void kd_vms_quorum(struct kd *kd, bool quorate)
{
	all(kd, quorate ? KM_EV_QUORATE : KM_EV_INQUORATE);
}

void kd_vms_membership_lost(struct kd *kd)
{
	all(kd, KM_EV_MEMBERSHIP_LOST);
}

void kd_vms_broadcast_all(struct kd *kd)
{
	size_t i;

	for (i = 0; i < kd->n_vms; i++)
		send_state(&kd->vms[i], KM_WIRE_STATE);
}

/* ---- life cycle ---- */

struct kd_vm *kd_vm_find(struct kd *kd, const char *name)
{
	size_t i;

	for (i = 0; i < kd->n_vms; i++)
		if (!strcmp(kd->vms[i].cfg->name, name))
			return &kd->vms[i];
	return NULL;
}

void kd_vm_snapshot(const struct kd_vm *vm, struct km_ipc_vm *o)
{
	const struct km_vmsm *sm = &vm->sm;

	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", vm->cfg->name);
	snprintf(o->peer, sizeof(o->peer), "%s", vm->peer);
	o->generation = sm->generation;
	o->role = sm->role;
	o->replica = sm->replica;
	o->conn = sm->conn;
	o->repl = sm->repl;
	o->peer_role = sm->peer_role;
	o->peer_replica = sm->peer_replica;
	o->peer_repl = sm->peer_repl;
	o->fence = sm->fence;
	o->protected = sm->protected;
	o->suspended = sm->suspended;
	o->pending = sm->pending;
	o->peer_present = sm->peer_present;
	o->fence_rc = sm->fence_rc;
	snprintf(o->reason, sizeof(o->reason), "%s", sm->reason);
}

void kd_vm_policy(const struct km_config *cfg, struct km_vmsm_policy *p)
{
	p->fencing = cfg->fence_handler[0] != '\0';
	p->fence_delay_ms = cfg->fence_delay_ms;
	p->fence_retries = cfg->fence_retries;
	p->fence_retry_ms = cfg->fence_retry_ms;
}

/* Restore what was saved; a former Primary's probe starts here. */
static void vm_start(struct kd_vm *vm)
{
	struct km_vmsm_policy policy;
	struct km_vmsm_actions a;
	struct km_vmsm_saved s;

	kd_vm_policy(vm->kd->cfg, &policy);
	load_state(vm, &s);
	km_vmsm_init(&vm->sm, vm->cfg->name, s.generation, s.replica, &policy);
	km_vmsm_restore(&vm->sm, &s, &a);
	vm->saved = s;
	vm->saved_valid = true;
	qb_log(LOG_NOTICE,
	       "%s: peer %s, saved generation %" PRIu64
	       ", role %s, replica %s%s",
	       vm->cfg->name, vm->peer, s.generation, km_role_name(s.role),
	       km_replica_name(s.replica),
	       vm->sm.resuming ? ": probing whether the VM still runs here" :
				 "");
	carry_out(vm, &a);
}

int kd_vms_init(struct kd *kd)
{
	const struct km_config *cfg = kd->cfg;
	size_t i;

	if (kd->vms)
		return 0;
	kd->vms = calloc(cfg->n_vms ? cfg->n_vms : 1, sizeof(*kd->vms));
	if (!kd->vms)
		return -ENOMEM;
	for (i = 0; i < cfg->n_vms; i++) {
		const struct km_vm_node *peer =
			km_vm_config_peer(&cfg->vms[i], kd->node);
		struct kd_vm *vm = &kd->vms[kd->n_vms];

		if (!peer) {
			qb_log(LOG_INFO,
			       "%s: not configured on node %s, ignored",
			       cfg->vms[i].name, kd->node);
			continue;
		}
		vm->kd = kd;
		vm->cfg = &cfg->vms[i];
		snprintf(vm->peer, sizeof(vm->peer), "%s", peer->name);
		kd->n_vms++;
		vm_start(vm);
	}
	return 0;
}

void kd_vms_exit(struct kd *kd)
{
	size_t i;

	for (i = 0; i < kd->n_vms; i++) {
		struct kd_vm *vm = &kd->vms[i];

		fence_cancel(vm);
		if (vm->absent_timer_armed)
			qb_loop_timer_del(kd->loop, vm->absent_timer);
		vm->absent_timer_armed = false;
		kd_child_abandon(vm->fence_child);
		vm->fence_child = NULL;
		kd->backend->cancel(vm);
	}
	free(kd->vms);
	kd->vms = NULL;
	kd->n_vms = 0;
}
