#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Partitions made with nftables (packets dropped, links stay up): both
# nodes stay quorate (two_node) and race to fence each other. Fencing
# decides, and there are never two Primaries. Odd repetitions: the
# Primary's node fences at once and wins (the Secondary waits its fence
# delay). Even repetitions: the Primary's fence device is slow, so the
# Secondary wins and takes over. The fenced node reboots and is
# re-protected before the next round.
. "$(dirname "$0")/pair.sh"
REPS=${REPS:-10}

round() {
	local i=$1 p=$2 s=$3 loser winner t0
	rm -f "$W"/fence-slow-*
	if [ $((i % 2)) = 0 ]; then
		touch "$W/fence-slow-$p"
		loser=$p winner=$s
	else
		loser=$s winner=$p
	fi
	t0=$(now)
	partition
	wait_for 30 test -e "$W/$loser.dead" || fail "round $i: nobody fenced $loser"
	if [ "$winner" = "$s" ]; then
		wait_for 20 is "$s" web1 role Primary || fail "round $i: $s did not take over"
	else
		wait_for 20 is "$p" web1 suspended no || fail "round $i: $p stayed frozen"
		is "$p" web1 role Primary || fail "round $i: $p lost its role"
	fi
	[ -e "$W/$winner.dead" ] && fail "round $i: both nodes fenced"
	heal
	log "round $i: $winner won the fence race, $loser fenced," \
	    "$(ms "$t0" "$(now)") ms; Primary now $winner"
	"$(dirname "$0")/check-one-primary.py" "$W" > /dev/null || fail "round $i: two Primaries"
	node_reboot "$loser"
	wait_for 10 is "$loser" web1 role Secondary || fail "round $i: $loser not Secondary"
	ctl "$winner" reprotect web1 > /dev/null || fail "round $i: reprotect"
	wait_for 20 lockstep "$winner" || fail "round $i: no Lockstep"
	echo "$winner" > "$W/primary"
}

pair_up
protect_on alpha
echo alpha > "$W/primary"
for i in $(seq 1 "$REPS"); do
	p=$(cat "$W/primary")
	round "$i" "$p" "${PEER[$p]}"
done
"$(dirname "$0")/check-one-primary.py" "$W" || fail "two Primaries"
log "SUMMARY $REPS partitions, $(grep -c ' fenced ' "$W/fence.log") fencings," \
    "$(grep -c ' promote ' "$W/backend.log") promotions, never two Primaries"
log "PASS"
