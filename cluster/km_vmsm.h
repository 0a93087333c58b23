/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-VM role state machine: pure C, no I/O, no clock.
 *
 * kemarid feeds it events (membership, quorum, peer messages, fence and
 * backend results, operator commands) and carries out the actions it returns
 * (run a backend action, start the fence-peer handler, send a message to the
 * peer, persist the generation). Names follow DRBD so that operators read
 * the state without a glossary.
 *
 * The failover rule lives here and only here: a Secondary promotes only when
 * this node is quorate AND the peer is known gone (it left the CPG group and
 * the fence-peer handler confirmed with exit code 7, or it reported its own
 * fault). Every promotion increments the generation; messages from a lower
 * generation are refused.
 *
 * What survives a restart of kemarid (struct km_vmsm_saved) is saved by the
 * caller after every change and restored with km_vmsm_restore(): a node that
 * was Primary comes back frozen, asks the backend whether the VM still runs
 * here, and resumes only once the peer's state (or its absence, confirmed by
 * fencing) shows that nobody promoted meanwhile.
 */
#ifndef KM_VMSM_H
#define KM_VMSM_H

#include <stdbool.h>
#include <stdint.h>

#define KM_VMSM_NAME_MAX 64
#define KM_VMSM_REASON_MAX 160

enum km_role {
	KM_ROLE_UNKNOWN,
	KM_ROLE_SECONDARY,
	KM_ROLE_PRIMARY,
};

enum km_replica {
	KM_REPLICA_UNKNOWN, /* the peer's replica when the peer is gone */
	KM_REPLICA_INCONSISTENT,
	KM_REPLICA_OUTDATED,
	KM_REPLICA_UPTODATE,
};

enum km_conn {
	KM_CONN_STANDALONE,
	KM_CONN_CONNECTING,
	KM_CONN_CONNECTED,
};

enum km_repl {
	KM_REPL_OFF,
	KM_REPL_SYNC_SOURCE,
	KM_REPL_SYNC_TARGET,
	KM_REPL_LOCKSTEP,
};

enum km_fence {
	KM_FENCE_NONE,
	KM_FENCE_PENDING, /* delay or handler running */
	KM_FENCE_DONE, /* peer known gone */
	KM_FENCE_FAILED,
};

/* What the backend is asked to do with the VM on this node. */
enum km_backend_action {
	KM_BACKEND_NONE,
	KM_BACKEND_START_REPLICA, /* become the receiving replica */
	KM_BACKEND_PROMOTE, /* run the VM from the replica */
	KM_BACKEND_DEMOTE, /* final epoch, then stop running */
	KM_BACKEND_STOP, /* stop the VM or replica here */
	KM_BACKEND_PROBE, /* does the VM run here? 0 yes, 7 no */
	KM_BACKEND__COUNT,
};

/* Backend exit code of KM_BACKEND_PROBE for "the VM does not run here". */
#define KM_PROBE_NOT_RUNNING 7

/* Requests carried to the peer over CPG. */
enum km_peer_msg {
	KM_MSG_NONE,
	KM_MSG_PROTECT, /* "be my Secondary", with our generation */
	KM_MSG_UNPROTECT,
	KM_MSG_HANDOVER, /* switchover: we demoted, you promote */
	KM_MSG_FAULT, /* our copy faulted and is stopped */
};

enum km_vmsm_event_type {
	KM_EV_QUORATE,
	KM_EV_INQUORATE,
	KM_EV_MEMBERSHIP_LOST, /* corosync connection gone */
	KM_EV_PEER_JOIN, /* peer's kemarid is in the CPG group */
	KM_EV_PEER_LEAVE, /* ... and left it */
	KM_EV_PEER_ABSENT, /* quorate, and the group has lacked the peer a while */
	KM_EV_PEER_STATE, /* peer announced role/replica/generation */
	KM_EV_PEER_PROTECT, /* peer asks us to be its Secondary */
	KM_EV_PEER_UNPROTECT,
	KM_EV_PEER_HANDOVER,
	KM_EV_PEER_FAULT,
	KM_EV_FENCE_RESULT, /* fence-peer handler exit code */
	KM_EV_BACKEND_DONE,
	KM_EV_LOCAL_FAULT, /* our VM faulted (kmod), or a drill */
	KM_EV_ADMIN_PROTECT,
	KM_EV_ADMIN_UNPROTECT,
	KM_EV_ADMIN_SWITCHOVER,
	KM_EV_ADMIN_REPROTECT,
	KM_EV__COUNT,
};

struct km_vmsm_event {
	enum km_vmsm_event_type type;
	uint64_t generation; /* PEER_* */
	enum km_role role; /* PEER_STATE */
	enum km_replica replica; /* PEER_STATE */
	enum km_repl repl; /* PEER_STATE */
	enum km_backend_action action; /* BACKEND_DONE */
	int code; /* FENCE_RESULT: exit code; BACKEND_DONE: 0 = ok */
};

/* Fence-peer handler exit codes, as DRBD's. */
enum {
	KM_FENCE_RC_PEER_INCONSISTENT = 3,
	KM_FENCE_RC_PEER_OUTDATED = 4,
	KM_FENCE_RC_PEER_UNREACHABLE = 5,
	KM_FENCE_RC_PEER_PRIMARY = 6,
	KM_FENCE_RC_PEER_FENCED = 7,
};

enum {
	KM_ACT_BROADCAST = 1 << 0, /* send our state to the peer */
	KM_ACT_SEND = 1 << 1, /* send actions.msg to the peer */
	KM_ACT_BACKEND = 1 << 2, /* run actions.backend */
	KM_ACT_FENCE = 1 << 3, /* fence after actions.fence_delay_ms */
	KM_ACT_FENCE_CANCEL = 1 << 4, /* stop a fence still in its delay */
	KM_ACT_BLACKBOX = 1 << 5, /* dump the log ring: a failover */
	KM_ACT_PERSIST = 1 << 6, /* save generation and replica */
};

struct km_vmsm_actions {
	uint32_t flags;
	enum km_backend_action backend;
	enum km_peer_msg msg;
	uint32_t fence_delay_ms;
};

/* What kemarid configures; km_vmsm_set_policy() may change it at a reload. */
struct km_vmsm_policy {
	bool fencing; /* a fence-peer handler is configured */
	uint32_t fence_delay_ms; /* a Secondary's wait before fencing */
	uint32_t fence_retries; /* further attempts after a failed handler */
	uint32_t fence_retry_ms; /* wait before each further attempt */
};

/* What must survive a restart of kemarid, saved atomically by the caller. */
struct km_vmsm_saved {
	uint64_t generation;
	enum km_role role;
	enum km_replica replica;
	bool protected;
};

struct km_vmsm {
	char name[KM_VMSM_NAME_MAX];
	/* this node */
	enum km_role role;
	enum km_replica replica;
	enum km_conn conn;
	enum km_repl repl;
	uint64_t generation;
	bool protected; /* a peer is (to be) our replica or source */
	bool quorate;
	struct km_vmsm_policy policy;
	/* the peer, as last heard */
	bool peer_present;
	enum km_role peer_role;
	enum km_role peer_last_role; /* survives the peer leaving */
	enum km_replica peer_replica;
	enum km_repl peer_repl;
	uint64_t peer_generation;
	bool peer_fault; /* peer reported its copy faulted and stopped */
	/* work in flight */
	enum km_fence fence;
	int fence_rc;
	uint32_t fence_attempt; /* retries used by the fencing in progress */
	enum km_backend_action pending;
	bool takeover; /* the pending promotion is a failover */
	bool switching; /* the pending demotion is a switchover */
	bool suspended; /* Primary frozen until the peer is fenced */
	bool resuming; /* restored as Primary: frozen until nobody promoted */
	char reason[KM_VMSM_REASON_MAX];
};

/*
 * km_vmsm_init() - a VM as kemarid finds it at start: Secondary, not
 * connected, with the generation and replica state saved on disk.
 * Without fencing in @policy this node never takes over from a lost
 * Primary.
 */
void km_vmsm_init(struct km_vmsm *sm, const char *name, uint64_t generation,
		  enum km_replica replica, const struct km_vmsm_policy *policy);

/*
 * km_vmsm_set_policy() - new fencing settings (configuration reload). A
 * fence already running keeps going; the new values apply from the next.
 */
void km_vmsm_set_policy(struct km_vmsm *sm, const struct km_vmsm_policy *p);

/* km_vmsm_save() - the part of @sm that must survive a restart. */
void km_vmsm_save(const struct km_vmsm *sm, struct km_vmsm_saved *out);

/*
 * km_vmsm_restore() - after km_vmsm_init(), put back what @saved says. A
 * former Primary comes back frozen (suspended, resuming) with a backend
 * PROBE in @act: if the VM no longer runs here the node becomes an Outdated
 * Secondary; otherwise it stays frozen until the peer's state shows no newer
 * generation (then it resumes, or stops its stale copy), or until the peer
 * is found absent and fenced (KM_EV_PEER_ABSENT). A former Secondary comes
 * back as km_vmsm_init() left it: its Primary protects it again.
 */
void km_vmsm_restore(struct km_vmsm *sm, const struct km_vmsm_saved *saved,
		     struct km_vmsm_actions *act);

/*
 * km_vmsm_handle() - apply @ev to @sm and fill @act with what the caller
 * must do. Returns 0, or -errno when the event was refused (sm->reason
 * then says why in words an operator can act on): -EBUSY (an action is in
 * flight), -ENOLINK (not quorate), -EHOSTUNREACH (peer absent), -ESTALE
 * (lower generation), -EPERM (not allowed in this role or state), -EALREADY,
 * -EEXIST (the peer is Primary), -EINVAL (bad event).
 */
int km_vmsm_handle(struct km_vmsm *sm, const struct km_vmsm_event *ev,
		   struct km_vmsm_actions *act);

/*
 * km_vmsm_check_generation() - 0 if data stamped with @generation may be
 * accepted, -ESTALE if it comes from an older Primary.
 */
int km_vmsm_check_generation(const struct km_vmsm *sm, uint64_t generation);

/* km_vmsm_may_promote() - whether the failover rule allows a takeover now. */
bool km_vmsm_may_promote(const struct km_vmsm *sm);

/* Names as printed by kemarictl (DRBD spelling). */
const char *km_role_name(enum km_role r);
const char *km_replica_name(enum km_replica r);
const char *km_conn_name(enum km_conn c);
const char *km_repl_name(enum km_repl r);
const char *km_fence_name(enum km_fence f);
const char *km_backend_action_name(enum km_backend_action a);
const char *km_vmsm_event_name(enum km_vmsm_event_type t);
const char *km_fence_rc_meaning(int rc);

#endif /* KM_VMSM_H */
