// SPDX-License-Identifier: GPL-2.0
/*
 * Control IPC for kemarictl: a libqb IPC service on kemarid's qb_loop.
 * Only root and members of the configured group (haclient, as pacemaker)
 * get past the accept callback. Requests are dispatched through a table
 * indexed by message id; subscribers get every state change as an event.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kemari_gate.h"
#include "kemarid_int.h"

static qb_loop_t *ipc_loop; /* libqb's poll hooks carry no context */
static struct km_ipc_node published_node;

static int32_t job_add(enum qb_loop_priority p, void *data,
		       qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(ipc_loop, p, data, fn);
}

static int32_t dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t ev,
			    void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(ipc_loop, p, fd, ev, data, fn);
}

static int32_t dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t ev,
			    void *data, qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(ipc_loop, p, fd, ev, data, fn);
}

static int32_t dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(ipc_loop, fd);
}

static struct qb_ipcs_poll_handlers poll_handlers = {
	.job_add = job_add,
	.dispatch_add = dispatch_add,
	.dispatch_mod = dispatch_mod,
	.dispatch_del = dispatch_del,
};

static struct kd *kd_of(qb_ipcs_connection_t *c)
{
	return qb_ipcs_connection_service_context_get(c);
}

/* Supplementary groups count too: a user added to haclient is enough. */
static bool user_in_group(uid_t uid, gid_t want)
{
	struct passwd pw, *res = NULL;
	gid_t groups[64];
	int i, n = 64;
	char buf[4096];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) || !res)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

static int32_t ipc_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	struct kd *kd = kd_of(c);

	if (uid == 0)
		return 0;
	if (kd->ipc_gid_valid &&
	    (gid == kd->ipc_gid || user_in_group(uid, kd->ipc_gid)))
		return 0;
	qb_log(LOG_WARNING,
	       "IPC: refused uid %u gid %u: only root and group %s may use kemarid",
	       (unsigned int)uid, (unsigned int)gid, kd->cfg->ipc_group);
	return -EACCES;
}

static void ipc_created(qb_ipcs_connection_t *c)
{
	(void)c;
}

static void subscriber_remove(struct kd *kd, qb_ipcs_connection_t *c)
{
	size_t i;

	for (i = 0; i < kd->n_subscribers; i++) {
		if (kd->subscribers[i] != c)
			continue;
		kd->subscribers[i] = kd->subscribers[--kd->n_subscribers];
		qb_ipcs_connection_unref(c);
		return;
	}
}

static int32_t ipc_closed(qb_ipcs_connection_t *c)
{
	subscriber_remove(kd_of(c), c);
	return 0;
}

static void ipc_destroyed(qb_ipcs_connection_t *c)
{
	(void)c;
}

static void reply(qb_ipcs_connection_t *c, int32_t error, const char *msg)
{
	struct km_ipc_reply r = { 0 };

	r.hdr.id = KM_IPC_COMMAND;
	r.hdr.size = sizeof(r);
	r.hdr.error = error;
	snprintf(r.msg, sizeof(r.msg), "%s", msg);
	qb_ipcs_response_send(c, &r, sizeof(r));
}

void kd_node_snapshot(const struct kd *kd, struct km_ipc_node *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", kd->node);
	o->connected = kd->connected;
	o->quorate = kd->quorate;
	o->members = kd->members;
	o->group_members = kd->n_group;
}

/*
 * Whether kemari.ko is loaded, asked afresh for every status request (an
 * open and a version ioctl): an operator who loads or unloads the module
 * sees it at once, and kemarid holds nothing that would pin the module.
 */
static void kernel_gate_snapshot(struct km_ipc_node *o)
{
	static const char prefix[] = "kernel gate: ";
	struct km_gate *gate = NULL;
	char line[sizeof(o->kernel_gate) + sizeof(prefix)];
	const char *d;
	int err;

	err = km_gate_open(NULL, &gate);
	d = km_gate_describe(gate, err, line, sizeof(line));
	if (!strncmp(d, prefix, sizeof(prefix) - 1))
		d += sizeof(prefix) - 1;
	snprintf(o->kernel_gate, sizeof(o->kernel_gate), "%s", d);
	km_gate_close(gate);
}

static void handle_status(qb_ipcs_connection_t *c,
			  const struct km_ipc_request *req)
{
	struct kd *kd = kd_of(c);
	struct km_ipc_status *st;
	size_t i, size = sizeof(*st) + kd->n_vms * sizeof(st->vms[0]);

	st = calloc(1, size);
	if (!st) {
		reply(c, -ENOMEM, "out of memory");
		return;
	}
	kd_node_snapshot(kd, &st->node);
	kernel_gate_snapshot(&st->node);
	for (i = 0; i < kd->n_vms; i++) {
		if (req->vm[0] && strcmp(req->vm, kd->vms[i].cfg->name))
			continue;
		kd_vm_snapshot(&kd->vms[i], &st->vms[st->n_vms++]);
	}
	size = sizeof(*st) + st->n_vms * sizeof(st->vms[0]);
	st->hdr.id = KM_IPC_STATUS;
	st->hdr.size = (int32_t)size;
	st->hdr.error = req->vm[0] && !st->n_vms ? -ENOENT : 0;
	qb_ipcs_response_send(c, st, size);
	free(st);
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void send_event(qb_ipcs_connection_t *c, struct km_ipc_event *ev)
{
	ssize_t r;

	ev->hdr.id = KM_IPC_EVENT;
	ev->hdr.size = sizeof(*ev);
	ev->usec = now_usec();
	r = qb_ipcs_event_send(c, ev, sizeof(*ev));
	if (r < 0)
		qb_log(LOG_WARNING, "IPC: event to a subscriber lost: %s",
		       strerror((int)-r));
}

static void dump_state(struct kd *kd, qb_ipcs_connection_t *c)
{
	struct km_ipc_event ev = { .kind = KM_EVENT_EXISTS,
				   .object = KM_OBJ_NODE };
	size_t i;

	kd_node_snapshot(kd, &ev.node);
	send_event(c, &ev);
	ev.object = KM_OBJ_VM;
	for (i = 0; i < kd->n_vms; i++) {
		kd_vm_snapshot(&kd->vms[i], &ev.vm);
		send_event(c, &ev);
	}
	memset(&ev.vm, 0, sizeof(ev.vm));
	ev.kind = KM_EVENT_END_OF_DUMP;
	send_event(c, &ev);
}

static void handle_subscribe(qb_ipcs_connection_t *c,
			     const struct km_ipc_request *req)
{
	struct kd *kd = kd_of(c);

	(void)req;
	if (kd->n_subscribers >=
	    sizeof(kd->subscribers) / sizeof(kd->subscribers[0])) {
		reply(c, -EMFILE, "too many event subscribers");
		return;
	}
	qb_ipcs_connection_ref(c);
	kd->subscribers[kd->n_subscribers++] = c;
	reply(c, 0, "subscribed");
	dump_state(kd, c);
}

static void handle_command(qb_ipcs_connection_t *c,
			   const struct km_ipc_request *req)
{
	struct kd *kd = kd_of(c);
	struct kd_vm *vm = kd_vm_find(kd, req->vm);
	char msg[256];
	int r;

	if (!vm) {
		snprintf(msg, sizeof(msg),
			 "no VM '%s' is configured on node %s", req->vm,
			 kd->node);
		reply(c, -ENOENT, msg);
		return;
	}
	r = kd_vm_admin(vm, (enum km_ipc_cmd)req->cmd, req->peer, msg,
			sizeof(msg));
	reply(c, r, msg);
}

static void handle_reload(qb_ipcs_connection_t *c,
			  const struct km_ipc_request *req)
{
	char msg[256];
	int r;

	(void)req;
	r = kd_config_reload(kd_of(c), msg, sizeof(msg));
	reply(c, r, msg);
}

typedef void (*ipc_handler_fn)(qb_ipcs_connection_t *c,
			       const struct km_ipc_request *req);

static const ipc_handler_fn ipc_handlers[] = {
	[KM_IPC_STATUS - KM_IPC_STATUS] = handle_status,
	[KM_IPC_SUBSCRIBE - KM_IPC_STATUS] = handle_subscribe,
	[KM_IPC_COMMAND - KM_IPC_STATUS] = handle_command,
	[KM_IPC_RELOAD - KM_IPC_STATUS] = handle_reload,
};

static bool request_valid(const struct km_ipc_request *req, size_t size)
{
	return size == sizeof(*req) && req->hdr.size == (int32_t)size &&
	       strnlen(req->vm, sizeof(req->vm)) < sizeof(req->vm) &&
	       strnlen(req->peer, sizeof(req->peer)) < sizeof(req->peer);
}

static int32_t ipc_process(qb_ipcs_connection_t *c, void *data, size_t size)
{
	const struct km_ipc_request *req = data;
	uint32_t idx;

	if (!request_valid(req, size)) {
		reply(c, -EPROTO,
		      "malformed request (kemarictl from another version?)");
		return 0;
	}
	idx = (uint32_t)req->hdr.id - KM_IPC_STATUS;
	if (idx >= sizeof(ipc_handlers) / sizeof(ipc_handlers[0]) ||
	    !ipc_handlers[idx]) {
		reply(c, -EINVAL, "unknown request");
		return 0;
	}
	ipc_handlers[idx](c, req);
	return 0;
}

static struct qb_ipcs_service_handlers service_handlers = {
	.connection_accept = ipc_accept,
	.connection_created = ipc_created,
	.msg_process = ipc_process,
	.connection_closed = ipc_closed,
	.connection_destroyed = ipc_destroyed,
};

static void broadcast(struct kd *kd, struct km_ipc_event *ev)
{
	size_t i;

	for (i = 0; i < kd->n_subscribers; i++)
		send_event(kd->subscribers[i], ev);
}

void kd_ipc_publish_vm(struct kd *kd, struct kd_vm *vm)
{
	struct km_ipc_event ev = { .kind = KM_EVENT_CHANGE,
				   .object = KM_OBJ_VM };

	kd_vm_snapshot(vm, &ev.vm);
	if (!memcmp(&ev.vm, &vm->published, sizeof(ev.vm)))
		return;
	vm->published = ev.vm;
	kd_node_snapshot(kd, &ev.node);
	broadcast(kd, &ev);
}

void kd_ipc_publish_node(struct kd *kd)
{
	struct km_ipc_event ev = { .kind = KM_EVENT_CHANGE,
				   .object = KM_OBJ_NODE };

	kd_node_snapshot(kd, &ev.node);
	if (!memcmp(&ev.node, &published_node, sizeof(ev.node)))
		return;
	published_node = ev.node;
	broadcast(kd, &ev);
}

void kd_ipc_set_group(struct kd *kd)
{
	struct group *g = getgrnam(kd->cfg->ipc_group);

	kd->ipc_gid_valid = g != NULL;
	if (g)
		kd->ipc_gid = g->gr_gid;
	else
		qb_log(LOG_WARNING,
		       "group %s does not exist: only root may use kemarictl",
		       kd->cfg->ipc_group);
}

/* As `drbdsetup events2` on `drbdadm down`: VMs first, then the node. */
void kd_ipc_publish_destroy(struct kd *kd)
{
	struct km_ipc_event ev = { .kind = KM_EVENT_DESTROY,
				   .object = KM_OBJ_VM };
	size_t i;

	kd_node_snapshot(kd, &ev.node);
	for (i = 0; i < kd->n_vms; i++) {
		kd_vm_snapshot(&kd->vms[i], &ev.vm);
		broadcast(kd, &ev);
	}
	memset(&ev.vm, 0, sizeof(ev.vm));
	ev.object = KM_OBJ_NODE;
	broadcast(kd, &ev);
}

int kd_ipc_init(struct kd *kd)
{
	int r;

	kd_ipc_set_group(kd);
	ipc_loop = kd->loop;
	kd->ipcs =
		qb_ipcs_create(kd->ipc_name, 0, QB_IPC_SHM, &service_handlers);
	if (!kd->ipcs)
		return -errno;
	qb_ipcs_service_context_set(kd->ipcs, kd);
	qb_ipcs_poll_handlers_set(kd->ipcs, &poll_handlers);
	r = qb_ipcs_run(kd->ipcs);
	if (r) {
		qb_ipcs_destroy(kd->ipcs);
		kd->ipcs = NULL;
		return r;
	}
	return 0;
}

void kd_ipc_exit(struct kd *kd)
{
	while (kd->n_subscribers)
		subscriber_remove(kd, kd->subscribers[0]);
	if (kd->ipcs)
		qb_ipcs_destroy(kd->ipcs);
	kd->ipcs = NULL;
}
