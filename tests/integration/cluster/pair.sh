#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Two "hosts" for cluster tests: network namespaces alpha (192.0.2.1) and
# beta (192.0.2.2) joined by a veth pair, each with its own corosync (knet,
# two_node, token 1000 ms) in a private mount namespace, its own kemarid and
# state directory. Sourced by the test scripts; everything lives under $W
# and is removed by pair_cleanup (installed as an EXIT trap).
#
# Written here because tests/integration/lib/ did not exist yet when these
# tests were; it keeps to what the cluster tests need.

set -o pipefail

: "${KEMARI_BUILD:?set KEMARI_BUILD to the build directory}"
: "${KEMARI_SRC:?set KEMARI_SRC to the source directory}"
KEMARID=$KEMARI_BUILD/cluster/kemarid
KEMARICTL=$KEMARI_BUILD/cluster/kemarictl
NODES="alpha beta"
declare -A ADDR=([alpha]=192.0.2.1 [beta]=192.0.2.2)
declare -A NODEID=([alpha]=1 [beta]=2)
declare -A PEER=([alpha]=beta [beta]=alpha)
TAG=km$$
W=$(mktemp -d /tmp/km-cluster.XXXXXX)

log() { printf '%s %s\n' "$(date +%T.%3N)" "$*"; }
fail() { log "FAIL: $*"; pair_dump; exit 1; }
ns() { echo "$TAG-$1"; }
now() { date +%s.%N; }
# Milliseconds between two `now` values.
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# Run a command as if on node $1.
on() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
ctl() { local n=$1; shift; on "$n" "$KEMARICTL" "$@"; }

write_corosync_conf() {
	local n=$1
	cat > "$W/$n/corosync.conf" <<EOC
totem {
	version: 2
	cluster_name: kemari-test
	transport: knet
	token: 1000
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
	node {
		ring0_addr: 192.0.2.1
		name: alpha
		nodeid: 1
	}
	node {
		ring0_addr: 192.0.2.2
		name: beta
		nodeid: 2
	}
}
quorum {
	provider: corosync_votequorum
	two_node: 1
}
logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: $W/$n/corosync.log
	timestamp: hires
}
EOC
}

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
	# Fencing as a power switch would do it: the first node to fence
	# wins; a node that was fenced is off and cannot fence anybody.
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
outdate) exit 4 ;;
esac
touch "$W/$peer.dead"
# Power off: the daemons and whatever kemarid had running (its own fence
# handler included).
k=$(cat "$W/$peer/kemarid.pid" 2>/dev/null)
[ -n "$k" ] && kill -9 $(ps -o pid= --ppid "$k") 2>/dev/null
for p in kemarid corosync; do
	[ -f "$W/$peer/$p.pid" ] && kill -9 "$(cat "$W/$peer/$p.pid")" 2>/dev/null
done
echo "$(date +%s.%N) $me fenced $peer" >> "$W/fence.log"
exit 7
EOS
	cat > "$W/backend.sh" <<'EOS'
#!/bin/bash
W=$(dirname "$0")
[ -e "$W/$KEMARI_NODE.dead" ] && exit 1
echo "$(date +%s.%N) $KEMARI_NODE $1 $2 gen=$KEMARI_GENERATION" >> "$W/backend.log"
[ -e "$W/backend-fail" ] && exit 1
case $1 in
promote) echo running > "$W/$KEMARI_NODE/vm-$2" ;;
demote|stop) echo stopped > "$W/$KEMARI_NODE/vm-$2" ;;
start-replica) echo replica > "$W/$KEMARI_NODE/vm-$2" ;;
esac
exit 0
EOS
	chmod +x "$W/fence.sh" "$W/backend.sh"
}

net_up() {
	local a b
	a=$(ns alpha) b=$(ns beta)
	ip netns add "$a"
	ip netns add "$b"
	ip link add "${TAG}a" type veth peer name "${TAG}b"
	ip link set "${TAG}a" netns "$a"
	ip link set "${TAG}b" netns "$b"
	on alpha ip addr add 192.0.2.1/24 dev "${TAG}a"
	on beta ip addr add 192.0.2.2/24 dev "${TAG}b"
	for n in $NODES; do
		on "$n" ip link set lo up
	done
	on alpha ip link set "${TAG}a" up
	on beta ip link set "${TAG}b" up
}

# Started as simple commands so that $! is the daemon itself: ip netns
# exec, unshare and sh all exec into it.
corosync_start() {
	local n=$1
	mkdir -p "$W/$n/run" "$W/$n/lib"
	ip netns exec "$(ns "$n")" unshare -m sh -c "mount --bind '$W/$n/run' /run &&
		mount --bind '$W/$n/lib' /var/lib/corosync &&
		exec corosync -f -c '$W/$n/corosync.conf'" \
		> "$W/$n/corosync.out" 2>&1 &
	echo $! > "$W/$n/corosync.pid"
	echo $! >> "$W/pids"
}

kemarid_start() {
	local n=$1
	# KEMARID_ENV: extra environment (e.g. NOTIFY_SOCKET) for this start.
	ip netns exec "$(ns "$n")" env $KEMARID_ENV "$KEMARID" -f \
		-c "$W/$n/kemari.conf" >> "$W/$n/kemarid.log" 2>&1 &
	echo $! > "$W/$n/kemarid.pid"
	echo $! >> "$W/pids"
}

pid_of() { cat "$W/$1/$2.pid"; }
alive() { kill -0 "$(pid_of "$1" "$2")" 2>/dev/null; }

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

node_up() {
	local n=$1
	rm -f "$W/$n.dead"
	corosync_start "$n"
	kemarid_start "$n"
}

pair_up() {
	log "pair in $W"
	mkdir -p "$W/alpha" "$W/beta"
	write_scripts
	for n in $NODES; do
		write_corosync_conf "$n"
		write_kemari_conf "$n"
	done
	net_up
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

node_kill() {
	local n=$1
	touch "$W/$n.dead"
	kill -9 $(ps -o pid= --ppid "$(pid_of "$n" kemarid)") 2>/dev/null
	kill -9 "$(pid_of "$n" kemarid)" "$(pid_of "$n" corosync)" 2>/dev/null
	wait "$(pid_of "$n" kemarid)" "$(pid_of "$n" corosync)" 2>/dev/null
	true
}

# The node was powered off by fencing (or by the test): "reboot" it.
node_reboot() {
	local n=$1
	alive "$n" kemarid && kill -9 "$(pid_of "$n" kemarid)" 2>/dev/null
	alive "$n" corosync && kill -9 "$(pid_of "$n" corosync)" 2>/dev/null
	sleep 0.2
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

pair_cleanup() {
	local n p
	for p in "${EXTRA_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for n in $NODES; do
		[ -f "$W/$n/kemarid.pid" ] && kill "$(cat "$W/$n/kemarid.pid")" 2>/dev/null
	done
	sleep 0.5
	for n in $NODES; do
		[ -f "$W/$n/corosync.pid" ] && kill "$(cat "$W/$n/corosync.pid")" 2>/dev/null
	done
	sleep 1
	for p in $(cat "$W/pids" 2>/dev/null); do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	# A sanitizer build reports into the daemon's log on exit.
	if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" \
		"$W"/*/kemarid.log 2>/dev/null; then
		grep -h -A30 "ERROR: \|runtime error:" "$W"/*/kemarid.log | head -80
		SANITIZER_FAILED=1
	fi
	# Daemons killed with -9 leave their libqb rings behind.
	for p in $(cat "$W/pids" 2>/dev/null); do
		rm -rf /dev/shm/qb-"$p"-* /dev/shm/qb-*-"$p"-*
	done
	ip netns del "$(ns alpha)" 2>/dev/null
	ip netns del "$(ns beta)" 2>/dev/null
	if [ -n "$KEEP" ]; then
		echo "kept $W"
	else
		rm -rf "$W"
	fi
	[ -z "$SANITIZER_FAILED" ] || { echo "FAIL: sanitizer report"; exit 1; }
}
EXTRA_PIDS=()
trap pair_cleanup EXIT
