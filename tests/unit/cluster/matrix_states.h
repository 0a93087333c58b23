/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Named states for the every-event-in-every-state matrix. Each is built by
 * hand from km_vmsm_init() so that the table reads as a specification.
 */
#ifndef MATRIX_STATES_H
#define MATRIX_STATES_H

#include "km_vmsm.h"

#define GEN 5

static const struct km_vmsm_policy matrix_policy = {
	.fencing = true,
	.fence_delay_ms = 3000,
	.fence_retries = 2,
	.fence_retry_ms = 500,
};

static void base(struct km_vmsm *sm)
{
	km_vmsm_init(sm, "web1", GEN, KM_REPLICA_INCONSISTENT, &matrix_policy);
	sm->quorate = true;
	sm->peer_generation = GEN;
}

static void peer(struct km_vmsm *sm, enum km_role r, enum km_replica d,
		 enum km_repl l)
{
	sm->peer_present = true;
	sm->peer_role = sm->peer_last_role = r;
	sm->peer_replica = d;
	sm->peer_repl = l;
}

static void lockstep(struct km_vmsm *sm, enum km_role r)
{
	base(sm);
	sm->role = r;
	sm->replica = KM_REPLICA_UPTODATE;
	sm->conn = KM_CONN_CONNECTED;
	sm->repl = KM_REPL_LOCKSTEP;
	sm->protected = true;
	peer(sm, r == KM_ROLE_PRIMARY ? KM_ROLE_SECONDARY : KM_ROLE_PRIMARY,
	     KM_REPLICA_UPTODATE, KM_REPL_LOCKSTEP);
}

static void gone(struct km_vmsm *sm, enum km_fence f)
{
	sm->peer_present = false;
	sm->peer_role = KM_ROLE_UNKNOWN;
	sm->peer_replica = KM_REPLICA_UNKNOWN;
	sm->peer_repl = KM_REPL_OFF;
	sm->conn = KM_CONN_CONNECTING;
	sm->repl = KM_REPL_OFF;
	sm->fence = f;
}

static void s_fresh(struct km_vmsm *sm)
{
	base(sm);
}

static void s_idle(struct km_vmsm *sm)
{
	base(sm);
	sm->replica = KM_REPLICA_UPTODATE;
	peer(sm, KM_ROLE_SECONDARY, KM_REPLICA_UPTODATE, KM_REPL_OFF);
}

static void s_synctarget(struct km_vmsm *sm)
{
	base(sm);
	sm->protected = true;
	sm->conn = KM_CONN_CONNECTING;
	sm->repl = KM_REPL_SYNC_TARGET;
	sm->pending = KM_BACKEND_START_REPLICA;
	peer(sm, KM_ROLE_PRIMARY, KM_REPLICA_UPTODATE, KM_REPL_SYNC_SOURCE);
}

static void s_sec_lockstep(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_SECONDARY);
}

static void s_sec_fencing(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_SECONDARY);
	gone(sm, KM_FENCE_PENDING);
}

static void s_sec_fenced_inquorate(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_SECONDARY);
	gone(sm, KM_FENCE_DONE);
	sm->quorate = false;
}

static void s_sec_fence_failed(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_SECONDARY);
	gone(sm, KM_FENCE_FAILED);
}

static void s_promoting(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_SECONDARY);
	gone(sm, KM_FENCE_DONE);
	sm->protected = false;
	sm->pending = KM_BACKEND_PROMOTE;
	sm->takeover = true;
	sm->generation = GEN + 1;
}

static void s_pri_alone(struct km_vmsm *sm)
{
	base(sm);
	sm->role = KM_ROLE_PRIMARY;
	sm->replica = KM_REPLICA_UPTODATE;
}

static void s_pri_syncsource(struct km_vmsm *sm)
{
	s_pri_alone(sm);
	sm->protected = true;
	sm->conn = KM_CONN_CONNECTING;
	sm->repl = KM_REPL_SYNC_SOURCE;
	peer(sm, KM_ROLE_SECONDARY, KM_REPLICA_INCONSISTENT,
	     KM_REPL_SYNC_TARGET);
}

static void s_pri_lockstep(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_PRIMARY);
}

static void s_pri_suspended(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_PRIMARY);
	gone(sm, KM_FENCE_PENDING);
	sm->suspended = true;
}

static void s_demoting(struct km_vmsm *sm)
{
	lockstep(sm, KM_ROLE_PRIMARY);
	sm->pending = KM_BACKEND_DEMOTE;
	sm->switching = true;
}

/* kemarid restarted on the Primary's node: as km_vmsm_restore() leaves it. */
static void s_pri_probing(struct km_vmsm *sm)
{
	const struct km_vmsm_saved saved = { .generation = GEN,
					     .role = KM_ROLE_PRIMARY,
					     .replica = KM_REPLICA_UPTODATE,
					     .protected = true };
	struct km_vmsm_actions a;

	base(sm);
	km_vmsm_restore(sm, &saved, &a);
}

/* ... the probe said the VM runs; the group is not known yet. */
static void s_pri_resuming(struct km_vmsm *sm)
{
	s_pri_probing(sm);
	sm->pending = KM_BACKEND_NONE;
}

/* ... the peer's kemarid is in the group; its state has not come yet. */
static void s_pri_resuming_peer(struct km_vmsm *sm)
{
	s_pri_resuming(sm);
	sm->peer_present = true;
}

/* ... the peer is not in the group: fencing it. */
static void s_pri_resuming_fencing(struct km_vmsm *sm)
{
	s_pri_resuming(sm);
	sm->fence = KM_FENCE_PENDING;
}

static const struct {
	const char *name;
	void (*make)(struct km_vmsm *sm);
} states[] = {
	{ "fresh", s_fresh },
	{ "idle", s_idle },
	{ "synctarget", s_synctarget },
	{ "sec-lockstep", s_sec_lockstep },
	{ "sec-fencing", s_sec_fencing },
	{ "sec-fenced-inquorate", s_sec_fenced_inquorate },
	{ "sec-fence-failed", s_sec_fence_failed },
	{ "promoting", s_promoting },
	{ "pri-alone", s_pri_alone },
	{ "pri-syncsource", s_pri_syncsource },
	{ "pri-lockstep", s_pri_lockstep },
	{ "pri-suspended", s_pri_suspended },
	{ "demoting", s_demoting },
	{ "pri-probing", s_pri_probing },
	{ "pri-resuming", s_pri_resuming },
	{ "pri-resuming-peer", s_pri_resuming_peer },
	{ "pri-resuming-fencing", s_pri_resuming_fencing },
};

#define N_STATES (sizeof(states) / sizeof(states[0]))

/* The event each column applies, at the state's own generation. */
static struct km_vmsm_event matrix_event(const struct km_vmsm *sm,
					 enum km_vmsm_event_type t)
{
	struct km_vmsm_event ev = { .type = t, .generation = sm->generation };

	switch (t) {
	case KM_EV_PEER_STATE:
		ev.role = KM_ROLE_SECONDARY;
		ev.replica = KM_REPLICA_UPTODATE;
		ev.repl = KM_REPL_LOCKSTEP;
		break;
	case KM_EV_FENCE_RESULT:
		ev.code = KM_FENCE_RC_PEER_FENCED;
		break;
	case KM_EV_BACKEND_DONE:
		ev.action = sm->pending ? sm->pending : KM_BACKEND_PROMOTE;
		break;
	default:
		break;
	}
	return ev;
}

static char rc_char(int rc)
{
	switch (rc) {
	case 0:
		return '.';
	case -EBUSY:
		return 'B';
	case -ENOLINK:
		return 'Q';
	case -EHOSTUNREACH:
		return 'H';
	case -ESTALE:
		return 'S';
	case -EPERM:
		return 'P';
	case -EALREADY:
		return 'A';
	case -EEXIST:
		return 'E';
	case -EINVAL:
		return 'I';
	default:
		return '?';
	}
}

static char backend_char(const struct km_vmsm_actions *a)
{
	static const char c[] = "-RPDXQ";

	if (!(a->flags & KM_ACT_BACKEND))
		return a->flags & KM_ACT_FENCE ? 'F' : '-';
	return c[a->backend];
}

#endif
