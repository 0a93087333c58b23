#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kill -9 of corosync and kemarid on the Primary's node: the other node
# promotes only after its fence-peer handler confirmed (exit 7), within the
# detection time plus a small bound. Then the dead node comes back, sees
# the newer generation, and `reprotect` makes it the Secondary again.
# Runs REPS failovers, alternating direction, and prints the timings.
. "$(dirname "$0")/pair.sh"
REPS=${REPS:-2}
FENCE_DELAY_MS=${FENCE_DELAY_MS:-1000}
# token 1000 ms + consensus 1200 ms, plus the fence delay, plus slack for
# a loaded 2-core host: a promotion later than this is a failure.
BOUND_MS=${BOUND_MS:-$((2200 + FENCE_DELAY_MS + 3000))}

# Timestamp (epoch seconds) of the first events line matching $2 in file $1.
event_time() {
	local line
	line=$(grep -m1 -E "$2" "$1") || return 1
	date -d "${line%% *}" +%s.%N
}

# Time (epoch seconds) of the last line of node $1's kemarid log matching
# $2 (the log stamps milliseconds).
log_time() {
	local line
	line=$(grep -- "$2" "$W/$1/kemarid.log" | tail -1) || return 1
	date -d "${line:0:19}" +%s.%N
}

failover() {
	local p=$1 s=$2 gen kill_t detect_t fenced_t primary_t
	gen=$(field "$p" web1 generation)
	events_start "$s" "$W/events-$i"
	kill_t=$(now)
	node_kill "$p"
	wait_for 30 is "$s" web1 role Primary || fail "$s did not promote"
	detect_t=$(event_time "$W/events-$i" "change peer name:web1 .*present:no") ||
		fail "no peer-left event"
	fenced_t=$(awk -v p="$p" '$0 ~ "fenced " p { t = $1 } END { print t }' "$W/fence.log")
	[ -n "$fenced_t" ] || fail "$s promoted without a fence record"
	primary_t=$(event_time "$W/events-$i" "change vm name:web1 role:Primary") ||
		fail "no role:Primary event"
	awk -v f="$fenced_t" -v p="$primary_t" 'BEGIN { exit !(f < p) }' ||
		fail "promoted before the fence completed"
	[ "$(field "$s" web1 generation)" = $((gen + 1)) ] || fail "generation not bumped"
	ls "$W/$s/blackbox/"kemarid-web1-*.fdata > /dev/null 2>&1 || fail "no blackbox dump"
	# The decision: from the handler's exit 7 reaching kemarid to the
	# promote it asks of the backend.
	decided_t=$(log_time "$s" "fence-peer handler for $p exited 7") &&
		promote_t=$(log_time "$s" "backend command: promote") ||
		fail "no fence or promote line in $s's log"
	log "failover $p -> $s: detection $(ms "$kill_t" "$detect_t") ms," \
	    "fence done +$(ms "$detect_t" "$fenced_t") ms (delay $FENCE_DELAY_MS)," \
	    "promotion decided $(ms "$decided_t" "$promote_t") ms after the fence result," \
	    "Primary +$(ms "$fenced_t" "$primary_t") ms;" \
	    "kill to Primary $(ms "$kill_t" "$primary_t") ms (bound $BOUND_MS)"
	echo "$(ms "$kill_t" "$detect_t") $(ms "$kill_t" "$primary_t")" \
	     "$(ms "$decided_t" "$promote_t")" >> "$W/timings"
	[ "$(ms "$kill_t" "$primary_t")" -le "$BOUND_MS" ] || fail "failover slower than $BOUND_MS ms"
	grep -q "unprotected" <(ctl "$s" status web1) || true
	is "$s" web1 protected no || fail "new Primary claims protection"
	kmns_stop "$KMNS_PID"

	# The fenced node reboots: it must not run the VM and must see that
	# its copy is history.
	node_reboot "$p"
	wait_for 10 is "$p" web1 replica Outdated || fail "$p not Outdated after reboot"
	is "$p" web1 role Secondary || fail "$p came back Primary"
	ctl "$s" reprotect web1 || fail "reprotect"
	wait_for 20 lockstep "$s" || fail "no Lockstep after reprotect"
	log "$p back as Secondary, Lockstep again at generation $(field "$s" web1 generation)"
}

pair_up
protect_on alpha
p=alpha s=beta
for i in $(seq 1 "$REPS"); do
	failover "$p" "$s"
	t=$p p=$s s=$t
done
awk '{ d += $1; t += $2; c += $3; n++ } END {
	printf "SUMMARY %d failovers: detection avg %d ms, decision avg %d ms, kill to Primary avg %d ms\n",
		n, d / n, c / n, t / n }' "$W/timings"
log "PASS"
