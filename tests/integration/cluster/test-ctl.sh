#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kemarictl against a running pair: status, --json, events, commands and
# their exit codes, config check, and IPC authorisation (root and the
# configured group only).
. "$(dirname "$0")/pair.sh"
IPC_GROUP=nogroup	# exists everywhere; stands in for haclient

expect_rc() {
	local want=$1 got
	shift
	"$@" > "$W/out" 2>&1
	got=$?
	[ "$got" = "$want" ] || { cat "$W/out"; fail "'$*' exited $got, wanted $want"; }
}

pair_up

# Not running: exit 3 (a service name nobody serves).
expect_rc 3 ctl alpha -s kemari-nobody status
grep -q "is kemarid running" "$W/out" || fail "no hint when kemarid is absent"

# Authorisation: an unknown uid in no group is refused (4), the same uid
# with the configured group as its gid is let in.
expect_rc 4 on alpha setpriv --reuid 4242 --regid 4242 --clear-groups \
	"$KEMARICTL" status
grep -q "permission denied" "$W/out" || fail "refusal does not say why"
grep -q "IPC: refused uid 4242" "$W/alpha/kemarid.log" || fail "refusal not logged"
expect_rc 0 on alpha setpriv --reuid 4242 --regid nogroup --clear-groups \
	"$KEMARICTL" status
log "IPC: uid 4242 refused, uid 4242 with group nogroup accepted"

# Event stream: started before the change, with timestamps.
events_start beta "$W/events"
grep -q "^.* exists -$" "$W/events" || fail "no end-of-dump in events"

# Commands and their exit codes.
expect_rc 2 ctl alpha protect web1
expect_rc 2 ctl alpha protect web1 --peer gamma
grep -q "configured with peer beta, not gamma" "$W/out" || fail "wrong-peer message"
expect_rc 6 ctl alpha protect web9 --peer beta
expect_rc 1 ctl alpha switchover web1
grep -q "runs on the Primary's node" "$W/out" || fail "switchover refusal: $(cat "$W/out")"
status_of alpha web1 | grep -q reason: && fail "a refused command left a reason in status"
protect_on alpha
expect_rc 1 ctl alpha protect web1 --peer beta
grep -q "already protected" "$W/out" || fail "double protect not refused"
expect_rc 1 ctl beta switchover web1
grep -q "runs on the Primary's node" "$W/out" || fail "switchover on Secondary"

# status text
status_of alpha web1 > "$W/st"
grep -q "^web1 role:Primary generation:1 suspended:no$" "$W/st" || fail "status: $(cat "$W/st")"
grep -q "^  beta connection:Connected role:Secondary$" "$W/st" || fail "status peer line"
grep -q "^    replication:Lockstep peer-replica:UpToDate$" "$W/st" || fail "status repl line"

# --json parses and says the same
ctl beta status --json > "$W/json" || fail "status --json"
[ "$(jq -r '.vms[0].role' "$W/json")" = Secondary ] || fail "json role"
[ "$(jq -r '.vms[0].peer.role' "$W/json")" = Primary ] || fail "json peer role"
[ "$(jq -r '.vms[0].peer.replication' "$W/json")" = Lockstep ] || fail "json repl"
[ "$(jq -r '.vms[0].generation' "$W/json")" = 1 ] || fail "json generation"
[ "$(jq -r '.node.quorate' "$W/json")" = true ] || fail "json quorate"

# The kernel gate (kemari.ko) as this host has it: one word for scripts.
gate=absent
[ -c /dev/kemari ] && gate=present
ctl alpha status > "$W/node" || fail "status"
grep -qE "^kernel-gate:$gate( |$)" "$W/node" || fail "no kernel-gate:$gate line: $(cat "$W/node")"
[ "$(jq -r '.node["kernel-gate"]' "$W/json")" = $gate ] || fail "json kernel-gate"
log "status: kernel-gate:$gate"

# events: the initial dump and the changes that protect caused
wait_for 10 grep -q "change vm name:web1 .*replica:UpToDate" "$W/events" ||
	{ cat "$W/events"; fail "no replica change event"; }
grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9]{2}:[0-9]{2} exists node name:beta connected:yes quorate:yes" "$W/events" ||
	{ cat "$W/events"; fail "exists node line"; }
grep -q "exists peer name:web1 peer-node:alpha present:yes connection:StandAlone" "$W/events" ||
	fail "exists peer line"
grep -q "change peer name:web1 peer-node:alpha.*role:Primary" "$W/events" ||
	{ cat "$W/events"; fail "peer role change"; }
grep -q "change peer name:web1 peer-node:alpha.*replication:Lockstep" "$W/events" ||
	fail "replication change"
ctl alpha events --now > "$W/now" || fail "events --now"
[ "$(tail -1 "$W/now")" = "exists -" ] || fail "events --now did not end with 'exists -'"
grep -c "^exists" "$W/now" | grep -qx 4 || fail "events --now: $(cat "$W/now")"
log "events: $(wc -l < "$W/events") lines; status and --json agree"

# config check
expect_rc 0 "$KEMARICTL" config check -c "$W/alpha/kemari.conf"
grep -q "ok, 1 VM(s): web1 (alpha, beta)" "$W/out" || fail "config check output"
sed "s/\tdelay_ms =/\tdelay =/" "$W/alpha/kemari.conf" > "$W/bad.conf"
expect_rc 5 "$KEMARICTL" config check -c "$W/bad.conf"
n=$(grep -n "delay =" "$W/bad.conf" | cut -d: -f1)
grep -qx "$W/bad.conf:$n: unknown setting 'delay' in fencing" "$W/out" ||
	{ cat "$W/out"; fail "config check: no file:line"; }
log "config check reports $(cat "$W/out")"

# config reload: fencing, backend.command, ipc.group and log settings apply
# at once; anything else refuses the whole file, and so does an error.
C=$W/alpha/kemari.conf
cp "$C" "$W/good.conf"
sed -i "s/\tdelay_ms = [0-9]*;/\tdelay_ms = 1500;/" "$C"
expect_rc 0 ctl alpha config reload
grep -qx "reloaded: fencing.delay_ms" "$W/out" || fail "reload: $(cat "$W/out")"
grep -q "configuration $C reloaded: fencing.delay_ms" "$W/alpha/kemarid.log" ||
	fail "reload not logged"
sed -i 's/group = "kemari"/group = "other"/' "$C"
expect_rc 1 ctl alpha config reload
grep -q "cluster.group changed: restart kemarid to apply it" "$W/out" ||
	fail "restart-only change: $(cat "$W/out")"
cp "$W/bad.conf" "$C"
expect_rc 5 ctl alpha config reload
grep -q "$C:$n: unknown setting 'delay' in fencing" "$W/out" ||
	fail "invalid reload: $(cat "$W/out")"
cp "$W/good.conf" "$C"
kill -HUP "$(pid_of alpha kemarid)"
wait_for 5 grep -q "configuration $C reloaded: fencing.delay_ms" "$W/alpha/kemarid.log" ||
	fail "SIGHUP did not reload"
[ "$(grep -c "reloaded: fencing.delay_ms" "$W/alpha/kemarid.log")" = 2 ] ||
	fail "SIGHUP: $(grep reload "$W/alpha/kemarid.log")"
is alpha web1 role Primary || fail "a reload changed the role"
log "config reload: live settings applied (IPC and SIGHUP); restart-only and invalid files refused"

# systemd: READY=1 once up, WATCHDOG=1 every WATCHDOG_USEC/2. Restart
# beta's kemarid under a stand-in notify socket (alpha only outdates it
# meanwhile, so it is not powered off).
echo outdate > "$W/fence-mode"
"$(dirname "$0")/notify-listen.py" "$W/notify" 6 > "$W/notify.out" &
kmns_track $!
wait_for 5 grep -q listening "$W/notify.out" || fail "notify listener"
kill "$(pid_of beta kemarid)"
wait "$(pid_of beta kemarid)" 2>/dev/null
KEMARID_ENV="NOTIFY_SOCKET=$W/notify WATCHDOG_USEC=1000000" kemarid_start beta
wait_for 15 node_quorate beta || fail "beta's kemarid did not come back"
# beta's event stream saw its kemarid go, as events2 sees `drbdadm down`.
grep -q "destroy peer name:web1 peer-node:alpha$" "$W/events" &&
	grep -q "destroy vm name:web1$" "$W/events" &&
	grep -q "destroy node name:beta$" "$W/events" ||
	fail "no destroy lines: $(tail -5 "$W/events")"
sleep 3
grep -q " READY=1$" "$W/notify.out" || { cat "$W/notify.out"; fail "no READY=1"; }
grep -q " STATUS=node beta, 1 VM(s)$" "$W/notify.out" || fail "no STATUS"
kicks=$(grep -c " WATCHDOG=1$" "$W/notify.out")
[ "$kicks" -ge 5 ] || { cat "$W/notify.out"; fail "only $kicks watchdog kicks in 3 s at 1 s WatchdogSec"; }
log "systemd: READY=1 and $kicks WATCHDOG=1 kicks"
# Whether alpha's fence (exit 4) or beta's return came first decides if
# alpha resumed protection by itself; reprotect covers the other order.
ctl alpha reprotect web1 > /dev/null 2>&1
wait_for 10 lockstep alpha || fail "no Lockstep after beta's kemarid restart"

# unprotect
expect_rc 0 ctl alpha unprotect web1
wait_for 10 is beta web1 replica Outdated || fail "unprotect did not reach beta"
log "PASS"
