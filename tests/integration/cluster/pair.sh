#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Two "hosts" for cluster tests, alpha (192.0.2.1) and beta (192.0.2.2),
# made by ../lib/netns.sh (network + private mount namespaces on a bridge,
# one corosync each: knet, two_node, token 1000 ms), each with its own
# kemarid, state directory, fence-peer handler and command backend. Sourced
# by the test scripts; everything lives under $W (= $KMNS_DIR) and is
# removed at exit, after a check that no sanitizer report was written.
#
# The fence handler acts as a power switch: the first node to fence wins, a
# fenced node is "off" (its kemarid, corosync and VM are gone, $W/NODE.dead)
# and cannot fence anybody. $W/fence-mode: stonith (default), fail (exit
# 1), fail-once (exit 1 the first time, then stonith), outdate (exit 4),
# lie (exit 7 without powering anything off: a broken fence device).
# $W/fence-slow-NODE: that node's fence device takes 3 s.
#
# The backend records every action in $W/backend.log and the VM's state in
# $W/NODE/vm-VM (running, replica, stopped, off); `probe` answers 0 if the
# VM runs there, 7 if not.

set -o pipefail

: "${KEMARI_BUILD:?set KEMARI_BUILD to the build directory}"
: "${KEMARI_SRC:?set KEMARI_SRC to the source directory}"
KEMARID=$KEMARI_BUILD/cluster/kemarid
KEMARICTL=$KEMARI_BUILD/cluster/kemarictl
NODES="alpha beta"
declare -A PEER=([alpha]=beta [beta]=alpha)
TAG=km$$

. "$(dirname "${BASH_SOURCE[0]}")/../lib/netns.sh"
kmns_init
W=$KMNS_DIR

log() { kmns_log "$*" 2>&1; }
fail() { log "FAIL: $*"; pair_dump; exit 1; }
now() { date +%s.%N; }
# Milliseconds between two `now` values.
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# Run a command as if on node $1.
on() { kmns_exec "$@"; }
ctl() { local n=$1; shift; kmns_exec "$n" "$KEMARICTL" "$@"; }

write_kemari_conf() {
	local n=$1
	cat > "$W/$n/kemari.conf" <<EOC
cluster: { group = "kemari"; };
vm_dir = "$W/vms.d";
state_dir = "$W/$n/state";
fencing: {
	handler = "$W/fence.sh";
	delay_ms = ${FENCE_DELAY_MS:-1000};
	timeout_ms = 10000;
	retries = ${FENCE_RETRIES:-2};
	retry_delay_ms = 300;
};
backend: { type = "command"; command = "$W/backend.sh"; };
ipc: { group = "${IPC_GROUP:-haclient}"; };
log: { blackbox_dir = "$W/$n/blackbox"; debug = true; };
EOC
}

write_scripts() {
	mkdir -p "$W/vms.d"
	cat > "$W/vms.d/web1.conf" <<EOC
vm: {
	name = "web1";
	on = (
		{ node = "alpha"; address = "192.0.2.1"; },
		{ node = "beta"; address = "192.0.2.2"; }
	);
};
EOC
	cat > "$W/fence.sh" <<'EOS'
#!/bin/bash
W=$(dirname "$0")
vm=$1 peer=$2 me=$KEMARI_NODE
mode=$(cat "$W/fence-mode" 2>/dev/null || echo stonith)
# A slow fence device on this node: the other side's handler wins the race.
[ -e "$W/fence-slow-$me" ] && sleep 3
exec 9>"$W/fence.lock"
flock 9
echo "$(date +%s.%N) $me fences $peer for $vm as $KEMARI_ROLE mode $mode" >> "$W/fence.log"
[ -e "$W/$me.dead" ] && exit 5
case $mode in
fail) exit 1 ;;
fail-once) echo stonith > "$W/fence-mode"; exit 1 ;;
outdate) exit 4 ;;
lie) echo "$(date +%s.%N) $me lied about $peer" >> "$W/fence.log"; exit 7 ;;
esac
touch "$W/$peer.dead"
# Power off: the daemons, whatever kemarid had running (its own fence
# handler included), and the VM.
# kemarid is stopped first: a kemarid still running between the two
# kills could start a fence retry that no one kills (seen under load).
k=$(cat "$W/$peer/kemarid.pid" 2>/dev/null)
[ -n "$k" ] && kill -STOP "$k" 2>/dev/null &&
	kill -9 $(ps -o pid= --ppid "$k") 2>/dev/null
for p in kemarid corosync; do
	[ -f "$W/$peer/$p.pid" ] && kill -9 "$(cat "$W/$peer/$p.pid")" 2>/dev/null
done
for f in "$W/$peer"/vm-*; do
	[ -e "$f" ] && echo off > "$f"
done
echo "$(date +%s.%N) $me fenced $peer" >> "$W/fence.log"
exit 7
EOS
	cat > "$W/backend.sh" <<'EOS'
#!/bin/bash
W=$(dirname "$0")
[ -e "$W/$KEMARI_NODE.dead" ] && exit 1
echo "$(date +%s.%N) $KEMARI_NODE $1 $2 gen=$KEMARI_GENERATION" >> "$W/backend.log"
vm=$W/$KEMARI_NODE/vm-$2
if [ "$1" = probe ]; then
	[ "$(cat "$vm" 2>/dev/null)" = running ] && exit 0
	exit 7
fi
[ -e "$W/backend-fail" ] && exit 1
case $1 in
promote) echo running > "$vm" ;;
demote|stop) echo stopped > "$vm" ;;
start-replica) echo replica > "$vm" ;;
esac
exit 0
EOS
	chmod +x "$W/fence.sh" "$W/backend.sh"
}

corosync_start() {
	kmns_corosync_start "$1"
}

kemarid_start() {
	local n=$1
	# KEMARID_ENV: extra environment (e.g. NOTIFY_SOCKET) for this start.
	# shellcheck disable=SC2086
	kmns_bg -a "$n" "$W/$n/kemarid.log" env $KEMARID_ENV "$KEMARID" -f \
		-c "$W/$n/kemari.conf"
	echo "$KMNS_PID" > "$W/$n/kemarid.pid"
}

pid_of() { cat "$W/$1/$2.pid"; }
alive() { _kmns_alive "$(pid_of "$1" "$2")"; }

# Wait up to $1 seconds for "$@" to succeed.
wait_for() {
	local t=$1 end
	shift
	end=$(( $(date +%s) + t ))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# The value of key $3 in `kemarictl status` of node $1 for VM $2's lines,
# e.g. field alpha web1 role -> Primary (first match).
status_of() { ctl "$1" status "$2" 2>/dev/null; }
field() {
	status_of "$1" "$2" | tr ' ' '\n' | sed -n "s/^$3://p" | head -1
}
peer_field() {
	status_of "$1" "$2" | grep "^  ${PEER[$1]} " | tr ' ' '\n' |
		sed -n "s/^$3://p" | head -1
}
is() { [ "$(field "$1" "$2" "$3")" = "$4" ]; }
node_quorate() { ctl "$1" status | grep "quorate:yes" | grep -q "group-members:2"; }

# `kemarictl events` of node $1 into file $2 (KMNS_PID is its pid).
events_start() {
	kmns_bg "$1" "$2" "$KEMARICTL" events --timestamps
	wait_for 10 grep -q "exists -" "$2" || fail "events on $1: $(cat "$2.err")"
}

node_up() {
	local n=$1
	rm -f "$W/$n.dead"
	corosync_start "$n"
	kemarid_start "$n"
}

pair_up() {
	kmns_deadline "${DEADLINE:-370}"
	kmns_up alpha beta
	log "pair in $W"
	write_scripts
	for n in $NODES; do
		write_kemari_conf "$n"
	done
	for n in $NODES; do
		node_up "$n"
	done
	for n in $NODES; do
		wait_for 30 node_quorate "$n" || fail "$n not quorate with 2 members in 30 s"
	done
	log "pair up: both quorate, both kemarids in the group"
}

# Node $1 runs web1 and protects it on the other; wait for Lockstep.
protect_on() {
	local p=$1 s=${PEER[$1]}
	ctl "$p" protect web1 --peer "$s" || fail "protect on $p"
	wait_for 20 lockstep "$p" || fail "no Lockstep with $p Primary"
}
lockstep() {
	local p=$1 s=${PEER[$1]}
	is "$p" web1 role Primary && is "$s" web1 role Secondary &&
		is "$p" web1 replication Lockstep &&
		is "$s" web1 replication Lockstep &&
		is "$s" web1 replica UpToDate
}

# kill -9 of the node's kemarid (and what it runs) and corosync; the VM,
# which runs in a process of its own, is left alone as a real crash of the
# daemons would.
node_kill() {
	local n=$1
	touch "$W/$n.dead"
	kill -9 $(ps -o pid= --ppid "$(pid_of "$n" kemarid)") 2>/dev/null
	kill -9 "$(pid_of "$n" kemarid)" "$(pid_of "$n" corosync)" 2>/dev/null
	wait "$(pid_of "$n" kemarid)" "$(pid_of "$n" corosync)" 2>/dev/null
	true
}

# The node was powered off by fencing (or by the test): "reboot" it. The
# VM did not survive the power cut.
node_reboot() {
	local n=$1 f
	alive "$n" kemarid && kill -9 "$(pid_of "$n" kemarid)" 2>/dev/null
	alive "$n" corosync && kill -9 "$(pid_of "$n" corosync)" 2>/dev/null
	wait "$(pid_of "$n" kemarid)" "$(pid_of "$n" corosync)" 2>/dev/null
	for f in "$W/$n"/vm-*; do
		[ -e "$f" ] && echo off > "$f"
	done
	# A reboot empties /dev/shm: the libqb rings of the killed daemons.
	on "$n" sh -c 'rm -rf /dev/shm/qb-*'
	node_up "$n"
	wait_for 30 node_quorate "$n" || fail "$n did not rejoin"
	wait_for 30 node_quorate "${PEER[$n]}" || fail "${PEER[$n]} does not see $n"
}

partition() {
	on alpha nft -f - <<EON
table inet $TAG {
	chain in { type filter hook input priority 0; policy accept; ip saddr 192.0.2.2 drop; }
	chain out { type filter hook output priority 0; policy accept; ip daddr 192.0.2.2 drop; }
}
EON
}
heal() { on alpha nft delete table inet "$TAG" 2>/dev/null; true; }

pair_dump() {
	local n
	for n in $NODES; do
		echo "---- $n: kemarictl status"
		ctl "$n" status 2>&1 | sed 's/^/    /'
		echo "---- $n: kemarid.log (last 40)"
		tail -40 "$W/$n/kemarid.log" 2>/dev/null | sed 's/^/    /'
	done
	echo "---- fence.log"; cat "$W/fence.log" 2>/dev/null
	echo "---- backend.log"; cat "$W/backend.log" 2>/dev/null
}

# Run by the library's teardown once every daemon has exited: a sanitizer
# build reports into the daemon's log at exit.
pair_check_sanitizer() {
	local f
	f=$(grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" \
		"$W"/*/kemarid.log 2>/dev/null) || return 0
	grep -h -A30 "ERROR: \|runtime error:" $f | head -80
	echo "FAIL: sanitizer report in $f"
	return 1
}
KMNS_TEARDOWN_HOOK=pair_check_sanitizer
