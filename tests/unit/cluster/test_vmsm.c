// SPDX-License-Identifier: GPL-2.0
/*
 * The per-VM state machine: scenarios driven through a two-node simulator
 * (messages, backend completions and fence results are delivered exactly as
 * kemarid would), and a matrix of every event in every state.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "km_vmsm.h"

#define DELAY_MS 3000

static const struct km_vmsm_policy plain_policy = { .fencing = true };

/* ---- a two-node simulator ------------------------------------------------ */

struct node {
	struct km_vmsm sm;
	bool alive;
	int backend_status; /* what the backend returns: 0 = success */
	int fences; /* KM_ACT_FENCE seen */
	uint32_t last_delay;
	int cancels;
	int blackboxes;
	int persists;
};

struct qev {
	int to;
	struct km_vmsm_event ev;
};

static struct node nodes[2];
static bool linked;
static bool stale_copy_allowed; /* a test that forces a stale Primary */
static struct qev queue[64];
static int qhead, qtail;

static void push(int to, struct km_vmsm_event ev)
{
	cr_assert(qtail < 64, "event queue overflow: a message loop?");
	queue[qtail].to = to;
	queue[qtail++].ev = ev;
}

static struct km_vmsm_event state_of(const struct km_vmsm *sm)
{
	struct km_vmsm_event ev = { .type = KM_EV_PEER_STATE,
				    .generation = sm->generation,
				    .role = sm->role,
				    .replica = sm->replica,
				    .repl = sm->repl };
	return ev;
}

static enum km_vmsm_event_type msg_event(enum km_peer_msg m)
{
	switch (m) {
	case KM_MSG_PROTECT:
		return KM_EV_PEER_PROTECT;
	case KM_MSG_UNPROTECT:
		return KM_EV_PEER_UNPROTECT;
	case KM_MSG_HANDOVER:
		return KM_EV_PEER_HANDOVER;
	default:
		return KM_EV_PEER_FAULT;
	}
}

static void carry_out(int i, const struct km_vmsm_actions *a)
{
	struct node *n = &nodes[i];
	int peer = !i;

	if (a->flags & KM_ACT_SEND && linked) {
		struct km_vmsm_event ev = { .type = msg_event(a->msg),
					    .generation = n->sm.generation };
		push(peer, ev);
	}
	if (a->flags & KM_ACT_BROADCAST && linked)
		push(peer, state_of(&n->sm));
	if (a->flags & KM_ACT_BACKEND) {
		struct km_vmsm_event ev = { .type = KM_EV_BACKEND_DONE,
					    .action = a->backend,
					    .code = n->backend_status };
		push(i, ev);
	}
	if (a->flags & KM_ACT_FENCE) {
		cr_assert(n->sm.policy.fencing, "fenced without a handler");
		n->fences++;
		n->last_delay = a->fence_delay_ms;
	}
	n->cancels += !!(a->flags & KM_ACT_FENCE_CANCEL);
	n->blackboxes += !!(a->flags & KM_ACT_BLACKBOX);
	n->persists += !!(a->flags & KM_ACT_PERSIST);
}

/* A Primary restored after a restart is frozen until it knows nobody
 * promoted meanwhile: it is a claim under review, not a running copy. */
static int primaries(void)
{
	int i, p = 0;

	for (i = 0; i < 2; i++)
		p += nodes[i].alive && nodes[i].sm.role == KM_ROLE_PRIMARY &&
		     !nodes[i].sm.resuming;
	return p;
}

static int deliver(int i, struct km_vmsm_event ev)
{
	struct km_vmsm_actions a;
	uint64_t gen = nodes[i].sm.generation;
	int r;

	if (!nodes[i].alive)
		return 0;
	r = km_vmsm_handle(&nodes[i].sm, &ev, &a);
	cr_assert_geq(nodes[i].sm.generation, gen, "generation went back");
	cr_assert(!nodes[i].sm.resuming || nodes[i].sm.suspended,
		  "a restored Primary ran before it knew");
	carry_out(i, &a);
	cr_assert(stale_copy_allowed || primaries() <= 1,
		  "two Primaries after %s on node %d",
		  km_vmsm_event_name(ev.type), i);
	return r;
}

static void pump(void)
{
	while (qhead < qtail) {
		struct qev q = queue[qhead++];

		deliver(q.to, q.ev);
	}
	qhead = qtail = 0;
}

static int send_ev(int i, enum km_vmsm_event_type t)
{
	struct km_vmsm_event ev = { .type = t };
	int r = deliver(i, ev);

	pump();
	return r;
}

static int fence_result(int i, int code)
{
	struct km_vmsm_event ev = { .type = KM_EV_FENCE_RESULT, .code = code };
	int r = deliver(i, ev);

	pump();
	return r;
}

static void boot(int i, uint64_t gen, enum km_replica replica)
{
	struct km_vmsm_policy p = { .fencing = true,
				    .fence_delay_ms = i ? DELAY_MS : 0,
				    .fence_retries = 0 };

	memset(&nodes[i], 0, sizeof(nodes[i]));
	km_vmsm_init(&nodes[i].sm, "web1", gen, replica, &p);
	nodes[i].alive = true;
}

static void join(void)
{
	linked = true;
	send_ev(0, KM_EV_QUORATE);
	send_ev(1, KM_EV_QUORATE);
	send_ev(0, KM_EV_PEER_JOIN);
	send_ev(1, KM_EV_PEER_JOIN);
}

/* The peer's kemarid vanished from the CPG group (killed, partitioned). */
static void leave(int i)
{
	struct km_vmsm_event ev = { .type = KM_EV_PEER_LEAVE };

	deliver(i, ev);
}

/* Node 0 runs the VM and protects it on node 1. */
static void protected_pair(void)
{
	boot(0, 0, KM_REPLICA_INCONSISTENT);
	boot(1, 0, KM_REPLICA_INCONSISTENT);
	join();
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_PROTECT), 0, "%s",
		     nodes[0].sm.reason);
}

static void assert_lockstep(int p)
{
	const struct km_vmsm *a = &nodes[p].sm, *b = &nodes[!p].sm;

	cr_assert_eq(a->role, KM_ROLE_PRIMARY);
	cr_assert_eq(a->conn, KM_CONN_CONNECTED);
	cr_assert_eq(a->repl, KM_REPL_LOCKSTEP);
	cr_assert_eq(a->peer_replica, KM_REPLICA_UPTODATE);
	cr_assert_eq(b->role, KM_ROLE_SECONDARY);
	cr_assert_eq(b->replica, KM_REPLICA_UPTODATE);
	cr_assert_eq(b->repl, KM_REPL_LOCKSTEP);
	cr_assert_eq(b->conn, KM_CONN_CONNECTED);
	cr_assert_eq(a->generation, b->generation);
}

static void reset(void)
{
	memset(nodes, 0, sizeof(nodes));
	qhead = qtail = 0;
	linked = false;
	stale_copy_allowed = false;
}

TestSuite(vmsm, .init = reset);

/* ---- scenarios ----------------------------------------------------------- */

Test(vmsm, protect_reaches_lockstep)
{
	protected_pair();
	assert_lockstep(0);
	cr_assert_eq(nodes[0].sm.generation, 1);
	cr_assert_eq(nodes[0].blackboxes, 0, "a protect is not a failover");
	cr_assert_gt(nodes[1].persists, 0);
}

Test(vmsm, failover_after_fence)
{
	protected_pair();
	nodes[0].alive = linked = false;
	leave(1);
	cr_assert_eq(nodes[1].fences, 1);
	cr_assert_eq(nodes[1].last_delay, DELAY_MS);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY,
		     "no promotion before fencing");
	cr_assert_eq(nodes[1].sm.peer_role, KM_ROLE_UNKNOWN);
	cr_assert_eq(nodes[1].sm.conn, KM_CONN_CONNECTING);
	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.generation, 2);
	cr_assert_eq(nodes[1].sm.conn, KM_CONN_STANDALONE,
		     "unprotected after failover");
	cr_assert_not(nodes[1].sm.protected);
	cr_assert_eq(nodes[1].blackboxes, 1);
}

Test(vmsm, fence_failure_blocks_promotion)
{
	protected_pair();
	nodes[0].alive = linked = false;
	leave(1);
	fence_result(1, 1);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_FAILED);
	cr_assert(strstr(nodes[1].sm.reason,
			 "fence-peer handler failed (exit 1"),
		  "%s", nodes[1].sm.reason);
	cr_assert_not(km_vmsm_may_promote(&nodes[1].sm));
	/* Quorum changes do not turn a failed fence into a promotion. */
	send_ev(1, KM_EV_INQUORATE);
	send_ev(1, KM_EV_QUORATE);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
}

Test(vmsm, outdate_is_not_enough_to_take_over)
{
	protected_pair();
	nodes[0].alive = linked = false;
	leave(1);
	fence_result(1, KM_FENCE_RC_PEER_OUTDATED);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert(strstr(nodes[1].sm.reason, "exit 4"), "%s",
		  nodes[1].sm.reason);
}

Test(vmsm, primary_survives_lost_secondary_with_outdate)
{
	protected_pair();
	nodes[1].alive = linked = false;
	leave(0);
	cr_assert(nodes[0].sm.suspended, "frozen until fenced");
	cr_assert_eq(nodes[0].last_delay, 0, "the Primary fences at once");
	fence_result(0, KM_FENCE_RC_PEER_OUTDATED);
	cr_assert_not(nodes[0].sm.suspended);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[0].sm.conn, KM_CONN_STANDALONE);
	cr_assert_eq(nodes[0].sm.generation, 1,
		     "no promotion, no new generation");
}

Test(vmsm, secondary_back_before_fence_resumes_protection)
{
	protected_pair();
	linked = false;
	leave(0);
	cr_assert(nodes[0].sm.suspended);
	/* The Secondary's kemarid restarts: same state on disk, no VM. */
	boot(1, 1, KM_REPLICA_UPTODATE);
	linked = true;
	send_ev(1, KM_EV_QUORATE);
	send_ev(0, KM_EV_PEER_JOIN);
	send_ev(1, KM_EV_PEER_JOIN);
	cr_assert_eq(nodes[0].cancels, 1);
	fence_result(0, KM_FENCE_RC_PEER_OUTDATED); /* late, ignored */
	cr_assert_not(nodes[0].sm.suspended, "still frozen with the peer back");
	assert_lockstep(0);
	cr_assert_eq(nodes[0].sm.generation, 1);
}

Test(vmsm, fenced_but_not_quorate_waits_for_quorum)
{
	protected_pair();
	nodes[0].alive = linked = false;
	send_ev(1, KM_EV_INQUORATE);
	leave(1);
	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert(strstr(nodes[1].sm.reason, "not quorate"), "%s",
		  nodes[1].sm.reason);
	send_ev(1, KM_EV_QUORATE);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
}

Test(vmsm, peer_back_during_fence_delay_cancels)
{
	protected_pair();
	linked = false;
	leave(1);
	linked = true;
	send_ev(1, KM_EV_PEER_JOIN);
	cr_assert_eq(nodes[1].cancels, 1);
	fence_result(1, KM_FENCE_RC_PEER_FENCED); /* late, ignored */
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(primaries(), 1);
}

/*
 * A partition: each side sees the other leave and fences it. Whoever's
 * handler succeeds first kills the other (a dead node's handler cannot
 * succeed). Every ordering ends with at most one Primary.
 */
static void partition(int first, int first_rc, int second_rc)
{
	protected_pair();
	linked = false;
	leave(0);
	leave(1);
	/* A handler that exits 7 has powered the other node off first. */
	if (first_rc == KM_FENCE_RC_PEER_FENCED)
		nodes[!first].alive = false;
	fence_result(first, first_rc);
	if (second_rc == KM_FENCE_RC_PEER_FENCED)
		nodes[first].alive = false;
	fence_result(!first, second_rc);
	cr_assert_leq(primaries(), 1);
}

Test(vmsm, partition_primary_wins)
{
	partition(0, KM_FENCE_RC_PEER_FENCED, KM_FENCE_RC_PEER_UNREACHABLE);
	cr_assert(nodes[0].alive);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[0].sm.generation, 1);
}

Test(vmsm, partition_secondary_wins)
{
	partition(1, KM_FENCE_RC_PEER_FENCED, KM_FENCE_RC_PEER_UNREACHABLE);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.generation, 2);
}

Test(vmsm, partition_both_fences_fail)
{
	partition(1, 1, 1);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert(nodes[0].sm.suspended,
		  "frozen: the replica may be promoted by hand");
}

Test(vmsm, switchover_is_demote_then_promote)
{
	protected_pair();
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_SWITCHOVER), 0, "%s",
		     nodes[0].sm.reason);
	assert_lockstep(1);
	cr_assert_eq(nodes[1].sm.generation, 2);
	cr_assert_eq(nodes[0].blackboxes + nodes[1].blackboxes, 0);
	/* and back */
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_SWITCHOVER), 0);
	assert_lockstep(0);
	cr_assert_eq(nodes[0].sm.generation, 3);
}

Test(vmsm, switchover_refusals)
{
	protected_pair();
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_SWITCHOVER), -EPERM);
	cr_assert(strstr(nodes[1].sm.reason, "Primary's node"));
	send_ev(0, KM_EV_INQUORATE);
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_SWITCHOVER), -ENOLINK);
	send_ev(0, KM_EV_QUORATE);
	nodes[1].alive = linked = false;
	leave(0);
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_SWITCHOVER), -EHOSTUNREACH);
}

Test(vmsm, failed_demote_keeps_primary)
{
	protected_pair();
	nodes[0].backend_status = 1;
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_SWITCHOVER), 0);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert(strstr(nodes[0].sm.reason, "demote failed"), "%s",
		  nodes[0].sm.reason);
}

Test(vmsm, reprotect_after_failover)
{
	protected_pair();
	nodes[0].alive = linked = false;
	leave(1);
	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	/* Node 0 reboots with what it saved: Primary's data, generation 1. */
	boot(0, 1, KM_REPLICA_UPTODATE);
	join();
	cr_assert_eq(nodes[0].sm.replica, KM_REPLICA_OUTDATED);
	cr_assert_eq(nodes[0].sm.generation, 2);
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_PROTECT), -EEXIST);
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_REPROTECT), 0, "%s",
		     nodes[1].sm.reason);
	assert_lockstep(1);
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_REPROTECT), -EALREADY);
}

Test(vmsm, stale_primary_stops_itself)
{
	protected_pair();
	nodes[0].alive = linked = false;
	leave(1);
	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	/* The old Primary comes back still believing it is Primary. */
	nodes[0].alive = true;
	stale_copy_allowed = true;
	struct km_vmsm_event stale = state_of(&nodes[0].sm);
	cr_assert_eq(deliver(1, stale), -ESTALE);
	cr_assert(strstr(nodes[1].sm.reason, "stale generation 1 < 2"));
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(deliver(0, state_of(&nodes[1].sm)), 0);
	pump();
	cr_assert_eq(primaries(), 1);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[0].sm.replica, KM_REPLICA_OUTDATED);
}

Test(vmsm, generation_checks)
{
	struct km_vmsm_event ev = { .type = KM_EV_PEER_PROTECT,
				    .generation = 3 };
	struct km_vmsm_actions a;
	struct km_vmsm sm;

	km_vmsm_init(&sm, "web1", 4, KM_REPLICA_UPTODATE, &plain_policy);
	cr_assert_eq(km_vmsm_check_generation(&sm, 3), -ESTALE);
	cr_assert_eq(km_vmsm_check_generation(&sm, 4), 0);
	cr_assert_eq(km_vmsm_check_generation(&sm, 5), 0);
	cr_assert_eq(km_vmsm_handle(&sm, &ev, &a), -ESTALE);
	cr_assert_eq(a.flags, 0);
	ev.type = KM_EV_PEER_HANDOVER;
	cr_assert_eq(km_vmsm_handle(&sm, &ev, &a), -ENOLINK);
	ev.type = KM_EV_PEER_FAULT;
	cr_assert_eq(km_vmsm_handle(&sm, &ev, &a), -ESTALE);
	ev.type = KM_EV_PEER_PROTECT;
	ev.generation = 4;
	cr_assert_eq(km_vmsm_handle(&sm, &ev, &a), 0);
	cr_assert_eq(a.backend, KM_BACKEND_START_REPLICA);
}

Test(vmsm, handover_wrong_generation)
{
	protected_pair();
	struct km_vmsm_event ev = { .type = KM_EV_PEER_HANDOVER,
				    .generation = 7 };

	cr_assert_eq(deliver(1, ev), -ESTALE);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
}

Test(vmsm, split_brain_equal_generation)
{
	struct km_vmsm_event ev;

	protected_pair();
	/* The peer claims Primary at our own generation. */
	ev = state_of(&nodes[0].sm);
	cr_assert_eq(deliver(0, ev), -EEXIST);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[0].sm.conn, KM_CONN_STANDALONE);
	cr_assert(strstr(nodes[0].sm.reason, "split-brain"));
}

Test(vmsm, peer_fault_promotes_without_fencing)
{
	protected_pair();
	cr_assert_eq(send_ev(0, KM_EV_LOCAL_FAULT), 0);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[0].sm.replica, KM_REPLICA_OUTDATED);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.generation, 2);
	cr_assert_eq(nodes[1].fences, 0);
	cr_assert_eq(nodes[0].blackboxes, 1);
	cr_assert_eq(nodes[1].blackboxes, 1);
	/* and it can be protected again on the faulted node */
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_REPROTECT), 0, "%s",
		     nodes[1].sm.reason);
	assert_lockstep(1);
}

Test(vmsm, secondary_fault_leaves_primary_unprotected)
{
	protected_pair();
	cr_assert_eq(send_ev(1, KM_EV_LOCAL_FAULT), 0);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_not(nodes[0].sm.protected);
	cr_assert_eq(nodes[0].sm.peer_replica, KM_REPLICA_OUTDATED);
	cr_assert_eq(nodes[0].blackboxes, 0);
}

Test(vmsm, no_fencing_configured_never_promotes)
{
	protected_pair();
	nodes[1].sm.policy.fencing = false;
	nodes[0].alive = linked = false;
	leave(1);
	cr_assert_eq(nodes[1].fences, 0);
	cr_assert(strstr(nodes[1].sm.reason, "no fence-peer handler"));
	send_ev(1, KM_EV_QUORATE);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
}

Test(vmsm, corosync_restart_is_membership_loss)
{
	protected_pair();
	cr_assert_eq(send_ev(1, KM_EV_MEMBERSHIP_LOST), 0);
	cr_assert_not(nodes[1].sm.quorate);
	cr_assert_eq(nodes[1].sm.conn, KM_CONN_CONNECTING);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	/* reconnected, peer still there */
	send_ev(1, KM_EV_QUORATE);
	send_ev(1, KM_EV_PEER_JOIN);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[1].fences, 0);
}

Test(vmsm, sync_source_lost_mid_sync)
{
	boot(0, 0, KM_REPLICA_INCONSISTENT);
	boot(1, 0, KM_REPLICA_INCONSISTENT);
	join();
	nodes[1].backend_status = 0;
	/* Deliver the protect but lose node 0 before the sync completes. */
	struct km_vmsm_event ev = { .type = KM_EV_PEER_PROTECT,
				    .generation = 1 };
	struct km_vmsm_actions a;
	cr_assert_eq(km_vmsm_handle(&nodes[1].sm, &ev, &a), 0);
	leave(1);
	cr_assert_eq(nodes[1].fences, 0, "Inconsistent cannot take over");
	ev = (struct km_vmsm_event){ .type = KM_EV_BACKEND_DONE,
				     .action = KM_BACKEND_START_REPLICA };
	cr_assert_eq(km_vmsm_handle(&nodes[1].sm, &ev, &a), 0);
	cr_assert_eq(nodes[1].sm.replica, KM_REPLICA_INCONSISTENT);
	cr_assert_eq(nodes[1].sm.repl, KM_REPL_OFF);
}

Test(vmsm, unprotect_both_sides)
{
	protected_pair();
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_UNPROTECT), 0);
	cr_assert_not(nodes[0].sm.protected);
	cr_assert_not(nodes[1].sm.protected);
	cr_assert_eq(nodes[1].sm.replica, KM_REPLICA_OUTDATED);
	cr_assert_eq(nodes[0].sm.conn, KM_CONN_STANDALONE);
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_UNPROTECT), -EALREADY);
	/* an unprotected Secondary never fences or promotes */
	nodes[0].alive = linked = false;
	leave(1);
	cr_assert_eq(nodes[1].fences, 0);
}

Test(vmsm, bad_events)
{
	struct km_vmsm_event ev = { .type = KM_EV__COUNT };
	struct km_vmsm_actions a;
	struct km_vmsm sm;

	km_vmsm_init(&sm, "web1", 0, KM_REPLICA_INCONSISTENT, &plain_policy);
	cr_assert_eq(km_vmsm_handle(&sm, &ev, &a), -EINVAL);
	ev.type = KM_EV_BACKEND_DONE;
	ev.action = KM_BACKEND_PROMOTE;
	cr_assert_eq(km_vmsm_handle(&sm, &ev, &a), -EINVAL,
		     "completion without a pending action");
	cr_assert_str_eq(km_vmsm_event_name(KM_EV_PEER_LEAVE), "peer-leave");
	cr_assert_str_eq(km_role_name(KM_ROLE_UNKNOWN), "Unknown");
	cr_assert_str_eq(km_replica_name(KM_REPLICA_UPTODATE), "UpToDate");
	cr_assert_str_eq(km_conn_name(KM_CONN_STANDALONE), "StandAlone");
	cr_assert_str_eq(km_repl_name(KM_REPL_LOCKSTEP), "Lockstep");
	cr_assert_str_eq(km_role_name((enum km_role)9), "?");
}

/* ---- restarts of kemarid (saved state) ---------------------------------- */

/* Node @i's kemarid restarts with what it saved; its VM may still run. */
static void restart(int i, const struct km_vmsm_saved *saved, int probe_rc)
{
	struct km_vmsm_actions a;

	boot(i, 0, KM_REPLICA_INCONSISTENT);
	nodes[i].backend_status = probe_rc;
	km_vmsm_restore(&nodes[i].sm, saved, &a);
	cr_assert_eq(nodes[i].sm.role, KM_ROLE_PRIMARY);
	cr_assert(nodes[i].sm.suspended && nodes[i].sm.resuming);
	cr_assert(a.flags & KM_ACT_BACKEND);
	cr_assert_eq(a.backend, KM_BACKEND_PROBE);
	carry_out(i, &a);
	pump();
	nodes[i].backend_status = 0;
}

/* The Primary's kemarid stops; the Secondary sees it leave and starts its
 * fence delay. Returns what the Primary had saved. */
static struct km_vmsm_saved primary_kemarid_stops(void)
{
	struct km_vmsm_saved saved;

	protected_pair();
	km_vmsm_save(&nodes[0].sm, &saved);
	cr_assert_eq(saved.role, KM_ROLE_PRIMARY);
	cr_assert(saved.protected);
	cr_assert_eq(saved.generation, 1);
	nodes[0].alive = linked = false; /* kemarid is down, not the VM */
	leave(1);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_PENDING);
	return saved;
}

Test(vmsm, restart_primary_back_within_fence_delay_resumes)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	restart(0, &saved, 0);
	cr_assert(nodes[0].sm.suspended, "ran before hearing from the peer");
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_SWITCHOVER), -EBUSY);
	cr_assert_eq(nodes[0].fences, 0);
	/* CPG delivers the join before any message from the joiner. */
	linked = true;
	send_ev(1, KM_EV_PEER_JOIN);
	cr_assert_eq(nodes[1].cancels, 1,
		     "the Secondary's fence not cancelled");
	send_ev(0, KM_EV_QUORATE);
	send_ev(0, KM_EV_PEER_JOIN);
	fence_result(1, KM_FENCE_RC_PEER_FENCED); /* late, ignored */
	cr_assert_not(nodes[0].sm.resuming);
	assert_lockstep(0);
	cr_assert_eq(nodes[0].sm.generation, 1, "resuming is no promotion");
	cr_assert_eq(nodes[0].blackboxes, 0);
}

Test(vmsm, restart_primary_after_peer_promoted_stops_its_copy)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	/* Too late: the Secondary fenced (exit 7: it believes the node is
	 * off) and promoted, yet the VM still runs there. */
	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.generation, 2);
	restart(0, &saved, 0);
	join();
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[0].sm.replica, KM_REPLICA_OUTDATED);
	cr_assert_eq(nodes[0].sm.generation, 2);
	cr_assert(strstr(nodes[0].sm.reason, "stopping our stale copy"), "%s",
		  nodes[0].sm.reason);
	cr_assert_eq(nodes[0].blackboxes, 1, "the stop is a failover's end");
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_REPROTECT), 0, "%s",
		     nodes[1].sm.reason);
	assert_lockstep(1);
}

Test(vmsm, restart_primary_vm_gone_becomes_outdated_secondary)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	restart(0, &saved, KM_PROBE_NOT_RUNNING);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[0].sm.replica, KM_REPLICA_OUTDATED);
	cr_assert_not(nodes[0].sm.resuming);
	cr_assert_not(nodes[0].sm.protected);
	cr_assert(strstr(nodes[0].sm.reason, "no longer runs here"));
	cr_assert_gt(nodes[0].persists, 0);
	cr_assert_eq(nodes[0].fences, 0);
	/* Its state tells the Secondary that the Primary's copy is gone:
	 * as good as a fault report, it takes over without fencing. */
	linked = true;
	send_ev(1, KM_EV_PEER_JOIN);
	send_ev(0, KM_EV_QUORATE);
	send_ev(0, KM_EV_PEER_JOIN);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.generation, 2);
	cr_assert_eq(nodes[1].fences, 1, "only the cancelled delay");
	cr_assert_eq(nodes[1].blackboxes, 1);
	cr_assert_eq(nodes[0].sm.replica, KM_REPLICA_OUTDATED);
	cr_assert_eq(nodes[0].sm.generation, 2);
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_PROTECT), -EEXIST);
	cr_assert_eq(send_ev(1, KM_EV_ADMIN_REPROTECT), 0, "%s",
		     nodes[1].sm.reason);
	assert_lockstep(1);
}

Test(vmsm, switchover_is_not_mistaken_for_a_lost_copy)
{
	protected_pair();
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_SWITCHOVER), 0);
	assert_lockstep(1);
	cr_assert_eq(nodes[0].blackboxes + nodes[1].blackboxes, 0);
	cr_assert(nodes[1].sm.protected, "a switchover keeps protection");
}

Test(vmsm, restart_primary_probe_unanswered_assumes_running)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	restart(0, &saved, -1);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert(nodes[0].sm.resuming);
	cr_assert(strstr(nodes[0].sm.reason, "probe failed"), "%s",
		  nodes[0].sm.reason);
}

Test(vmsm, restart_primary_peer_absent_is_fenced)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	nodes[1].alive = false; /* the peer host died meanwhile */
	restart(0, &saved, 0);
	send_ev(0, KM_EV_QUORATE);
	cr_assert_eq(send_ev(0, KM_EV_PEER_ABSENT), 0);
	cr_assert_eq(nodes[0].fences, 1);
	cr_assert_eq(nodes[0].last_delay, 0, "a Primary fences at once");
	cr_assert(nodes[0].sm.suspended);
	fence_result(0, KM_FENCE_RC_PEER_FENCED);
	cr_assert_not(nodes[0].sm.resuming);
	cr_assert_not(nodes[0].sm.suspended);
	cr_assert_not(nodes[0].sm.protected);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[0].sm.generation, 1);
}

/* A rebooted former Primary must not shoot the peer that took over. */
Test(vmsm, restart_primary_no_fencing_while_probing)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();
	struct km_vmsm_actions a;

	boot(0, 0, KM_REPLICA_INCONSISTENT);
	km_vmsm_restore(&nodes[0].sm, &saved, &a); /* probe not answered */
	send_ev(0, KM_EV_QUORATE);
	send_ev(0, KM_EV_PEER_ABSENT);
	cr_assert_eq(nodes[0].fences, 0);
	cr_assert_eq(nodes[0].sm.fence, KM_FENCE_NONE);
	nodes[0].backend_status = KM_PROBE_NOT_RUNNING;
	carry_out(0, &a);
	pump();
	send_ev(0, KM_EV_PEER_ABSENT);
	cr_assert_eq(nodes[0].fences, 0);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_SECONDARY);
}

Test(vmsm, restart_primary_peer_absent_fence_fails_stays_frozen)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	nodes[1].alive = false;
	restart(0, &saved, 0);
	send_ev(0, KM_EV_PEER_ABSENT);
	cr_assert_eq(nodes[0].fences, 0, "fenced before it was quorate");
	send_ev(0, KM_EV_QUORATE);
	send_ev(0, KM_EV_PEER_ABSENT);
	cr_assert_eq(nodes[0].fences, 1);
	fence_result(0, 1);
	cr_assert(nodes[0].sm.resuming && nodes[0].sm.suspended);
	cr_assert_eq(nodes[0].sm.fence, KM_FENCE_FAILED);
	/* The operator vouches that the peer is down. */
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_UNPROTECT), 0, "%s",
		     nodes[0].sm.reason);
	cr_assert_not(nodes[0].sm.suspended);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
}

Test(vmsm, restart_primary_unprotect_refused_while_peer_unheard)
{
	struct km_vmsm_saved saved = primary_kemarid_stops();

	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	restart(0, &saved, 0);
	/* The peer is in the group, its state not delivered yet. */
	deliver(0, (struct km_vmsm_event){ .type = KM_EV_PEER_JOIN });
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_UNPROTECT), -EBUSY);
	cr_assert_eq(send_ev(0, KM_EV_ADMIN_REPROTECT), -EBUSY);
	cr_assert(nodes[0].sm.suspended);
}

Test(vmsm, restart_unprotected_primary_resumes_alone)
{
	struct km_vmsm_saved saved = { .generation = 4,
				       .role = KM_ROLE_PRIMARY,
				       .replica = KM_REPLICA_UPTODATE,
				       .protected = false };

	restart(0, &saved, 0);
	cr_assert_not(nodes[0].sm.resuming);
	cr_assert_not(nodes[0].sm.suspended);
	cr_assert_eq(nodes[0].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[0].sm.generation, 4);
	cr_assert_eq(nodes[0].fences, 0);
}

Test(vmsm, restart_secondary_waits_for_its_primary)
{
	struct km_vmsm_saved saved = { .generation = 3,
				       .role = KM_ROLE_SECONDARY,
				       .replica = KM_REPLICA_UPTODATE,
				       .protected = true };
	struct km_vmsm_actions a;

	boot(1, 0, KM_REPLICA_INCONSISTENT);
	km_vmsm_restore(&nodes[1].sm, &saved, &a);
	cr_assert_eq(a.flags, 0);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	cr_assert_eq(nodes[1].sm.generation, 3);
	cr_assert_eq(nodes[1].sm.replica, KM_REPLICA_UPTODATE);
	cr_assert_not(nodes[1].sm.protected, "protected again by its Primary");
}

/* ---- fence retries ------------------------------------------------------- */

static void lose_primary_with_retries(uint32_t retries)
{
	protected_pair();
	nodes[1].sm.policy.fence_retries = retries;
	nodes[1].sm.policy.fence_retry_ms = 500;
	nodes[0].alive = linked = false;
	leave(1);
	cr_assert_eq(nodes[1].fences, 1);
}

Test(vmsm, fence_retried_then_promotes)
{
	lose_primary_with_retries(2);
	fence_result(1, 1);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_PENDING);
	cr_assert_eq(nodes[1].fences, 2);
	cr_assert_eq(nodes[1].last_delay, 500);
	cr_assert(strstr(nodes[1].sm.reason, "retry 1 of 2 in 500 ms"), "%s",
		  nodes[1].sm.reason);
	fence_result(1, KM_FENCE_RC_PEER_UNREACHABLE);
	cr_assert_eq(nodes[1].fences, 3);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
	fence_result(1, KM_FENCE_RC_PEER_FENCED);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_PRIMARY);
	cr_assert_eq(nodes[1].sm.generation, 2);
}

Test(vmsm, fence_retries_exhausted)
{
	lose_primary_with_retries(2);
	fence_result(1, 1);
	fence_result(1, 1);
	fence_result(1, -1);
	cr_assert_eq(nodes[1].fences, 3);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_FAILED);
	cr_assert(
		strstr(nodes[1].sm.reason,
		       "exit -1: handler timed out or could not run) 3 times: not promoting"),
		"%s", nodes[1].sm.reason);
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
}

Test(vmsm, fence_definite_answers_not_retried)
{
	lose_primary_with_retries(2);
	fence_result(1, KM_FENCE_RC_PEER_OUTDATED);
	cr_assert_eq(nodes[1].fences, 1);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_FAILED);
}

Test(vmsm, fence_retry_cancelled_when_peer_returns)
{
	lose_primary_with_retries(2);
	fence_result(1, 1);
	linked = true;
	nodes[0].alive = true;
	send_ev(1, KM_EV_PEER_JOIN);
	cr_assert_eq(nodes[1].cancels, 1);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_NONE);
	fence_result(1, KM_FENCE_RC_PEER_FENCED); /* late, ignored */
	cr_assert_eq(nodes[1].sm.role, KM_ROLE_SECONDARY);
}

Test(vmsm, policy_reload_applies_to_next_fence)
{
	struct km_vmsm_policy p = { .fencing = true,
				    .fence_delay_ms = 9000,
				    .fence_retries = 1,
				    .fence_retry_ms = 50 };

	protected_pair();
	km_vmsm_set_policy(&nodes[1].sm, &p);
	nodes[0].alive = linked = false;
	leave(1);
	cr_assert_eq(nodes[1].last_delay, 9000);
	fence_result(1, 1);
	cr_assert_eq(nodes[1].last_delay, 50);
	fence_result(1, 1);
	cr_assert_eq(nodes[1].sm.fence, KM_FENCE_FAILED);
}

/* ---- every event in every state ------------------------------------------ */

#include "matrix_states.h"

/*
 * One row per state, one column per event (in enum order: quorate,
 * inquorate, membership-lost, peer-join, peer-leave, peer-absent, peer-state,
 * peer-protect, peer-unprotect, peer-handover, peer-fault, fence-result,
 * backend-done, local-fault, protect, unprotect, switchover, reprotect).
 * rc: '.' accepted, B EBUSY, Q ENOLINK, H EHOSTUNREACH, S ESTALE, P EPERM,
 *     A EALREADY, E EEXIST, I EINVAL.
 * role: the role afterwards (P/S).
 * act: backend action started (R start-replica, P promote, D demote,
 *      X stop, Q probe), F fence-peer started, '-' neither.
 */
static const struct {
	const char *state, *rc, *role, *act;
} matrix[] = {
	{ "fresh", ".........P..IPHAHH", "SSSSSSSSSSSSSSSSSS",
	  "-------R----------" },
	{ "idle", ".........P..IP.APP", "SSSSSSSSSSSSSSSSSS",
	  "-------R------P---" },
	{ "synctarget", ".......B.P....BBBB", "SSSSSSSSSSSSSSSSSS",
	  "-------------X----" },
	{ "sec-lockstep", "............I.A.PP", "SSSSSSSSSSSSSSSSSS",
	  "----F--RXPP--X-X--" },
	{ "sec-fencing", ".........P..I.H.HH", "SSSSSSSSSSSSSSSSSS",
	  "-------RX-PP-X-X--" },
	{ "sec-fenced-inquorate", ".........Q..I.Q.QQ", "SSSSSSSSSSSSSSSSSS",
	  "P------RX----X-X--" },
	{ "sec-fence-failed", ".........P..I.H.HH", "SSSSSSSSSSSSSSSSSS",
	  "-------RX-P--X-X--" },
	{ "promoting", ".......B.P...PBABB", "SSSSSSSSSSSSPSSSSS",
	  "------------------" },
	{ "pri-alone", ".......E.P..I.HAHH", "PPPPPPPPPPPPPSPPPP",
	  "-------------X----" },
	{ "pri-syncsource", ".......E.P..I.A.P.", "PPPPPPPPPPPPPSPPPP",
	  "----F--------X----" },
	{ "pri-lockstep", ".......E.P..I.A..A", "PPPPPPPPPPPPPSPPPP",
	  "----F--------X--D-" },
	{ "pri-suspended", ".......E.P..I.H.HH", "PPPPPPPPPPPPPSPPPP",
	  "-------------X----" },
	{ "demoting", ".......E.P....BBBB", "PPPPPPPPPPPPSSPPPP",
	  "----F--------X----" },
	{ "pri-probing", ".......E.P....BBBB", "PPPPPPPPPPPPPSPPPP",
	  "-------------X----" },
	{ "pri-resuming", ".......E.P..I.B.BB", "PPPPPPPPPPPPPSPPPP",
	  "-----F-------X----" },
	{ "pri-resuming-peer", ".......E.P..I.BBBB", "PPPPPPPPPPPPPSPPPP",
	  "----F--------X----" },
	{ "pri-resuming-fencing", ".......E.P..I.B.BB", "PPPPPPPPPPPPPSPPPP",
	  "-------------X----" },
};

/* Rules that hold in every cell, whatever the table says. */
static void check_invariants(const struct km_vmsm *before,
			     const struct km_vmsm *after,
			     const struct km_vmsm_event *ev,
			     const struct km_vmsm_actions *a, int rc,
			     const char *where)
{
	bool promotes = a->flags & KM_ACT_BACKEND &&
			a->backend == KM_BACKEND_PROMOTE;

	cr_assert_geq(after->generation, before->generation, "%s", where);
	if (rc) {
		cr_assert(after->reason[0], "%s: refused without a reason",
			  where);
		cr_assert_eq(a->flags & (KM_ACT_BACKEND | KM_ACT_FENCE), 0,
			     "%s: refused but acted", where);
	}
	if (promotes) {
		cr_assert(after->quorate, "%s: promotion without quorum",
			  where);
		cr_assert_gt(after->generation, before->generation,
			     "%s: promotion without a new generation", where);
		cr_assert_neq(after->peer_role, KM_ROLE_PRIMARY, "%s", where);
		if (ev->type != KM_EV_ADMIN_PROTECT &&
		    ev->type != KM_EV_PEER_HANDOVER)
			cr_assert(before->peer_fault || after->peer_fault ||
					  !after->peer_present,
				  "%s: takeover while the peer is present",
				  where);
		if (!after->peer_present)
			cr_assert_eq(after->fence, KM_FENCE_DONE,
				     "%s: takeover without fencing", where);
	}
	if (after->role == KM_ROLE_PRIMARY && before->role != KM_ROLE_PRIMARY)
		cr_assert_eq(ev->type, KM_EV_BACKEND_DONE,
			     "%s: Primary before the backend promoted", where);
	if (after->resuming)
		cr_assert(after->suspended && after->role == KM_ROLE_PRIMARY,
			  "%s: a restored Primary runs before it knows", where);
	if (a->flags & KM_ACT_FENCE)
		cr_assert_eq(a->fence_delay_ms,
			     after->role == KM_ROLE_PRIMARY ? 0 : 3000, "%s",
			     where);
}

Test(vmsm, every_event_in_every_state)
{
	unsigned int s;
	int e;

	cr_assert_eq(N_STATES, sizeof(matrix) / sizeof(matrix[0]));
	for (s = 0; s < N_STATES; s++) {
		cr_assert_str_eq(states[s].name, matrix[s].state);
		cr_assert_eq(strlen(matrix[s].rc), KM_EV__COUNT);
		for (e = 0; e < KM_EV__COUNT; e++) {
			struct km_vmsm before, sm;
			struct km_vmsm_actions a;
			struct km_vmsm_event ev;
			char where[96];
			int rc;

			states[s].make(&sm);
			before = sm;
			ev = matrix_event(&sm, e);
			snprintf(where, sizeof(where), "%s x %s",
				 states[s].name, km_vmsm_event_name(e));
			rc = km_vmsm_handle(&sm, &ev, &a);
			cr_expect_eq(rc_char(rc), matrix[s].rc[e],
				     "%s: rc %d (%s)", where, rc, sm.reason);
			cr_expect_eq(sm.role == KM_ROLE_PRIMARY ? 'P' : 'S',
				     matrix[s].role[e], "%s: role", where);
			cr_expect_eq(backend_char(&a), matrix[s].act[e],
				     "%s: action", where);
			check_invariants(&before, &sm, &ev, &a, rc, where);
		}
	}
}
