#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The fence-peer handler fails (exit 1), then only outdates (exit 4): the
# Secondary must not promote over a Primary it could not power off, and
# its status must say why.
. "$(dirname "$0")/pair.sh"

pair_up
protect_on alpha

echo fail > "$W/fence-mode"
node_kill alpha
wait_for 20 is beta web1 fencing failed || fail "fencing not reported failed"
sleep 3	# long enough for a wrong promotion to show
is beta web1 role Secondary || fail "beta promoted although fencing failed"
ctl beta status web1 | grep -q 'reason:"fence-peer handler failed (exit 1: handler failed): not promoting"' ||
	fail "status does not say why: $(ctl beta status web1)"
ctl beta status --json | jq -e '.vms[0].reason | test("exit 1")' > /dev/null ||
	fail "json reason"
grep -q "^promote\|beta promote" "$W/backend.log" && fail "backend promoted"
log "exit 1: beta stays Secondary; status says $(ctl beta status web1 | grep reason:)"

# An outdated-but-running Primary is no better: exit 4 is refused too.
echo outdate > "$W/fence-mode"
node_reboot alpha
ctl alpha protect web1 --peer beta > /dev/null 2>&1 ||
	ctl beta protect web1 --peer alpha > /dev/null 2>&1
wait_for 20 lockstep alpha || wait_for 20 lockstep beta || fail "no Lockstep after reboot"
p=alpha; is beta web1 role Primary && p=beta
s=${PEER[$p]}
node_kill "$p"
wait_for 20 is "$s" web1 fencing failed || fail "exit 4 accepted as fenced"
sleep 2
is "$s" web1 role Secondary || fail "$s promoted on exit 4"
ctl "$s" status web1 | grep -q "exit 4: peer outdated, not powered off" ||
	fail "exit 4 reason: $(ctl "$s" status web1)"
log "exit 4: $s stays Secondary"
log "PASS"
