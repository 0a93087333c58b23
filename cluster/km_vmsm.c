// SPDX-License-Identifier: GPL-2.0
/*
 * Per-VM role state machine. One handler per event, indexed by event type;
 * each handler either refuses (returns -errno and says why in sm->reason)
 * or changes the state and lists the actions for kemarid to carry out.
 *
 * Failover, as seen from the Secondary:
 *
 *   peer leaves CPG --> FENCE (after fence_delay_ms) --> handler exits 7
 *        |                                                   |
 *        | peer rejoins: FENCE_CANCEL                        v
 *        v                                         quorate? --no--> wait
 *   back to Connecting                                   | yes   for QUORATE
 *                                                        v
 *                                       generation++, PROMOTE, BLACKBOX
 *
 * The Primary fences a lost Secondary at once (delay 0) and stays frozen
 * (suspended) until that succeeds, so in a partition the Primary's node wins
 * and the Secondary's handler is the one that fails. A handler that fails
 * without a definite answer (not 3, 4, 6 or 7: a fence device that did not
 * answer, a timeout) is run again policy.fence_retries times, as
 * pacemaker's fencer retries a device (pcmk_reboot_retries).
 *
 * A Primary restored after a restart of kemarid (resuming):
 *
 *   PROBE --not running--> Secondary, Outdated
 *     | running
 *     v
 *   peer's state:  Primary, higher generation  --> stop our copy, Outdated
 *                  Secondary, same generation  --> resume (Lockstep or resync)
 *                  newer generation anywhere   --> stop our copy, Outdated
 *   peer absent:   protected   --> fence at once, resume unprotected if done
 *                  unprotected --> resume (nobody could promote without us)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "km_vmsm.h"

typedef int (*handler_fn)(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			  struct km_vmsm_actions *act);

static void promoted(struct km_vmsm *sm, struct km_vmsm_actions *act);
static void drop_protection(struct km_vmsm *sm);
static void try_resume(struct km_vmsm *sm, struct km_vmsm_actions *act);

static int __attribute__((format(printf, 3, 4)))
refuse(struct km_vmsm *sm, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sm->reason, sizeof(sm->reason), fmt, ap);
	va_end(ap);
	return err;
}

static void __attribute__((format(printf, 2, 3)))
note(struct km_vmsm *sm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sm->reason, sizeof(sm->reason), fmt, ap);
	va_end(ap);
}

static void backend(struct km_vmsm_actions *act, struct km_vmsm *sm,
		    enum km_backend_action a)
{
	act->flags |= KM_ACT_BACKEND | KM_ACT_BROADCAST;
	act->backend = a;
	sm->pending = a;
}

static void send_msg(struct km_vmsm_actions *act, enum km_peer_msg m)
{
	act->flags |= KM_ACT_SEND;
	act->msg = m;
}

/* The generation is bumped before the backend runs and saved at once: a
 * crash in the middle of a promotion must never let the number be reused. */
static void promote(struct km_vmsm *sm, struct km_vmsm_actions *act,
		    bool takeover)
{
	if (sm->peer_generation > sm->generation)
		sm->generation = sm->peer_generation;
	sm->generation++;
	sm->takeover = takeover;
	act->flags |= KM_ACT_PERSIST;
	backend(act, sm, KM_BACKEND_PROMOTE);
}

/*
 * Our copy is history: a newer generation exists on the peer. Stop it here;
 * the replica we hold is Outdated.
 */
static void stale_stop(struct km_vmsm *sm, struct km_vmsm_actions *act,
		       uint64_t peer_generation)
{
	note(sm,
	     "peer is at generation %llu > ours %llu: stopping our stale copy",
	     (unsigned long long)peer_generation,
	     (unsigned long long)sm->generation);
	sm->role = KM_ROLE_SECONDARY;
	sm->replica = KM_REPLICA_OUTDATED;
	sm->protected = false;
	sm->suspended = false;
	sm->resuming = false;
	sm->conn = KM_CONN_STANDALONE;
	sm->repl = KM_REPL_OFF;
	sm->generation = peer_generation;
	/* The aftermath of a failover: keep the log leading up to it. */
	act->flags |= KM_ACT_PERSIST | KM_ACT_BROADCAST | KM_ACT_BLACKBOX;
	backend(act, sm, KM_BACKEND_STOP);
}

/* The peer is known gone: it left and was fenced, or it stopped itself. */
static bool peer_gone(const struct km_vmsm *sm)
{
	return (!sm->peer_present || sm->peer_fault) &&
	       sm->fence == KM_FENCE_DONE;
}

static void try_takeover(struct km_vmsm *sm, struct km_vmsm_actions *act)
{
	if (sm->role != KM_ROLE_SECONDARY || sm->pending || !peer_gone(sm) ||
	    sm->replica != KM_REPLICA_UPTODATE)
		return;
	if (!sm->quorate) {
		note(sm,
		     "peer is fenced but this node is not quorate: waiting for quorum before promoting");
		return;
	}
	note(sm, "failover: peer gone and fenced, promoting");
	sm->protected = false;
	promote(sm, act, true);
}

bool km_vmsm_may_promote(const struct km_vmsm *sm)
{
	return sm->role == KM_ROLE_SECONDARY && !sm->pending && peer_gone(sm) &&
	       sm->quorate && sm->replica == KM_REPLICA_UPTODATE;
}

static int on_quorate(struct km_vmsm *sm, const struct km_vmsm_event *ev,
		      struct km_vmsm_actions *act)
{
	(void)ev;
	sm->quorate = true;
	act->flags |= KM_ACT_BROADCAST;
	try_takeover(sm, act);
	return 0;
}

static int on_inquorate(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			struct km_vmsm_actions *act)
{
	(void)ev;
	(void)act;
	sm->quorate = false;
	return 0;
}

/* Corosync itself is gone: we know nothing about the peer any more, but what
 * we knew is kept so that the reconnect can tell a join from a leave. */
static int on_membership_lost(struct km_vmsm *sm,
			      const struct km_vmsm_event *ev,
			      struct km_vmsm_actions *act)
{
	(void)ev;
	(void)act;
	sm->quorate = false;
	if (sm->protected)
		sm->conn = KM_CONN_CONNECTING;
	note(sm, "lost the corosync connection: reconnecting");
	return 0;
}

static int on_peer_join(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			struct km_vmsm_actions *act)
{
	(void)ev;
	sm->peer_present = true;
	sm->peer_fault = false;
	act->flags |= KM_ACT_BROADCAST;
	if (sm->fence == KM_FENCE_PENDING) {
		act->flags |= KM_ACT_FENCE_CANCEL;
		note(sm,
		     "peer returned before fencing completed: not promoting");
	}
	if (sm->fence != KM_FENCE_NONE)
		sm->fence = KM_FENCE_NONE;
	if (sm->protected && sm->conn == KM_CONN_STANDALONE)
		sm->conn = KM_CONN_CONNECTING;
	/* Our Secondary is back before it was fenced: it is not running the
	 * VM, so run on and protect again (a resync, it may have lost
	 * epochs meanwhile). */
	if (sm->role == KM_ROLE_PRIMARY && sm->suspended && sm->protected &&
	    !sm->pending && !sm->resuming)
		promoted(sm, act);
	return 0;
}

static void lose_peer(struct km_vmsm *sm)
{
	sm->peer_present = false;
	if (sm->peer_role != KM_ROLE_UNKNOWN)
		sm->peer_last_role = sm->peer_role;
	sm->peer_role = KM_ROLE_UNKNOWN;
	sm->peer_replica = KM_REPLICA_UNKNOWN;
	sm->peer_repl = KM_REPL_OFF;
	sm->repl = KM_REPL_OFF;
	if (sm->conn == KM_CONN_CONNECTED)
		sm->conn = KM_CONN_CONNECTING;
}

static void start_fence(struct km_vmsm *sm, struct km_vmsm_actions *act,
			uint32_t delay_ms)
{
	sm->fence = KM_FENCE_PENDING;
	sm->fence_attempt = 0;
	act->flags |= KM_ACT_FENCE;
	act->fence_delay_ms = delay_ms;
}

static void secondary_lost_primary(struct km_vmsm *sm,
				   struct km_vmsm_actions *act)
{
	if (sm->replica != KM_REPLICA_UPTODATE) {
		note(sm,
		     "Primary left while our replica is %s: cannot take over",
		     km_replica_name(sm->replica));
		return;
	}
	if (!sm->policy.fencing) {
		note(sm,
		     "Primary left but no fence-peer handler is configured: not promoting");
		return;
	}
	note(sm, "Primary left the group: fencing it");
	start_fence(sm, act, sm->policy.fence_delay_ms);
}

static void primary_lost_secondary(struct km_vmsm *sm,
				   struct km_vmsm_actions *act)
{
	/* No acks can come: the VM stays frozen until fenced. */
	sm->suspended = true;
	if (sm->policy.fencing) {
		note(sm, "Secondary %s: fencing it",
		     sm->resuming ? "is not in the group" : "left the group");
		start_fence(sm, act, 0);
	} else {
		note(sm,
		     "Secondary %s and no fence-peer handler is configured: VM frozen until 'kemarictl unprotect'",
		     sm->resuming ? "is not in the group" : "left");
	}
}

static void resumed(struct km_vmsm *sm, struct km_vmsm_actions *act,
		    const char *how)
{
	sm->resuming = false;
	sm->suspended = false;
	act->flags |= KM_ACT_BROADCAST;
	note(sm, "restarted as Primary and resumed: %s", how);
}

/* The peer is here and said who it is. */
static void resume_with_peer(struct km_vmsm *sm, struct km_vmsm_actions *act)
{
	if (sm->peer_generation > sm->generation) {
		stale_stop(sm, act, sm->peer_generation);
		return;
	}
	if (sm->peer_role == KM_ROLE_PRIMARY) {
		/* Equal: split-brain, never resume. Lower: the peer stops its
		 * stale copy when it sees our state, then we look again. */
		act->flags |= KM_ACT_BROADCAST;
		note(sm,
		     "restarted as Primary; the peer is Primary at generation %llu (ours %llu): %s",
		     (unsigned long long)sm->peer_generation,
		     (unsigned long long)sm->generation,
		     sm->peer_generation == sm->generation ?
			     "split-brain, stop one copy by hand" :
			     "waiting for it to stop");
		return;
	}
	if (!sm->protected) {
		resumed(sm, act, "not protected, the peer is Secondary");
		return;
	}
	if (sm->peer_repl == KM_REPL_LOCKSTEP &&
	    sm->peer_replica == KM_REPLICA_UPTODATE &&
	    sm->peer_generation == sm->generation) {
		sm->conn = KM_CONN_CONNECTED;
		sm->repl = KM_REPL_LOCKSTEP;
		resumed(sm, act, "the peer is still in Lockstep");
		return;
	}
	/* The Secondary lost epochs meanwhile: sync it again. */
	sm->resuming = false;
	promoted(sm, act);
	note(sm, "restarted as Primary and resumed: resyncing the peer");
}

/*
 * Decide whether a restored Primary may run on: only once the backend said
 * the VM runs here, and the peer showed it did not promote (its state) or
 * is out of the way (absent and, if it was our Secondary, fenced).
 */
static void try_resume(struct km_vmsm *sm, struct km_vmsm_actions *act)
{
	if (!sm->resuming || sm->pending)
		return;
	if (sm->peer_present) {
		if (sm->peer_role != KM_ROLE_UNKNOWN)
			resume_with_peer(sm, act);
		return;
	}
	if (!sm->protected) {
		/* Nobody can promote an unprotected VM while we are away:
		 * `protect` on the peer needs our kemarid in the group. */
		resumed(sm, act, "not protected, the peer is absent");
		return;
	}
	if (sm->fence == KM_FENCE_DONE) {
		drop_protection(sm);
		resumed(sm, act,
			"the absent peer was fenced, running unprotected");
	}
}

static int on_peer_leave(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			 struct km_vmsm_actions *act)
{
	bool was_primary = sm->peer_role == KM_ROLE_PRIMARY;

	(void)ev;
	if (!sm->peer_present)
		return 0;
	lose_peer(sm);
	act->flags |= KM_ACT_BROADCAST;
	if (sm->role == KM_ROLE_SECONDARY && was_primary && sm->protected) {
		secondary_lost_primary(sm, act);
	} else if (sm->role == KM_ROLE_PRIMARY && sm->protected) {
		primary_lost_secondary(sm, act);
	} else if (sm->resuming) {
		try_resume(sm, act);
	}
	return 0;
}

/* Restored as Primary, and the group as first seen lacks the peer. */
static int on_peer_absent(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			  struct km_vmsm_actions *act)
{
	(void)ev;
	/* Not while probing: a VM that does not run here needs no fencing.
	 * Not without quorum: a node just booted has not seen the peer yet. */
	if (!sm->resuming || sm->peer_present || sm->pending || !sm->quorate ||
	    sm->fence != KM_FENCE_NONE)
		return 0;
	if (sm->protected)
		primary_lost_secondary(sm, act);
	else
		try_resume(sm, act);
	return 0;
}

static int primary_sees_primary(struct km_vmsm *sm,
				const struct km_vmsm_event *ev,
				struct km_vmsm_actions *act)
{
	if (ev->generation > sm->generation) {
		stale_stop(sm, act, ev->generation);
		return 0;
	}
	if (ev->generation == sm->generation) {
		sm->conn = KM_CONN_STANDALONE;
		return refuse(
			sm, -EEXIST,
			"split-brain: both nodes Primary at generation %llu; stop one copy by hand",
			(unsigned long long)sm->generation);
	}
	/* Theirs is stale: they stop when they see our state. */
	act->flags |= KM_ACT_BROADCAST;
	return refuse(sm, -ESTALE,
		      "peer claims Primary with stale generation %llu < %llu",
		      (unsigned long long)ev->generation,
		      (unsigned long long)sm->generation);
}

static int secondary_sees_state(struct km_vmsm *sm,
				const struct km_vmsm_event *ev,
				struct km_vmsm_actions *act)
{
	if (ev->role != KM_ROLE_PRIMARY)
		return 0;
	if (ev->generation < sm->generation)
		return refuse(
			sm, -ESTALE,
			"peer is Primary with stale generation %llu < ours %llu: not following it",
			(unsigned long long)ev->generation,
			(unsigned long long)sm->generation);
	if (ev->generation > sm->generation && !sm->pending &&
	    sm->repl != KM_REPL_SYNC_TARGET) {
		/* A newer Primary exists: what we hold is history. */
		if (sm->replica == KM_REPLICA_UPTODATE)
			sm->replica = KM_REPLICA_OUTDATED;
		sm->generation = ev->generation;
		act->flags |= KM_ACT_PERSIST | KM_ACT_BROADCAST;
	}
	return 0;
}

/* Our Primary stopped its own copy: that is as good as fencing. */
static void peer_stopped_its_copy(struct km_vmsm *sm,
				  struct km_vmsm_actions *act)
{
	if (sm->role != KM_ROLE_SECONDARY || !sm->protected ||
	    sm->replica != KM_REPLICA_UPTODATE)
		return;
	sm->peer_role = KM_ROLE_SECONDARY;
	sm->peer_fault = true;
	if (sm->fence == KM_FENCE_PENDING)
		act->flags |= KM_ACT_FENCE_CANCEL;
	sm->fence = KM_FENCE_DONE;
	try_takeover(sm, act);
}

/*
 * Our Primary came back (its kemarid restarted, or its host rebooted)
 * as an Outdated Secondary at our generation: its probe found the VM no
 * longer running there, so its copy is stopped. No other path leads there:
 * a switchover keeps the replica UpToDate, a fault is reported as such, and
 * a stale copy carries a lower generation.
 */
static bool peer_lost_its_copy(const struct km_vmsm *sm,
			       const struct km_vmsm_event *ev, bool was_primary)
{
	return was_primary && ev->role == KM_ROLE_SECONDARY &&
	       ev->replica == KM_REPLICA_OUTDATED &&
	       ev->generation == sm->generation;
}

static int on_peer_state(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			 struct km_vmsm_actions *act)
{
	bool was_primary = sm->peer_role == KM_ROLE_PRIMARY ||
			   sm->peer_last_role == KM_ROLE_PRIMARY;

	sm->peer_present = true;
	sm->peer_role = ev->role;
	sm->peer_last_role = ev->role;
	sm->peer_replica = ev->replica;
	sm->peer_repl = ev->repl;
	sm->peer_generation = ev->generation;
	if (sm->resuming) {
		try_resume(sm, act);
		return 0;
	}
	if (sm->role == KM_ROLE_PRIMARY && ev->role == KM_ROLE_PRIMARY)
		return primary_sees_primary(sm, ev, act);
	if (sm->role == KM_ROLE_PRIMARY && sm->protected &&
	    ev->repl == KM_REPL_LOCKSTEP &&
	    ev->replica == KM_REPLICA_UPTODATE &&
	    ev->generation == sm->generation) {
		sm->conn = KM_CONN_CONNECTED;
		sm->repl = KM_REPL_LOCKSTEP;
		return 0;
	}
	if (sm->role == KM_ROLE_SECONDARY &&
	    peer_lost_its_copy(sm, ev, was_primary)) {
		note(sm, "our Primary's copy no longer runs: taking over");
		peer_stopped_its_copy(sm, act);
		return 0;
	}
	if (sm->role == KM_ROLE_SECONDARY)
		return secondary_sees_state(sm, ev, act);
	return 0;
}

static int on_peer_protect(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			   struct km_vmsm_actions *act)
{
	if (sm->role == KM_ROLE_PRIMARY)
		return refuse(
			sm, -EEXIST,
			"peer asked us to be its Secondary but we are Primary");
	if (sm->pending)
		return refuse(sm, -EBUSY,
			      "peer asked for protection while %s is running",
			      km_backend_action_name(sm->pending));
	if (ev->generation < sm->generation)
		return refuse(
			sm, -ESTALE,
			"refused to protect generation %llu: ours is %llu",
			(unsigned long long)ev->generation,
			(unsigned long long)sm->generation);
	sm->generation = ev->generation;
	sm->peer_generation = ev->generation;
	sm->peer_role = sm->peer_last_role = KM_ROLE_PRIMARY;
	sm->peer_fault = false;
	sm->protected = true;
	sm->replica = KM_REPLICA_INCONSISTENT;
	sm->repl = KM_REPL_SYNC_TARGET;
	sm->conn = KM_CONN_CONNECTING;
	if (sm->fence == KM_FENCE_PENDING)
		act->flags |= KM_ACT_FENCE_CANCEL;
	sm->fence = KM_FENCE_NONE;
	sm->reason[0] = '\0';
	act->flags |= KM_ACT_PERSIST;
	backend(act, sm, KM_BACKEND_START_REPLICA);
	return 0;
}

static void drop_protection(struct km_vmsm *sm)
{
	sm->protected = false;
	sm->suspended = false;
	sm->conn = KM_CONN_STANDALONE;
	sm->repl = KM_REPL_OFF;
}

static int on_peer_unprotect(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			     struct km_vmsm_actions *act)
{
	(void)ev;
	if (!sm->protected)
		return 0;
	if (sm->resuming) {
		/* Not protected any more, but still unknown whether the peer
		 * promoted meanwhile: stay frozen until its state says. */
		sm->protected = false;
		sm->conn = KM_CONN_STANDALONE;
		act->flags |= KM_ACT_BROADCAST;
		try_resume(sm, act);
		return 0;
	}
	drop_protection(sm);
	act->flags |= KM_ACT_BROADCAST;
	if (sm->role == KM_ROLE_SECONDARY) {
		sm->replica = KM_REPLICA_OUTDATED;
		act->flags |= KM_ACT_PERSIST;
		if (!sm->pending)
			backend(act, sm, KM_BACKEND_STOP);
	}
	return 0;
}

static int on_peer_handover(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			    struct km_vmsm_actions *act)
{
	if (sm->role != KM_ROLE_SECONDARY || sm->pending)
		return refuse(sm, -EPERM, "handover refused: we are %s%s",
			      km_role_name(sm->role),
			      sm->pending ? " and busy" : "");
	if (!sm->quorate)
		return refuse(sm, -ENOLINK, "handover refused: not quorate");
	if (ev->generation != sm->generation)
		return refuse(
			sm, -ESTALE,
			"handover from generation %llu refused: ours is %llu",
			(unsigned long long)ev->generation,
			(unsigned long long)sm->generation);
	if (sm->replica != KM_REPLICA_UPTODATE || sm->repl != KM_REPL_LOCKSTEP)
		return refuse(sm, -EPERM,
			      "handover refused: replica %s, replication %s",
			      km_replica_name(sm->replica),
			      km_repl_name(sm->repl));
	sm->peer_role = sm->peer_last_role = KM_ROLE_SECONDARY;
	note(sm, "switchover: peer demoted, promoting");
	promote(sm, act, false);
	return 0;
}

static int on_peer_fault(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			 struct km_vmsm_actions *act)
{
	bool was_primary = sm->peer_role == KM_ROLE_PRIMARY ||
			   sm->peer_last_role == KM_ROLE_PRIMARY;

	if (ev->generation < sm->generation)
		return refuse(sm, -ESTALE,
			      "ignored a fault report from generation %llu",
			      (unsigned long long)ev->generation);
	act->flags |= KM_ACT_BROADCAST;
	sm->peer_replica = KM_REPLICA_OUTDATED;
	if (sm->resuming && ev->generation > sm->generation) {
		/* It promoted while we were away, then faulted. */
		if (!sm->pending)
			stale_stop(sm, act, ev->generation);
		return 0;
	}
	if (sm->role == KM_ROLE_PRIMARY) {
		note(sm, "Secondary reported a fault: running unprotected");
		drop_protection(sm);
		sm->resuming = false;
		return 0;
	}
	if (was_primary)
		peer_stopped_its_copy(sm, act);
	return 0;
}

static bool fence_rc_ok(const struct km_vmsm *sm, int rc)
{
	/* Outdating the peer's replica is enough to protect a Primary from a
	 * lost Secondary, but a lost Primary may still be running the VM:
	 * only a node that is off (7) can be taken over from. */
	if (rc == KM_FENCE_RC_PEER_FENCED)
		return true;
	return sm->role == KM_ROLE_PRIMARY &&
	       (rc == KM_FENCE_RC_PEER_OUTDATED ||
		rc == KM_FENCE_RC_PEER_INCONSISTENT);
}

/* A definite answer is final; a device that did not answer may next time. */
static bool fence_rc_retryable(int rc)
{
	return rc != KM_FENCE_RC_PEER_INCONSISTENT &&
	       rc != KM_FENCE_RC_PEER_OUTDATED &&
	       rc != KM_FENCE_RC_PEER_PRIMARY && rc != KM_FENCE_RC_PEER_FENCED;
}

static void fence_failed(struct km_vmsm *sm, struct km_vmsm_actions *act,
			 int rc)
{
	const char *then = sm->role == KM_ROLE_PRIMARY ? "VM stays frozen" :
							 "not promoting";

	if (fence_rc_retryable(rc) &&
	    sm->fence_attempt < sm->policy.fence_retries) {
		sm->fence_attempt++;
		note(sm,
		     "fence-peer handler failed (exit %d: %s): retry %u of %u in %u ms",
		     rc, km_fence_rc_meaning(rc), sm->fence_attempt,
		     sm->policy.fence_retries, sm->policy.fence_retry_ms);
		act->flags |= KM_ACT_FENCE;
		act->fence_delay_ms = sm->policy.fence_retry_ms;
		return;
	}
	sm->fence = KM_FENCE_FAILED;
	if (sm->fence_attempt)
		note(sm, "fence-peer handler failed (exit %d: %s) %u times: %s",
		     rc, km_fence_rc_meaning(rc), sm->fence_attempt + 1, then);
	else
		note(sm, "fence-peer handler failed (exit %d: %s): %s", rc,
		     km_fence_rc_meaning(rc), then);
}

static int on_fence_result(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			   struct km_vmsm_actions *act)
{
	if (sm->fence != KM_FENCE_PENDING)
		return 0; /* cancelled: the peer came back meanwhile */
	sm->fence_rc = ev->code;
	act->flags |= KM_ACT_BROADCAST;
	if (!fence_rc_ok(sm, ev->code)) {
		fence_failed(sm, act, ev->code);
		return 0;
	}
	sm->fence = KM_FENCE_DONE;
	if (sm->resuming) {
		sm->peer_replica = KM_REPLICA_OUTDATED;
		try_resume(sm, act);
		return 0;
	}
	if (sm->role == KM_ROLE_PRIMARY) {
		note(sm, "Secondary fenced (exit %d): running unprotected",
		     ev->code);
		drop_protection(sm);
		sm->peer_replica = KM_REPLICA_OUTDATED;
		return 0;
	}
	try_takeover(sm, act);
	return 0;
}

static void promoted(struct km_vmsm *sm, struct km_vmsm_actions *act)
{
	sm->role = KM_ROLE_PRIMARY;
	sm->replica = KM_REPLICA_UPTODATE;
	sm->suspended = false;
	act->flags |= KM_ACT_BROADCAST | KM_ACT_PERSIST;
	if (sm->takeover)
		act->flags |= KM_ACT_BLACKBOX;
	else
		sm->reason[0] = '\0';
	sm->takeover = false;
	if (sm->protected && sm->peer_present) {
		sm->conn = KM_CONN_CONNECTING;
		sm->repl = KM_REPL_SYNC_SOURCE;
		send_msg(act, KM_MSG_PROTECT);
	} else {
		drop_protection(sm);
	}
}

static void backend_ok(struct km_vmsm *sm, enum km_backend_action a,
		       struct km_vmsm_actions *act)
{
	switch (a) {
	case KM_BACKEND_START_REPLICA:
		if (!sm->peer_present || !sm->protected) {
			note(sm,
			     "the sync source went away before the initial sync completed");
			sm->repl = KM_REPL_OFF;
			break;
		}
		sm->replica = KM_REPLICA_UPTODATE;
		sm->repl = KM_REPL_LOCKSTEP;
		sm->conn = KM_CONN_CONNECTED;
		act->flags |= KM_ACT_PERSIST;
		break;
	case KM_BACKEND_PROMOTE:
		promoted(sm, act);
		break;
	case KM_BACKEND_DEMOTE:
		sm->role = KM_ROLE_SECONDARY;
		act->flags |= KM_ACT_PERSIST;
		if (sm->switching)
			send_msg(act, KM_MSG_HANDOVER);
		sm->switching = false;
		break;
	default:
		break;
	}
}

/*
 * The restored Primary's probe: 0, the VM runs here; 7, it does not (the
 * host rebooted, or it was stopped meanwhile). Any other answer is no answer,
 * and the safe guess is that it runs: claiming Secondary while it does
 * could let the peer start a second copy.
 */
static void probe_done(struct km_vmsm *sm, struct km_vmsm_actions *act,
		       int code)
{
	if (code != KM_PROBE_NOT_RUNNING) {
		if (code)
			note(sm,
			     "restarted as Primary; the backend probe failed (status %d): assuming the VM runs here",
			     code);
		try_resume(sm, act);
		return;
	}
	note(sm,
	     "restarted as Primary but the VM no longer runs here: replica Outdated");
	sm->role = KM_ROLE_SECONDARY;
	sm->replica = KM_REPLICA_OUTDATED;
	sm->resuming = false;
	act->flags |= KM_ACT_PERSIST;
	drop_protection(sm);
}

static int on_backend_done(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			   struct km_vmsm_actions *act)
{
	if (!sm->pending || ev->action != sm->pending)
		return refuse(sm, -EINVAL,
			      "unexpected backend completion of %s",
			      km_backend_action_name(ev->action));
	sm->pending = KM_BACKEND_NONE;
	act->flags |= KM_ACT_BROADCAST;
	if (ev->action == KM_BACKEND_PROBE) {
		probe_done(sm, act, ev->code);
		return 0;
	}
	if (ev->code) {
		if (ev->action == KM_BACKEND_START_REPLICA) {
			sm->repl = KM_REPL_OFF;
			sm->conn = KM_CONN_STANDALONE;
		}
		sm->switching = sm->takeover = false;
		note(sm, "backend action %s failed (status %d)",
		     km_backend_action_name(ev->action), ev->code);
		return 0;
	}
	backend_ok(sm, ev->action, act);
	return 0;
}

static int on_local_fault(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			  struct km_vmsm_actions *act)
{
	(void)ev;
	if (sm->role != KM_ROLE_PRIMARY && !sm->protected)
		return refuse(sm, -EPERM, "no running copy of the VM here");
	note(sm, "local %s faulted: stopped and reported to the peer",
	     sm->role == KM_ROLE_PRIMARY ? "VM" : "replica");
	if (sm->role == KM_ROLE_PRIMARY)
		act->flags |= KM_ACT_BLACKBOX;
	sm->role = KM_ROLE_SECONDARY;
	sm->replica = KM_REPLICA_OUTDATED;
	sm->resuming = false;
	drop_protection(sm);
	send_msg(act, KM_MSG_FAULT);
	act->flags |= KM_ACT_PERSIST;
	sm->pending = KM_BACKEND_NONE;
	backend(act, sm, KM_BACKEND_STOP);
	return 0;
}

static int admin_common(struct km_vmsm *sm)
{
	if (sm->pending)
		return refuse(sm, -EBUSY, "busy: backend action %s is running",
			      km_backend_action_name(sm->pending));
	if (sm->resuming)
		return refuse(
			sm, -EBUSY,
			"restarted as Primary: waiting to learn whether the peer promoted meanwhile");
	if (!sm->quorate)
		return refuse(sm, -ENOLINK, "this node is not quorate");
	if (!sm->peer_present)
		return refuse(sm, -EHOSTUNREACH,
			      "the peer's kemarid is not in the group");
	return 0;
}

static int on_admin_protect(struct km_vmsm *sm, const struct km_vmsm_event *ev,
			    struct km_vmsm_actions *act)
{
	int r = admin_common(sm);

	if (r)
		return r;
	if (sm->protected)
		return refuse(sm, -EALREADY, "already protected");
	if (sm->peer_role == KM_ROLE_PRIMARY)
		return refuse(
			sm, -EEXIST,
			"the VM is Primary on the peer: run protect there");
	if (sm->role == KM_ROLE_PRIMARY) {
		sm->protected = true;
		promoted(sm, act);
		return 0;
	}
	if (sm->replica == KM_REPLICA_OUTDATED ||
	    sm->peer_generation > sm->generation)
		return refuse(
			sm, -ESTALE,
			"our copy is Outdated (peer generation %llu, ours %llu): protect from the peer",
			(unsigned long long)sm->peer_generation,
			(unsigned long long)sm->generation);
	(void)ev;
	sm->protected = true;
	sm->reason[0] = '\0';
	promote(sm, act, false);
	return 0;
}

static int on_admin_unprotect(struct km_vmsm *sm,
			      const struct km_vmsm_event *ev,
			      struct km_vmsm_actions *act)
{
	if (!sm->protected && !sm->suspended)
		return refuse(sm, -EALREADY, "not protected");
	if (sm->pending)
		return refuse(sm, -EBUSY, "busy: backend action %s is running",
			      km_backend_action_name(sm->pending));
	/* The operator may release a restored Primary whose peer is absent
	 * (no fencing: they vouch it is down), never one whose peer is here
	 * and may have promoted. */
	if (sm->resuming && sm->peer_present)
		return refuse(
			sm, -EBUSY,
			"restarted as Primary: waiting for the peer's state");
	(void)ev;
	sm->resuming = false;
	send_msg(act, KM_MSG_UNPROTECT);
	drop_protection(sm);
	act->flags |= KM_ACT_BROADCAST | KM_ACT_FENCE_CANCEL;
	sm->fence = KM_FENCE_NONE;
	sm->reason[0] = '\0';
	if (sm->role == KM_ROLE_SECONDARY) {
		sm->replica = KM_REPLICA_OUTDATED;
		act->flags |= KM_ACT_PERSIST;
		backend(act, sm, KM_BACKEND_STOP);
	}
	return 0;
}

static int on_admin_switchover(struct km_vmsm *sm,
			       const struct km_vmsm_event *ev,
			       struct km_vmsm_actions *act)
{
	int r = admin_common(sm);

	(void)ev;
	if (r)
		return r;
	if (sm->role != KM_ROLE_PRIMARY)
		return refuse(
			sm, -EPERM,
			"switchover runs on the Primary's node; here the VM is %s",
			km_role_name(sm->role));
	if (sm->repl != KM_REPL_LOCKSTEP || sm->conn != KM_CONN_CONNECTED ||
	    sm->peer_replica != KM_REPLICA_UPTODATE)
		return refuse(
			sm, -EPERM,
			"switchover needs Connected, Lockstep and an UpToDate peer (have %s, %s, %s)",
			km_conn_name(sm->conn), km_repl_name(sm->repl),
			km_replica_name(sm->peer_replica));
	sm->switching = true;
	note(sm, "switchover: final epoch and demote");
	backend(act, sm, KM_BACKEND_DEMOTE);
	return 0;
}

static int on_admin_reprotect(struct km_vmsm *sm,
			      const struct km_vmsm_event *ev,
			      struct km_vmsm_actions *act)
{
	int r = admin_common(sm);

	(void)ev;
	if (r)
		return r;
	if (sm->role != KM_ROLE_PRIMARY)
		return refuse(
			sm, -EPERM,
			"reprotect runs on the Primary's node; here the VM is %s",
			km_role_name(sm->role));
	if (sm->peer_role == KM_ROLE_PRIMARY)
		return refuse(
			sm, -EEXIST,
			"the peer is Primary too: it cannot be protected");
	if (sm->protected && sm->peer_replica == KM_REPLICA_UPTODATE)
		return refuse(sm, -EALREADY, "already protected and in sync");
	sm->protected = true;
	sm->fence = KM_FENCE_NONE;
	sm->reason[0] = '\0';
	promoted(sm, act);
	return 0;
}

static const handler_fn handlers[KM_EV__COUNT] = {
	[KM_EV_QUORATE] = on_quorate,
	[KM_EV_INQUORATE] = on_inquorate,
	[KM_EV_MEMBERSHIP_LOST] = on_membership_lost,
	[KM_EV_PEER_JOIN] = on_peer_join,
	[KM_EV_PEER_LEAVE] = on_peer_leave,
	[KM_EV_PEER_ABSENT] = on_peer_absent,
	[KM_EV_PEER_STATE] = on_peer_state,
	[KM_EV_PEER_PROTECT] = on_peer_protect,
	[KM_EV_PEER_UNPROTECT] = on_peer_unprotect,
	[KM_EV_PEER_HANDOVER] = on_peer_handover,
	[KM_EV_PEER_FAULT] = on_peer_fault,
	[KM_EV_FENCE_RESULT] = on_fence_result,
	[KM_EV_BACKEND_DONE] = on_backend_done,
	[KM_EV_LOCAL_FAULT] = on_local_fault,
	[KM_EV_ADMIN_PROTECT] = on_admin_protect,
	[KM_EV_ADMIN_UNPROTECT] = on_admin_unprotect,
	[KM_EV_ADMIN_SWITCHOVER] = on_admin_switchover,
	[KM_EV_ADMIN_REPROTECT] = on_admin_reprotect,
};

int km_vmsm_handle(struct km_vmsm *sm, const struct km_vmsm_event *ev,
		   struct km_vmsm_actions *act)
{
	memset(act, 0, sizeof(*act));
	if ((unsigned int)ev->type >= KM_EV__COUNT)
		return refuse(sm, -EINVAL, "unknown event %d", (int)ev->type);
	return handlers[ev->type](sm, ev, act);
}

void km_vmsm_init(struct km_vmsm *sm, const char *name, uint64_t generation,
		  enum km_replica replica, const struct km_vmsm_policy *policy)
{
	memset(sm, 0, sizeof(*sm));
	snprintf(sm->name, sizeof(sm->name), "%s", name);
	sm->role = KM_ROLE_SECONDARY;
	sm->replica = replica;
	sm->generation = generation;
	sm->policy = *policy;
}

void km_vmsm_set_policy(struct km_vmsm *sm, const struct km_vmsm_policy *p)
{
	sm->policy = *p;
}

void km_vmsm_save(const struct km_vmsm *sm, struct km_vmsm_saved *out)
{
	memset(out, 0, sizeof(*out));
	out->generation = sm->generation;
	out->role = sm->role;
	out->replica = sm->replica;
	out->protected = sm->protected;
}

void km_vmsm_restore(struct km_vmsm *sm, const struct km_vmsm_saved *saved,
		     struct km_vmsm_actions *act)
{
	memset(act, 0, sizeof(*act));
	sm->generation = saved->generation;
	sm->replica = saved->replica;
	if (saved->role != KM_ROLE_PRIMARY)
		return;
	/* The VM may run here still (kemarid alone was restarted): keep it
	 * frozen until we know it does and that nobody promoted meanwhile. */
	sm->role = KM_ROLE_PRIMARY;
	sm->replica = KM_REPLICA_UPTODATE;
	sm->protected = saved->protected;
	sm->conn = saved->protected ? KM_CONN_CONNECTING : KM_CONN_STANDALONE;
	sm->suspended = true;
	sm->resuming = true;
	note(sm,
	     "restarted as Primary: frozen until the VM is found running here and the peer did not promote");
	backend(act, sm, KM_BACKEND_PROBE);
}

int km_vmsm_check_generation(const struct km_vmsm *sm, uint64_t generation)
{
	return generation < sm->generation ? -ESTALE : 0;
}

#define NAME(tab, v)                                                           \
	((unsigned int)(v) < sizeof(tab) / sizeof(tab[0]) && tab[v] ? tab[v] : \
								      "?")

const char *km_role_name(enum km_role r)
{
	static const char *const n[] = { "Unknown", "Secondary", "Primary" };

	return NAME(n, r);
}

const char *km_replica_name(enum km_replica r)
{
	static const char *const n[] = { "DUnknown", "Inconsistent", "Outdated",
					 "UpToDate" };

	return NAME(n, r);
}

const char *km_conn_name(enum km_conn c)
{
	static const char *const n[] = { "StandAlone", "Connecting",
					 "Connected" };

	return NAME(n, c);
}

const char *km_repl_name(enum km_repl r)
{
	static const char *const n[] = { "Off", "SyncSource", "SyncTarget",
					 "Lockstep" };

	return NAME(n, r);
}

const char *km_fence_name(enum km_fence f)
{
	static const char *const n[] = { "none", "pending", "done", "failed" };

	return NAME(n, f);
}

const char *km_backend_action_name(enum km_backend_action a)
{
	static const char *const n[] = { "none",   "start-replica", "promote",
					 "demote", "stop",	    "probe" };

	return NAME(n, a);
}

const char *km_vmsm_event_name(enum km_vmsm_event_type t)
{
	static const char *const n[] = {
		[KM_EV_QUORATE] = "quorate",
		[KM_EV_INQUORATE] = "inquorate",
		[KM_EV_MEMBERSHIP_LOST] = "membership-lost",
		[KM_EV_PEER_JOIN] = "peer-join",
		[KM_EV_PEER_LEAVE] = "peer-leave",
		[KM_EV_PEER_ABSENT] = "peer-absent",
		[KM_EV_PEER_STATE] = "peer-state",
		[KM_EV_PEER_PROTECT] = "peer-protect",
		[KM_EV_PEER_UNPROTECT] = "peer-unprotect",
		[KM_EV_PEER_HANDOVER] = "peer-handover",
		[KM_EV_PEER_FAULT] = "peer-fault",
		[KM_EV_FENCE_RESULT] = "fence-result",
		[KM_EV_BACKEND_DONE] = "backend-done",
		[KM_EV_LOCAL_FAULT] = "local-fault",
		[KM_EV_ADMIN_PROTECT] = "protect",
		[KM_EV_ADMIN_UNPROTECT] = "unprotect",
		[KM_EV_ADMIN_SWITCHOVER] = "switchover",
		[KM_EV_ADMIN_REPROTECT] = "reprotect",
	};

	return NAME(n, t);
}

const char *km_fence_rc_meaning(int rc)
{
	switch (rc) {
	case KM_FENCE_RC_PEER_INCONSISTENT:
		return "peer was Inconsistent";
	case KM_FENCE_RC_PEER_OUTDATED:
		return "peer outdated, not powered off";
	case KM_FENCE_RC_PEER_UNREACHABLE:
		return "peer unreachable";
	case KM_FENCE_RC_PEER_PRIMARY:
		return "peer refused: it is Primary";
	case KM_FENCE_RC_PEER_FENCED:
		return "peer fenced";
	case -1:
		return "handler timed out or could not run";
	default:
		return "handler failed";
	}
}
