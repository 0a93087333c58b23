#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ocf:kemari:vm checked as ocf-tester does (cluster-pacemaker runs it under
# real pacemaker): meta-data is valid XML with the promotable actions, and every
# action returns the OCF exit code it must, against a running pair.
. "$(dirname "$0")/pair.sh"
RA=$KEMARI_SRC/config/ocf/vm

ra() {
	local n=$1 want=$2 action=$3 got
	shift 3
	on "$n" env HA_RSCTMP="$W/$n/rsctmp" OCF_ROOT=/nonexistent \
		OCF_RESKEY_vm=web1 OCF_RESKEY_config="$W/$n/kemari.conf" \
		OCF_RESKEY_kemarictl="$KEMARICTL" OCF_RESKEY_wait=20 "$@" \
		"$RA" "$action" > "$W/ra.out" 2>&1
	got=$?
	[ "$got" = "$want" ] || { cat "$W/ra.out"; fail "$n: $action exited $got, wanted $want"; }
	log "$n: $action -> $got"
}

"$RA" meta-data > "$W/meta.xml" || fail "meta-data"
xmllint --noout "$W/meta.xml" || fail "meta-data is not XML"
for a in start stop promote demote monitor meta-data validate-all; do
	xmllint --xpath "//actions/action[@name='$a']" "$W/meta.xml" > /dev/null ||
		fail "meta-data lacks action $a"
done
xmllint --xpath "//action[@name='monitor'][@role='Promoted']" "$W/meta.xml" > /dev/null ||
	fail "no Promoted monitor"
xmllint --xpath "//parameter[@name='vm'][@required='1']" "$W/meta.xml" > /dev/null ||
	fail "vm parameter"

pair_up
ra alpha 7 monitor
ra alpha 0 validate-all
ra alpha 6 validate-all OCF_RESKEY_vm=web9
ra alpha 3 frobnicate
ra alpha 0 stop			# stopping a stopped resource succeeds
ra alpha 0 start
ra alpha 0 start		# and starting a started one
ra alpha 0 monitor		# started, Secondary
ra beta 0 start
ra alpha 0 promote
wait_for 20 lockstep alpha || fail "promote did not protect"
ra alpha 8 monitor
ra beta 0 monitor
ra alpha 0 promote		# already promoted
ra beta 1 promote		# the VM is Primary on alpha
ra alpha 0 demote		# switchover: beta takes over
wait_for 10 is beta web1 role Primary || fail "demote did not hand over"
ra alpha 0 monitor
ra beta 8 monitor
ra beta 0 stop			# stop demotes first
wait_for 10 is alpha web1 role Primary || fail "stop of the Primary did not hand over"
ra beta 7 monitor
ra alpha 8 monitor
# A frozen Primary (lost Secondary, fencing failed) is FAILED_PROMOTED.
echo fail > "$W/fence-mode"
ra beta 0 start
wait_for 20 lockstep alpha || fail "no Lockstep"
node_kill beta
wait_for 20 is alpha web1 fencing failed || fail "alpha did not try to fence"
ra alpha 9 monitor
log "PASS"
