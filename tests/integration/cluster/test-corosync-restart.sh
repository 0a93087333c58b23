#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# corosync killed and restarted under a running kemarid: kemarid treats it
# as loss of membership, keeps running (same pid), reconnects, and the
# pair never has two Primaries. The fence handler only outdates (exit 4):
# enough for a Primary losing its Secondary, never for a takeover.
. "$(dirname "$0")/pair.sh"
echo outdate > "$W/fence-mode"

restart_corosync() {
	local n=$1 kpid
	kpid=$(pid_of "$n" kemarid)
	kill -9 "$(pid_of "$n" corosync)"
	wait_for 10 grep -q "lost the connection to corosync" "$W/$n/kemarid.log" ||
		fail "$n: loss not noticed"
	ctl "$n" status | grep -q "connected:no" || fail "$n: status still connected"
	sleep 1
	corosync_start "$n"
	wait_for 30 node_quorate "$n" || fail "$n: kemarid did not reconnect"
	[ "$(pid_of "$n" kemarid)" = "$kpid" ] && kill -0 "$kpid" ||
		fail "$n: kemarid restarted or died"
	grep -q "reconnected to corosync" "$W/$n/kemarid.log" || fail "$n: no reconnect log"
}

pair_up
protect_on alpha

# The Secondary's corosync: alpha outdates beta and runs on, unfrozen.
restart_corosync beta
wait_for 10 is alpha web1 suspended no || fail "alpha stayed frozen"
is alpha web1 role Primary || fail "alpha lost its role"
is beta web1 role Secondary || fail "beta changed role"
log "beta's corosync restarted: kemarid pid $(pid_of beta kemarid) reconnected; alpha still Primary"
# Whether alpha's fence (exit 4) or beta's return came first decides if
# alpha resumed protection by itself; reprotect covers the other order.
ctl alpha reprotect web1 > /dev/null 2>&1
wait_for 20 lockstep alpha || fail "no Lockstep after beta's restart"

# The Primary's corosync: beta sees alpha leave, but exit 4 is not enough
# to take over a Primary, so beta stays Secondary; alpha reconnects.
restart_corosync alpha
is alpha web1 role Primary || fail "alpha lost its role"
is beta web1 role Secondary || fail "beta promoted over a running Primary"
"$(dirname "$0")/check-one-primary.py" "$W" || fail "two Primaries"
log "alpha's corosync restarted: kemarid reconnected; beta stayed Secondary" \
    "(fence-peer: $(tail -1 "$W/fence.log" | cut -d' ' -f2-))"
log "PASS"
