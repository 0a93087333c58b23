// SPDX-License-Identifier: GPL-2.0
/*
 * kemarid's corosync side: cmap (node list, quorum settings), quorum
 * tracking and the CPG group, all dispatched from the one qb_loop.
 *
 * Corosync going away (CS_ERR_LIBRARY from a dispatch, corosync restarted
 * under us) is a loss of membership, never a reason to exit: every handle
 * is closed, the VMs are told, and a timer reconnects: after 100 ms, then
 * doubling up to once a second (corosync started together with kemarid is
 * usually there within the first few tries).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kemarid_int.h"

#define RECONNECT_MS 1000
#define RECONNECT_FIRST_MS 100
#define RETRY_ATTEMPTS 8

/*
 * The one place CS_ERR_TRY_AGAIN is retried: 10, 20, 40 ... 200 ms, at
 * most RETRY_ATTEMPTS times (about 1.1 s in all), then the caller sees
 * TRY_AGAIN. Corosync answers TRY_AGAIN while it syncs a new membership.
 */
static bool cs_backoff(unsigned int *attempt)
{
	unsigned int ms;

	if (*attempt >= RETRY_ATTEMPTS)
		return false;
	ms = 10u << *attempt;
	usleep((ms > 200 ? 200 : ms) * 1000);
	(*attempt)++;
	return true;
}

#define CS_RETRY(res, call)                                                    \
	do {                                                                   \
		unsigned int attempt__ = 0;                                    \
		do {                                                           \
			(res) = (call);                                        \
		} while ((res) == CS_ERR_TRY_AGAIN && cs_backoff(&attempt__)); \
	} while (0)

static int cs_errno(cs_error_t e)
{
	switch (e) {
	case CS_OK:
		return 0;
	case CS_ERR_TRY_AGAIN:
		return -EAGAIN;
	case CS_ERR_LIBRARY:
	case CS_ERR_BAD_HANDLE:
		return -ENOTCONN;
	case CS_ERR_NO_MEMORY:
		return -ENOMEM;
	case CS_ERR_ACCESS:
		return -EACCES;
	default:
		return -EIO;
	}
}

static bool connection_gone(cs_error_t e)
{
	return e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE;
}

/* ---- cmap: the node list ---- */

static void read_nodelist(struct kd *kd)
{
	char key[128], *name;
	uint32_t i, id;
	cs_error_t e;

	kd->n_nodes = 0;

	for (i = 0; i < KD_MAX_NODES; i++) {
		snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", i);
		CS_RETRY(e, cmap_get_uint32(kd->cmap, key, &id));
		if (e != CS_OK)
			break;
		snprintf(key, sizeof(key), "nodelist.node.%u.name", i);
		CS_RETRY(e, cmap_get_string(kd->cmap, key, &name));
		if (e != CS_OK) {
			snprintf(key, sizeof(key),
				 "nodelist.node.%u.ring0_addr", i);
			CS_RETRY(e, cmap_get_string(kd->cmap, key, &name));
			if (e != CS_OK)
				continue;
		}
		kd->nodes[kd->n_nodes].nodeid = id;
		snprintf(kd->nodes[kd->n_nodes].name, KM_NAME_MAX, "%s", name);
		free(name);
		kd->n_nodes++;
	}
}

static void read_quorum_settings(struct kd *kd)
{
	uint8_t two_node = 0;
	char *provider = NULL;
	cs_error_t e;

	CS_RETRY(e, cmap_get_string(kd->cmap, "quorum.provider", &provider));
	CS_RETRY(e, cmap_get_uint8(kd->cmap, "quorum.two_node", &two_node));
	(void)e; /* absent keys are answered by the defaults above */
	qb_log(LOG_INFO, "corosync: %u nodes in nodelist, quorum provider %s%s",
	       kd->n_nodes, provider ? provider : "none",
	       two_node ? ", two_node" : "");
	if (!provider)
		qb_log(LOG_WARNING,
		       "corosync has no quorum provider: kemarid will never consider itself quorate");
	free(provider);
}

static int read_cmap(struct kd *kd)
{
	cs_error_t e;

	CS_RETRY(e, cmap_initialize(&kd->cmap));
	if (e != CS_OK)
		return cs_errno(e);
	read_nodelist(kd);
	read_quorum_settings(kd);
	cmap_finalize(kd->cmap);
	return 0;
}

uint32_t kd_cs_nodeid(const struct kd *kd, const char *name)
{
	uint32_t i;

	for (i = 0; i < kd->n_nodes; i++)
		if (!strcmp(kd->nodes[i].name, name))
			return kd->nodes[i].nodeid;
	return 0;
}

static void set_local_name(struct kd *kd)
{
	struct utsname u;
	uint32_t i;

	if (kd->node_forced || kd->node[0])
		return;
	for (i = 0; i < kd->n_nodes; i++)
		if (kd->nodes[i].nodeid == kd->local_nodeid) {
			snprintf(kd->node, sizeof(kd->node), "%s",
				 kd->nodes[i].name);
			return;
		}
	if (!uname(&u))
		snprintf(kd->node, sizeof(kd->node), "%.63s", u.nodename);
}

/* ---- quorum ---- */

static void quorum_notify(quorum_handle_t h, uint32_t quorate,
			  uint64_t ring_seq, uint32_t n, uint32_t *list)
{
	struct kd *kd;

	(void)ring_seq;
	(void)list;
	if (quorum_context_get(h, (const void **)&kd) != CS_OK)
		return;
	if (kd->quorate != !!quorate)
		qb_log(LOG_NOTICE, "quorum %s (%u nodes)",
		       quorate ? "gained" : "lost", n);
	kd->quorate = quorate;
	kd_vms_quorum(kd, quorate);
	kd_ipc_publish_node(kd);
}

static int32_t quorum_ready(int32_t fd, int32_t revents, void *data)
{
	struct kd *kd = data;
	cs_error_t e;

	(void)fd;
	(void)revents;
	e = quorum_dispatch(kd->quorum, CS_DISPATCH_ALL);
	if (connection_gone(e))
		kd_cs_lost(kd);
	return 0;
}

static quorum_callbacks_t quorum_cbs = { .quorum_notify_fn = quorum_notify };

static int connect_quorum(struct kd *kd)
{
	uint32_t type, quorate = 0;
	cs_error_t e;
	int r;

	CS_RETRY(e, quorum_initialize(&kd->quorum, &quorum_cbs, &type));
	if (e != CS_OK)
		return cs_errno(e);
	quorum_context_set(kd->quorum, kd);
	quorum_fd_get(kd->quorum, &kd->quorum_fd);
	CS_RETRY(e, quorum_getquorate(kd->quorum, (int *)&quorate));
	if (e == CS_OK)
		CS_RETRY(e, quorum_trackstart(kd->quorum, CS_TRACK_CHANGES));
	if (e != CS_OK) {
		r = cs_errno(e);
		goto err_finalize;
	}
	r = qb_loop_poll_add(kd->loop, QB_LOOP_HIGH, kd->quorum_fd, POLLIN, kd,
			     quorum_ready);
	if (r)
		goto err_finalize;
	kd->quorate = quorate;
	return 0;

err_finalize:
	quorum_finalize(kd->quorum);
	return r;
}

/* ---- CPG ---- */

bool kd_cs_in_group(const struct kd *kd, uint32_t nodeid)
{
	uint32_t i;

	for (i = 0; i < kd->n_group; i++)
		if (kd->group[i] == nodeid)
			return true;
	return false;
}

static const char *reason_name(uint32_t reason)
{
	switch (reason) {
	case CPG_REASON_JOIN:
		return "joined";
	case CPG_REASON_LEAVE:
		return "left";
	case CPG_REASON_NODEDOWN:
		return "node down";
	case CPG_REASON_NODEUP:
		return "node up";
	case CPG_REASON_PROCDOWN:
		return "process down";
	default:
		return "undefined";
	}
}

static void log_changes(const char *what, const struct cpg_address *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		qb_log(LOG_NOTICE, "CPG: node %u pid %u %s (%s)", l[i].nodeid,
		       l[i].pid, what, reason_name(l[i].reason));
}

static void cpg_confchg(cpg_handle_t h, const struct cpg_name *group,
			const struct cpg_address *members, size_t n_members,
			const struct cpg_address *left, size_t n_left,
			const struct cpg_address *joined, size_t n_joined)
{
	bool we_joined = false;
	struct kd *kd;
	size_t i;

	(void)group;
	if (cpg_context_get(h, (void **)&kd) != CS_OK)
		return;
	log_changes("left", left, n_left);
	log_changes("joined", joined, n_joined);
	kd->n_group = 0;
	for (i = 0; i < n_members && i < KD_MAX_NODES; i++)
		kd->group[kd->n_group++] = members[i].nodeid;
	for (i = 0; i < n_joined; i++)
		if (joined[i].nodeid == kd->local_nodeid &&
		    joined[i].pid == (uint32_t)getpid())
			we_joined = true;
	kd_vms_membership(kd);
	if (we_joined)
		kd_vms_broadcast_all(kd);
	kd_ipc_publish_node(kd);
}

static void cpg_totem(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n,
		      const uint32_t *list)
{
	struct kd *kd;

	(void)list;
	if (cpg_context_get(h, (void **)&kd) != CS_OK)
		return;
	qb_log(LOG_INFO, "totem ring %u.%llu: %u members", ring.nodeid,
	       (unsigned long long)ring.seq, n);
	kd->members = n;
	kd_ipc_publish_node(kd);
}

static void cpg_deliver(cpg_handle_t h, const struct cpg_name *group,
			uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	struct km_msg m;
	struct kd *kd;
	int r;

	(void)group;
	if (cpg_context_get(h, (void **)&kd) != CS_OK)
		return;
	if (nodeid == kd->local_nodeid && pid == (uint32_t)getpid())
		return;
	r = km_msg_decode(msg, len, &m);
	if (r) {
		qb_log(LOG_WARNING, "CPG: dropped a message from node %u: %s",
		       nodeid, strerror(-r));
		return;
	}
	kd_vms_message(kd, nodeid, &m);
}

static int32_t cpg_ready(int32_t fd, int32_t revents, void *data)
{
	struct kd *kd = data;
	cs_error_t e;

	(void)fd;
	(void)revents;
	e = cpg_dispatch(kd->cpg, CS_DISPATCH_ALL);
	if (connection_gone(e))
		kd_cs_lost(kd);
	return 0;
}

static cpg_model_v1_data_t cpg_model = {
	.model = CPG_MODEL_V1,
	.cpg_deliver_fn = cpg_deliver,
	.cpg_confchg_fn = cpg_confchg,
	.cpg_totem_confchg_fn = cpg_totem,
	.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
};

static int connect_cpg(struct kd *kd)
{
	struct cpg_name name;
	cs_error_t e;
	int r;

	CS_RETRY(e, cpg_model_initialize(&kd->cpg, CPG_MODEL_V1,
					 (cpg_model_data_t *)&cpg_model, kd));
	if (e != CS_OK)
		return cs_errno(e);
	CS_RETRY(e, cpg_local_get(kd->cpg, &kd->local_nodeid));
	if (e != CS_OK)
		goto err_finalize;
	set_local_name(kd);
	cpg_fd_get(kd->cpg, &kd->cpg_fd);
	name.length = (uint32_t)strlen(kd->cfg->group);
	memcpy(name.value, kd->cfg->group, name.length);
	CS_RETRY(e, cpg_join(kd->cpg, &name));
	if (e != CS_OK)
		goto err_finalize;
	r = qb_loop_poll_add(kd->loop, QB_LOOP_HIGH, kd->cpg_fd, POLLIN, kd,
			     cpg_ready);
	if (r)
		goto err_leave;
	return 0;

err_finalize:
	r = cs_errno(e);
	goto err_out;
err_leave:
	cpg_leave(kd->cpg, &name);
err_out:
	cpg_finalize(kd->cpg);
	return r;
}

int kd_cs_connect(struct kd *kd)
{
	int r;

	r = read_cmap(kd);
	if (r)
		return r;
	r = connect_quorum(kd);
	if (r)
		return r;
	r = connect_cpg(kd);
	if (r)
		goto err_quorum;
	kd->connected = true;
	qb_log(LOG_NOTICE,
	       "connected to corosync as node %s (id %u), CPG group %s, %squorate",
	       kd->node, kd->local_nodeid, kd->cfg->group,
	       kd->quorate ? "" : "not ");
	r = kd_vms_init(kd);
	if (r)
		qb_log(LOG_ERR, "cannot set up the VMs: %s", strerror(-r));
	kd_vms_quorum(kd, kd->quorate);
	kd_ipc_publish_node(kd);
	return 0;

err_quorum:
	qb_loop_poll_del(kd->loop, kd->quorum_fd);
	quorum_finalize(kd->quorum);
	return r;
}

static void disconnect(struct kd *kd)
{
	qb_loop_poll_del(kd->loop, kd->cpg_fd);
	qb_loop_poll_del(kd->loop, kd->quorum_fd);
	cpg_finalize(kd->cpg);
	quorum_finalize(kd->quorum);
	kd->connected = false;
	kd->quorate = false;
	kd->n_group = 0;
	kd->members = 0;
}

static uint64_t reconnect_ns(const struct kd *kd)
{
	unsigned int shift = kd->reconnects > 4 ? 4 : kd->reconnects;
	uint64_t ms = (uint64_t)RECONNECT_FIRST_MS << shift;

	return (ms > RECONNECT_MS ? RECONNECT_MS : ms) * QB_TIME_NS_IN_MSEC;
}

static void reconnect(void *data)
{
	struct kd *kd = data;
	int r;

	kd->reconnect_armed = false;
	r = kd_cs_connect(kd);
	if (!r) {
		qb_log(LOG_NOTICE,
		       "reconnected to corosync after %u attempt(s)",
		       kd->reconnects);
		kd->reconnects = 0;
		return;
	}
	if (kd->reconnects++ % 30 == 0)
		qb_log(LOG_WARNING,
		       "cannot connect to corosync (%s): retrying every %d ms",
		       strerror(-r), RECONNECT_MS);
	kd->reconnect_armed =
		!qb_loop_timer_add(kd->loop, QB_LOOP_MED, reconnect_ns(kd), kd,
				   reconnect, &kd->reconnect_timer);
}

void kd_cs_lost(struct kd *kd)
{
	if (kd->connected) {
		qb_log(LOG_ERR,
		       "lost the connection to corosync: treating it as loss of membership");
		disconnect(kd);
		kd_vms_membership_lost(kd);
		kd_ipc_publish_node(kd);
	}
	if (!kd->reconnect_armed) {
		kd->reconnect_armed = !qb_loop_timer_add(kd->loop, QB_LOOP_MED,
							 reconnect_ns(kd), kd,
							 reconnect,
							 &kd->reconnect_timer);
		kd->reconnects++;
	}
}

void kd_cs_exit(struct kd *kd)
{
	if (kd->reconnect_armed)
		qb_loop_timer_del(kd->loop, kd->reconnect_timer);
	kd->reconnect_armed = false;
	if (kd->connected)
		disconnect(kd);
}

int kd_cs_send(struct kd *kd, const struct km_msg *m)
{
	struct km_wire_vm w;
	struct iovec iov = { .iov_base = &w, .iov_len = sizeof(w) };
	cs_error_t e;
	int r;

	if (!kd->connected)
		return -ENOTCONN;
	r = km_msg_encode(m, &w);
	if (r)
		return r;
	CS_RETRY(e, cpg_mcast_joined(kd->cpg, CPG_TYPE_AGREED, &iov, 1));
	if (e != CS_OK)
		qb_log(LOG_WARNING, "CPG send failed: %s", cs_strerror(e));
	if (connection_gone(e))
		kd_cs_lost(kd);
	return cs_errno(e);
}
