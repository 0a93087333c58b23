#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The fence-peer handler fails (exit 1, retried twice), then only outdates
# (exit 4, a definite answer, not retried): the Secondary must not promote
# over a Primary it could not power off, and its status must say why.
# Between the two, the old Primary's host is rebooted by hand: its kemarid
# finds the VM gone, and the Secondary takes over without fencing. Last, a
# handler that fails once and then succeeds: the retry promotes.
. "$(dirname "$0")/pair.sh"

pair_up
protect_on alpha

echo fail > "$W/fence-mode"
node_kill alpha
wait_for 20 is beta web1 fencing failed || fail "fencing not reported failed"
[ "$(grep -c "beta fences alpha" "$W/fence.log")" = 3 ] ||
	fail "handler not run 3 times (2 retries): $(cat "$W/fence.log")"
sleep 2	# long enough for a wrong promotion to show
is beta web1 role Secondary || fail "beta promoted although fencing failed"
ctl beta status web1 | grep -q 'reason:"fence-peer handler failed (exit 1: handler failed) 3 times: not promoting"' ||
	fail "status does not say why: $(ctl beta status web1)"
ctl beta status --json | jq -e '.vms[0].reason | test("exit 1")' > /dev/null ||
	fail "json reason"
grep -q "beta promote" "$W/backend.log" && fail "backend promoted"
log "exit 1 (3 runs): beta stays Secondary; status says $(ctl beta status web1 | grep reason:)"

# The operator power-cycles alpha: its kemarid comes back, its probe finds
# no VM, and beta learns that the Primary's copy is gone.
node_reboot alpha
wait_for 20 is beta web1 role Primary || fail "beta did not take over from a rebooted Primary"
is alpha web1 role Secondary || fail "alpha came back Primary"
is alpha web1 replica Outdated || fail "alpha not Outdated"
[ "$(field beta web1 generation)" = 2 ] || fail "generation not 2"
[ "$(grep -c "fences" "$W/fence.log")" = 3 ] || fail "fenced again"
log "alpha rebooted: beta took over at generation 2 without fencing"
ctl beta reprotect web1 > /dev/null || fail "reprotect"
wait_for 20 lockstep beta || fail "no Lockstep after the reboot"

# An outdated-but-running Primary is no better: exit 4 is refused too.
echo outdate > "$W/fence-mode"
node_kill beta
wait_for 20 is alpha web1 fencing failed || fail "exit 4 accepted as fenced"
sleep 1
is alpha web1 role Secondary || fail "alpha promoted on exit 4"
[ "$(grep -c "alpha fences beta" "$W/fence.log")" = 1 ] || fail "exit 4 was retried"
ctl alpha status web1 | grep -q "exit 4: peer outdated, not powered off" ||
	fail "exit 4 reason: $(ctl alpha status web1)"
log "exit 4: alpha stays Secondary, not retried"

# A fence device that fails once: the retry succeeds and alpha promotes.
node_reboot beta
wait_for 20 is alpha web1 role Primary || fail "alpha did not take over from rebooted beta"
ctl alpha reprotect web1 > /dev/null || fail "reprotect on alpha"
wait_for 20 lockstep alpha || fail "no Lockstep with alpha Primary"
echo fail-once > "$W/fence-mode"
node_kill alpha
wait_for 20 is beta web1 role Primary || fail "beta did not promote after the retry"
tail -3 "$W/fence.log" | grep -q "beta fences alpha for web1 as Secondary mode fail-once" ||
	fail "no failed first attempt: $(tail -3 "$W/fence.log")"
tail -1 "$W/fence.log" | grep -q "beta fenced alpha" || fail "the retry did not fence"
log "fail-once: beta's second run fenced alpha, beta Primary at generation $(field beta web1 generation)"
log "PASS"
