/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kemarid internals: the daemon object and the interfaces between its
 * parts (corosync, VMs, IPC, children, backend, logging). One qb_loop runs
 * all of them; nothing here blocks except the bounded corosync retry.
 */
#ifndef KEMARID_INT_H
#define KEMARID_INT_H

#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <qb/qbipcs.h>
#include <qb/qblog.h>
#include <qb/qbloop.h>
#include <stdbool.h>
#include <sys/types.h>

#include "km_config.h"
#include "km_ipc.h"
#include "km_msg.h"
#include "km_vmsm.h"

#define KD_MAX_NODES 64

struct kd;
struct kd_vm;
struct kd_child;

/* ---- child processes (kd_child.c) ---- */

/* Called once with the exit code, or -1 if killed, timed out or unrunnable. */
typedef void (*kd_child_done_fn)(void *arg, int code);

/*
 * kd_child_spawn() - run @argv (absolute path) with @env added to our
 * environment; @done fires from the loop when it exits, or after
 * @timeout_ms with the child killed. Returns 0 or -errno.
 */
int kd_child_spawn(qb_loop_t *loop, char *const argv[], char *const env[],
		   uint32_t timeout_ms, kd_child_done_fn done, void *arg,
		   struct kd_child **out);

/* kd_child_abandon() - kill the child and never call its callback. */
void kd_child_abandon(struct kd_child *c);

/* ---- the VM backend (kd_backend_*.c) ---- */

/*
 * The one interface through which kemarid acts on VMs. An implementation
 * runs @action for @vm asynchronously and calls kd_vm_backend_done() from
 * the loop when it finished (status 0 = success). The "command" backend
 * runs the configured program; the VMM issue adds one for kemari-vmm.
 */
struct kd_backend_ops {
	const char *name;
	int (*init)(struct kd *kd);
	int (*run)(struct kd_vm *vm, enum km_backend_action action);
	void (*cancel)(struct kd_vm *vm); /* shutdown: forget it */
	void (*exit)(struct kd *kd);
};

extern const struct kd_backend_ops kd_backend_command_ops;

/* ---- VMs (kd_vm.c) ---- */

struct kd_vm {
	struct kd *kd;
	const struct km_vm_config *cfg;
	char peer[KM_NAME_MAX];
	struct km_vmsm sm;
	qb_loop_timer_handle fence_timer;
	bool fence_timer_armed;
	qb_loop_timer_handle absent_timer;
	bool absent_timer_armed;
	struct kd_child *fence_child;
	struct kd_child *backend_child;
	enum km_backend_action backend_action;
	struct km_ipc_vm published; /* last state sent to subscribers */
	struct km_vmsm_saved saved; /* as last written to state_dir */
	bool saved_valid;
};

/*
 * kd_vms_init() - one state machine per configured VM this node runs. Needs
 * the node's name, so it runs once that is known (-n, or the first
 * connection to corosync); later calls do nothing.
 */
int kd_vms_init(struct kd *kd);
/* kd_vm_policy() - the state machines' fencing policy from @cfg. */
void kd_vm_policy(const struct km_config *cfg, struct km_vmsm_policy *p);
/* kd_vms_exit() - cancel fences and backend actions in flight, free all. */
void kd_vms_exit(struct kd *kd);
/* kd_vm_find() - the VM called @name on this node, or NULL. */
struct kd_vm *kd_vm_find(struct kd *kd, const char *name);

/* kd_vm_event() - feed one event to @vm's state machine and act on it. */
int kd_vm_event(struct kd_vm *vm, const struct km_vmsm_event *ev);

/* kd_vm_backend_done() - backends report completion here. */
void kd_vm_backend_done(struct kd_vm *vm, enum km_backend_action a, int status);

/* kd_vm_admin() - an operator command; @msg gets the answer in words. */
int kd_vm_admin(struct kd_vm *vm, enum km_ipc_cmd cmd, const char *peer,
		char *msg, size_t len);

/* kd_vm_snapshot() - @vm as kemarictl shows it. */
void kd_vm_snapshot(const struct kd_vm *vm, struct km_ipc_vm *out);

/* kd_vms_quorum() - quorum gained or lost: tell every VM. */
void kd_vms_quorum(struct kd *kd, bool quorate);
/* kd_vms_membership() - the CPG group changed: peer joins and leaves. */
void kd_vms_membership(struct kd *kd);
/* kd_vms_membership_lost() - corosync itself is gone. */
void kd_vms_membership_lost(struct kd *kd);
/* kd_vms_message() - a validated CPG message from node @nodeid. */
void kd_vms_message(struct kd *kd, uint32_t nodeid, const struct km_msg *m);
/* kd_vms_broadcast_all() - send every VM's state (we just joined). */
void kd_vms_broadcast_all(struct kd *kd);

/* ---- corosync (kd_corosync.c) ---- */

/* kd_cs_connect() - connect cmap, quorum and CPG; 0 or -errno. */
int kd_cs_connect(struct kd *kd);
/* kd_cs_lost() - corosync went away: tear down, reconnect on a timer. */
void kd_cs_lost(struct kd *kd);
/* kd_cs_exit() - stop reconnecting and close every corosync handle. */
void kd_cs_exit(struct kd *kd);
/* kd_cs_send() - multicast @m to the group; 0 or -errno (-ENOTCONN). */
int kd_cs_send(struct kd *kd, const struct km_msg *m);
/* kd_cs_in_group() - whether @nodeid's kemarid is in the CPG group. */
bool kd_cs_in_group(const struct kd *kd, uint32_t nodeid);
/* kd_cs_nodeid() - corosync nodeid of node @name, 0 if unknown. */
uint32_t kd_cs_nodeid(const struct kd *kd, const char *name);

/* ---- IPC (kd_ipc.c) ---- */

/* kd_ipc_init() - start the IPC service on the loop; 0 or -errno. */
int kd_ipc_init(struct kd *kd);
/* kd_ipc_set_group() - (re)read the gid of ipc.group for authorisation. */
void kd_ipc_set_group(struct kd *kd);
/* kd_ipc_exit() - drop subscribers and destroy the service. */
void kd_ipc_exit(struct kd *kd);
/* kd_ipc_publish_vm() - tell subscribers @vm changed (if it did). */
void kd_ipc_publish_vm(struct kd *kd, struct kd_vm *vm);
/* kd_ipc_publish_node() - tell subscribers membership/quorum changed. */
void kd_ipc_publish_node(struct kd *kd);
/* kd_ipc_publish_destroy() - kemarid stops: every object goes away. */
void kd_ipc_publish_destroy(struct kd *kd);
/* kd_node_snapshot() - this node's membership as kemarictl shows it. */
void kd_node_snapshot(const struct kd *kd, struct km_ipc_node *out);

/* ---- logging (kd_log.c) ---- */

/* kd_log_init() - syslog, or stderr when @foreground; the blackbox ring. */
void kd_log_init(bool foreground, bool debug);
/* kd_log_set_debug() - switch kemarid's own debug messages on or off. */
void kd_log_set_debug(bool foreground, bool debug);
/* kd_log_blackbox() - dump the flight recorder; a failover just happened. */
void kd_log_blackbox(struct kd *kd, const char *why);
/* kd_log_exit() - flush and close every log target. */
void kd_log_exit(void);

/* ---- the daemon ---- */

/*
 * kd_config_reload() - read the configuration file again and apply the
 * settings that can change while kemarid runs (km_config_compare()).
 * Returns 0 (applied; @msg lists what changed), -EINVAL (the file is
 * invalid; @msg is "file:line: problem") or -EBUSY (a setting that needs a
 * restart changed; @msg names it). Nothing changes unless it returns 0.
 */
int kd_config_reload(struct kd *kd, char *msg, size_t len);

struct kd_member {
	uint32_t nodeid;
	char name[KM_NAME_MAX];
};

struct kd {
	qb_loop_t *loop;
	struct km_config *cfg;
	const char *config_path;
	bool foreground;
	bool debug_forced; /* -d: debug whatever log.debug says */
	char node[KM_NAME_MAX];
	bool node_forced; /* -n given: do not take it from cmap */
	const char *ipc_name;
	/* corosync */
	bool connected;
	bool quorate;
	cpg_handle_t cpg;
	quorum_handle_t quorum;
	cmap_handle_t cmap;
	int cpg_fd, quorum_fd;
	uint32_t local_nodeid;
	uint32_t members; /* totem membership size */
	uint32_t group[KD_MAX_NODES]; /* nodeids of kemarids in the group */
	uint32_t n_group;
	struct kd_member nodes[KD_MAX_NODES]; /* from cmap nodelist */
	uint32_t n_nodes;
	qb_loop_timer_handle reconnect_timer;
	bool reconnect_armed;
	unsigned int reconnects;
	/* VMs */
	struct kd_vm *vms;
	size_t n_vms;
	const struct kd_backend_ops *backend;
	/* IPC */
	qb_ipcs_service_t *ipcs;
	gid_t ipc_gid;
	bool ipc_gid_valid;
	qb_ipcs_connection_t *subscribers[64];
	size_t n_subscribers;
};

#endif /* KEMARID_INT_H */
