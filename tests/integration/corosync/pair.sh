#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# corosync-pair: two corosync 3 nodes, alpha (192.0.2.1, nodeid 1) and beta
# (192.0.2.2, nodeid 2), in network namespaces form a two_node cluster; a
# cpg-watch joins the same CPG group on each. corosync on beta is killed
# with SIGKILL; alpha's watcher must report beta's member left for
# "nodedown", alpha must stay quorate alone (two_node), and beta's watcher
# must notice that its corosync is gone. Prints the detection time, from
# the kill to alpha's CPG event, as
#   {"test":"corosync_pair","detect_ms":...,"ring_ms":...,"quorum_ms":...}
#
# usage: pair.sh PATH-TO-cpg-watch      (root; ctest passes the path)

CPG_WATCH=${1:?usage: pair.sh PATH-TO-cpg-watch}
DETECT_MAX_MS=10000

. "$(dirname "$0")/../lib/netns.sh"
command -v jq >/dev/null || kmns_fail "jq not found: apt-get install jq"
[ -x "$CPG_WATCH" ] || kmns_fail "$CPG_WATCH: not built (cmake --build)"

kmns_init
kmns_deadline 75
kmns_up alpha beta

# The first event in watcher output $1 that satisfies jq condition $2,
# printed as compact JSON (empty if none).
event() { jq -c "select($2)" "$1" 2>/dev/null | head -1; }

# Wait up to $3 seconds for such an event; print it.
wait_event() {
	local end=$((SECONDS + $3)) e
	while :; do
		e=$(event "$1" "$2")
		[ -n "$e" ] && { echo "$e"; return 0; }
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.05
	done
}

# Sanitizer builds report on the watcher's stderr; any report fails.
check_sanitizer() {
	! grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" \
		"$1" || { cat "$1" >&2; kmns_fail "sanitizer report in $1"; }
}

cluster_up() {
	local t0=$SECONDS n
	for n in alpha beta; do
		kmns_corosync_start "$n"
	done
	for n in alpha beta; do
		kmns_wait_quorate "$n" 2 30 ||
			kmns_fail "$n not quorate with 2 nodes within 30 s"
	done
	kmns_log "both nodes quorate with 2 members after $((SECONDS - t0)) s"
}

watchers_up() {
	WA_OUT=$KMNS_DIR/alpha/watch.json
	WB_OUT=$KMNS_DIR/beta/watch.json
	kmns_bg alpha "$WA_OUT" "$CPG_WATCH" -g kemari-test -t 60
	WA=$KMNS_PID
	kmns_bg beta "$WB_OUT" "$CPG_WATCH" -g kemari-test -t 60
	WB=$KMNS_PID
	wait_event "$WA_OUT" '.event == "members" and (.nodeids | sort) == [1, 2]' 15 \
		>/dev/null || kmns_fail "alpha's watcher never saw both members: $(cat "$WA_OUT" "$WA_OUT.err")"
	event "$WA_OUT" '.event == "ready" and .nodeid == 1' | grep -q . ||
		kmns_fail "alpha's watcher is not nodeid 1: $(head -1 "$WA_OUT")"
	wait_event "$WA_OUT" '.event == "quorum" and .quorate and (.members | sort) == [1, 2]' 5 \
		>/dev/null || kmns_fail "alpha's watcher saw no quorum with [1,2]"
	kmns_log "watchers on both nodes in group kemari-test"
}

# Kill beta's corosync and time what alpha's watcher reports after T0.
kill_beta() {
	local left ring quorum
	T0=$("$CPG_WATCH" --now)
	kmns_corosync_kill beta KILL
	left=$(wait_event "$WA_OUT" ".event == \"left\" and .nodeid == 2 and .t_ms >= $T0" \
		$((DETECT_MAX_MS / 1000))) ||
		kmns_fail "alpha did not report beta left within $DETECT_MAX_MS ms"
	kmns_log "alpha: $left"
	[ "$(jq -r .reason <<<"$left")" = nodedown ] ||
		kmns_fail "beta left for the wrong reason: $left"
	ring=$(wait_event "$WA_OUT" ".event == \"ring\" and .members == [1] and .t_ms >= $T0" 2) ||
		kmns_fail "alpha reported no totem ring of [1] alone"
	quorum=$(wait_event "$WA_OUT" ".event == \"quorum\" and .t_ms >= $T0" 2) ||
		kmns_fail "alpha reported no quorum change"
	[ "$(jq -c '[.quorate, .members]' <<<"$quorum")" = '[true,[1]]' ] ||
		kmns_fail "alpha is not quorate alone: $quorum"
	DETECT_MS=$(($(jq .t_ms <<<"$left") - T0))
	RING_MS=$(($(jq .t_ms <<<"$ring") - T0))
	QUORUM_MS=$(($(jq .t_ms <<<"$quorum") - T0))
}

# alpha stays quorate (two_node) and never reported losing quorum.
check_alpha() {
	kmns_quorate alpha 1 ||
		kmns_fail "corosync-quorumtool: alpha not quorate with 1 node: $(kmns_exec alpha corosync-quorumtool -s)"
	event "$WA_OUT" '.event == "quorum" and (.quorate | not)' | grep -q . &&
		kmns_fail "alpha lost quorum at some point"
	[ "$DETECT_MS" -gt 0 ] && [ "$DETECT_MS" -lt "$DETECT_MAX_MS" ] ||
		kmns_fail "detection time $DETECT_MS ms out of (0, $DETECT_MAX_MS)"
}

# beta's watcher must see its corosync go and exit with status 3.
check_beta_watcher() {
	local _ rc
	for _ in $(seq 100); do
		_kmns_alive "$WB" || break
		sleep 0.1
	done
	_kmns_alive "$WB" && kmns_fail "beta's watcher still runs without corosync"
	wait "$WB"
	rc=$?
	[ "$rc" -eq 3 ] || kmns_fail "beta's watcher exited $rc, not 3: $(cat "$WB_OUT.err")"
	event "$WB_OUT" '.event == "lost"' | grep -q . ||
		kmns_fail "beta's watcher did not report the lost connection"
	check_sanitizer "$WB_OUT.err"
}

stop_alpha_watcher() {
	local rc
	kmns_stop "$WA" 5
	rc=$?
	[ "$rc" -eq 0 ] || kmns_fail "alpha's watcher exited $rc on SIGTERM: $(cat "$WA_OUT.err")"
	event "$WA_OUT" '.event == "end" and .reason == "signal"' | grep -q . ||
		kmns_fail "alpha's watcher did not end on the signal"
	check_sanitizer "$WA_OUT.err"
}

cluster_up
watchers_up
kill_beta
check_alpha
check_beta_watcher
stop_alpha_watcher
printf '{"test":"corosync_pair","detect_ms":%d,"ring_ms":%d,"quorum_ms":%d}\n' \
	"$DETECT_MS" "$RING_MS" "$QUORUM_MS"
