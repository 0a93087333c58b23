#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kemarid restarted on the Primary's node while the VM runs on. The state
# (generation, role, replica, protected) is in state_dir/web1.state.
# (a) Back within the Secondary's fence delay: the Secondary's fence is
#     cancelled; kemarid probes the VM, hears the peer, and resumes as
#     Primary at the same generation.
# (b) Away for longer, with a broken fence device that reports success
#     (exit 7) without powering anything off: the Secondary promotes. When
#     kemarid comes back, its probe finds the VM still running, but the
#     peer's higher generation makes it stop its stale copy and come back
#     an Outdated Secondary, never a Primary.
# (c) A state file that cannot be read: the VM comes up Outdated at
#     generation 0, so only a resync from the peer can make it UpToDate.
FENCE_DELAY_MS=4000
. "$(dirname "$0")/pair.sh"

pair_up
protect_on alpha
S=$W/alpha/state/web1.state
[ "$(cat "$S")" = "$(printf 'generation=1\nrole=Primary\nreplica=UpToDate\nprotected=yes')" ] ||
	fail "state file: $(cat "$S")"
ls "$W"/alpha/state/*.tmp > /dev/null 2>&1 && fail "temporary state file left behind"

# (a)
t0=$(now)
kmns_stop "$(pid_of alpha kemarid)"
kemarid_start alpha
wait_for 15 lockstep alpha || fail "no Lockstep after the restart"
t1=$(now)
[ "$(field alpha web1 generation)" = 1 ] || fail "generation changed"
[ -e "$W/fence.log" ] && fail "fenced: $(cat "$W/fence.log")"
grep -q "fencing alpha in 4000 ms" "$W/beta/kemarid.log" || fail "beta did not notice"
grep -q "fencing of alpha cancelled" "$W/beta/kemarid.log" || fail "fence not cancelled"
grep -q "alpha probe web1" "$W/backend.log" || fail "no probe"
grep -q "restarted as Primary and resumed" "$W/alpha/kemarid.log" || fail "no resume"
grep -q "alpha promote" <(sed 1d "$W/backend.log") && fail "resuming promoted again"
log "(a) kemarid restarted on the Primary: Lockstep again $(ms "$t0" "$t1") ms" \
    "after the stop, generation 1, beta's fence cancelled"

# (b)
echo lie > "$W/fence-mode"
kill -9 "$(pid_of alpha kemarid)"
wait "$(pid_of alpha kemarid)" 2>/dev/null
wait_for 20 is beta web1 role Primary || fail "beta did not promote"
[ "$(field beta web1 generation)" = 2 ] || fail "beta's generation"
[ "$(cat "$W/alpha/vm-web1")" = running ] || fail "the VM on alpha is not running"
kemarid_start alpha
wait_for 15 is alpha web1 replica Outdated || fail "alpha not Outdated"
is alpha web1 role Secondary || fail "alpha came back Primary"
[ "$(field alpha web1 generation)" = 2 ] || fail "alpha's generation"
tail -1 "$W/backend.log" | grep -q "alpha stop web1" || fail "stale copy not stopped: $(tail -3 "$W/backend.log")"
[ "$(cat "$W/alpha/vm-web1")" = stopped ] || fail "the VM on alpha still runs"
grep -c "restarted as Primary and resumed" "$W/alpha/kemarid.log" | grep -qx 1 ||
	fail "alpha resumed a stale copy"
status_of alpha web1 | grep -q "stopping our stale copy" || fail "reason: $(status_of alpha web1)"
grep -qx role=Secondary "$S" && grep -qx replica=Outdated "$S" && grep -qx generation=2 "$S" ||
	fail "state file after the stop: $(cat "$S")"
is beta web1 role Primary || fail "beta lost its role"
ls "$W"/alpha/blackbox/kemarid-web1-*.fdata > /dev/null 2>&1 || fail "no blackbox on alpha"
log "(b) beta promoted over a broken fence; alpha's kemarid came back, stopped its stale copy: Secondary, Outdated"

# (c)
kmns_stop "$(pid_of alpha kemarid)"
printf 'generation=7x\nrole=Primary\n' > "$S"
kemarid_start alpha
wait_for 15 node_quorate alpha || fail "alpha's kemarid did not come back"
grep -q "state file $S is unreadable (Invalid argument): starting Outdated at generation 0" \
	"$W/alpha/kemarid.log" || fail "unreadable state file not reported"
is alpha web1 role Secondary && is alpha web1 replica Outdated || fail "alpha: $(status_of alpha web1)"
ctl beta reprotect web1 > /dev/null || fail "reprotect onto alpha"
wait_for 20 lockstep beta || fail "no Lockstep after the resync"
grep -qx generation=2 "$S" && grep -qx replica=UpToDate "$S" || fail "state after resync: $(cat "$S")"
log "(c) unreadable state file: Outdated at generation 0, resynced from beta to generation 2"
log "PASS"
