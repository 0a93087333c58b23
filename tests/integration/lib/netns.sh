# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# netns.sh: "hosts" for cluster tests on one machine, sourced by bash test
# scripts (run as root). Each host is a network namespace plus a private
# mount namespace in which /run, /var/lib/corosync, /etc/corosync and
# /dev/shm are the host's own: corosync's IPC is an abstract socket (per
# network namespace) but its pid file, state files, config and libqb
# shared-memory rings are files, so without the mounts two nodes would
# collide. Hosts hang off one bridge in a "switch" namespace; host number i
# (from 1, in the order given to kmns_up) is 192.0.2.i/24 on its eth0 and
# corosync nodeid i. Nothing is created in the caller's own namespaces.
#
#   kmns_init                set up $KMNS_DIR and the teardown trap; call first
#   kmns_up NAME...          create the switch and one host per NAME, and
#                            write each host's corosync.conf (knet, token
#                            $KMNS_TOKEN ms (default 1000), two_node when
#                            there are exactly two hosts)
#   kmns_exec NAME CMD...    run CMD inside host NAME (net + mount namespaces)
#   kmns_bg [-a] NAME LOG CMD...  start CMD in NAME in the background,
#                            stdout to LOG, stderr to LOG.err (with -a: both
#                            appended to LOG, for a daemon restarted during
#                            the test); sets KMNS_PID; the process is killed
#                            (by PID) at teardown
#   kmns_track PID           also stop PID (started by the test itself, as
#                            `cmd &`) at teardown
#   kmns_stop PID [SECS]     SIGTERM PID, SIGKILL after SECS (default 3);
#                            returns the process's exit status
#   kmns_corosync_start NAME start `corosync -f` in NAME (pid in
#                            $KMNS_DIR/NAME/corosync.pid, log NAME/corosync.log)
#   kmns_corosync_kill NAME [SIG]  signal (default KILL) NAME's corosync by
#                            PID and reap it
#   kmns_corosync_pid NAME   print the PID of NAME's corosync
#   kmns_quorate NAME MEMBERS  true if NAME's corosync-quorumtool says quorate
#                            with MEMBERS nodes
#   kmns_wait_quorate NAME MEMBERS SECS  wait for that, at most SECS seconds
#   kmns_link NAME up|down   plug or unplug NAME's cable at the switch
#   kmns_deadline SECS       have the test SIGTERMed (so teardown still runs)
#                            after SECS: keep it below the ctest TIMEOUT
#   kmns_log MSG / kmns_fail MSG  timestamped message / message, dump, exit 1
#   kmns_dump                print the tail of every host's logs
#   kmns_teardown            the EXIT trap: stop every process started here
#                            (by PID, then anything still running in the
#                            test's namespaces), run $KMNS_TEARDOWN_HOOK,
#                            delete the namespaces (the veths go with
#                            them), remove $KMNS_DIR (kept when
#                            KMNS_KEEP=1); dumps the logs on failure
#
# Variables: KMNS_DIR (work directory), KMNS_HOSTS (names in order),
# KMNS_ADDR[name], KMNS_NODEID[name], KMNS_TOKEN, KMNS_KEEP, and
# KMNS_TEARDOWN_HOOK: a function run once every process has stopped (their
# logs are complete: a sanitizer report is written at exit), before anything
# is removed; if it fails, so does the test.
#
# Namespaces are named kmns-<pid of the test>-<name>; kmns_init removes
# those left by a test whose process no longer exists (one killed by
# SIGKILL, which no trap survives), killing their processes by PID, and
# such a test's /tmp/kmns-<pid>.* work directory unless KMNS_KEEP kept it.

KMNS_TOKEN=${KMNS_TOKEN:-1000}
KMNS_HOSTS=()
declare -A KMNS_ADDR=() KMNS_NODEID=()
_KMNS_PREFIX=kmns-$$
_KMNS_NETNS=()
_KMNS_PIDS=()
_KMNS_HOLDERS=()

kmns_log() { printf '%s %s\n' "$(date +%T.%3N)" "$*" >&2; }

kmns_fail() {
	kmns_log "FAIL: $*"
	exit 1
}

_kmns_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null ||
			kmns_fail "$t not found: run scripts/deps.sh (as root)"
	done
}

# True while PID runs (a zombie does not count).
_kmns_alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

_kmns_any_alive() {
	local p
	for p in "$@"; do
		_kmns_alive "$p" && return 0
	done
	return 1
}

# Namespaces whose test process is gone: kill what runs in them, delete.
_kmns_reap_stale() {
	local ns owner p d
	for ns in $(ip netns list | awk '/^kmns-[0-9]+-/ { print $1 }'); do
		owner=${ns#kmns-}
		owner=${owner%%-*}
		[ -d "/proc/$owner" ] && continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null &&
			kmns_log "removed stale namespace $ns"
	done
	for d in /tmp/kmns-[0-9]*.*; do
		[ -d "$d" ] && [ ! -e "$d/kept" ] || continue
		owner=${d#/tmp/kmns-}
		[ -d "/proc/${owner%%.*}" ] || rm -rf "$d"
	done
}

kmns_init() {
	[ "$(id -u)" = 0 ] || kmns_fail "network namespaces need root"
	_kmns_need ip nsenter unshare corosync corosync-quorumtool
	local d
	for d in /run /var/lib/corosync /etc/corosync /dev/shm; do
		[ -d "$d" ] || kmns_fail "$d missing: is corosync installed?"
	done
	_kmns_reap_stale
	KMNS_DIR=$(mktemp -d /tmp/kmns-$$.XXXXXX) || kmns_fail "mktemp"
	trap kmns_teardown EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}

_kmns_ns() { echo "$_KMNS_PREFIX-$1"; }

_kmns_switch_up() {
	local sw
	sw=$(_kmns_ns sw)
	ip netns add "$sw" || kmns_fail "ip netns add $sw"
	_KMNS_NETNS+=("$sw")
	ip -n "$sw" link add br0 type bridge &&
		ip -n "$sw" link set br0 up ||
		kmns_fail "bridge in $sw"
}

# The mount namespace lives as long as this holder (a sleep) does; every
# command for the host enters it by the holder's PID.
_kmns_holder_start() {
	local n=$1 d=$KMNS_DIR/$1 i
	mkdir -p "$d/run" "$d/lib" "$d/etc"
	ip netns exec "$(_kmns_ns "$n")" \
		unshare --mount --propagation private sh -c '
		mount --bind "$1/run" /run &&
		mount --bind "$1/lib" /var/lib/corosync &&
		mount --bind "$1/etc" /etc/corosync &&
		mount -t tmpfs -o size=64m,mode=1777 kmns-shm /dev/shm &&
		: > "$1/ready" && exec sleep infinity' sh "$d" \
		</dev/null >"$d/holder.err" 2>&1 &
	echo $! > "$d/holder.pid"
	_KMNS_HOLDERS+=($!)
	for i in $(seq 50); do
		[ -e "$d/ready" ] && return 0
		_kmns_alive "$(cat "$d/holder.pid")" || break
		sleep 0.1
	done
	kmns_fail "mount namespace for $n: $(cat "$d/holder.err")"
}

_kmns_host_up() {
	local n=$1 i=$2 ns sw
	ns=$(_kmns_ns "$n")
	sw=$(_kmns_ns sw)
	ip netns add "$ns" || kmns_fail "ip netns add $ns"
	_KMNS_NETNS+=("$ns")
	ip link add eth0 netns "$ns" type veth peer name "p$i" netns "$sw" ||
		kmns_fail "veth for $n"
	ip -n "$sw" link set "p$i" master br0 up &&
		ip -n "$ns" addr add "192.0.2.$i/24" dev eth0 &&
		ip -n "$ns" link set eth0 up &&
		ip -n "$ns" link set lo up || kmns_fail "addresses of $n"
	KMNS_ADDR[$n]=192.0.2.$i
	KMNS_NODEID[$n]=$i
	KMNS_HOSTS+=("$n")
	_kmns_holder_start "$n"
}

_kmns_corosync_conf() {
	local n=$1 h two=0
	[ ${#KMNS_HOSTS[@]} -eq 2 ] && two=1
	{
		cat <<EOC
totem {
	version: 2
	cluster_name: kmns
	transport: knet
	token: $KMNS_TOKEN
	crypto_cipher: none
	crypto_hash: none
}
quorum {
	provider: corosync_votequorum
	two_node: $two
}
logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: $KMNS_DIR/$n/corosync.log
	timestamp: hires
}
nodelist {
EOC
		for h in "${KMNS_HOSTS[@]}"; do
			cat <<EOC
	node {
		ring0_addr: ${KMNS_ADDR[$h]}
		name: $h
		nodeid: ${KMNS_NODEID[$h]}
	}
EOC
		done
		echo "}"
	} > "$KMNS_DIR/$n/etc/corosync.conf"
}

kmns_up() {
	[ $# -ge 1 ] && [ $# -le 250 ] || kmns_fail "kmns_up: 1 to 250 names"
	[ -n "$KMNS_DIR" ] || kmns_fail "kmns_up before kmns_init"
	local n i=0
	_kmns_switch_up
	for n in "$@"; do
		[[ $n =~ ^[a-z][a-z0-9]{0,15}$ ]] ||
			kmns_fail "host name '$n': use [a-z][a-z0-9]*, max 16"
		i=$((i + 1))
		_kmns_host_up "$n" "$i"
	done
	for n in "$@"; do
		_kmns_corosync_conf "$n"
	done
}

kmns_exec() {
	local n=$1 f
	shift
	f=$KMNS_DIR/$n/holder.pid
	[ -f "$f" ] || kmns_fail "no host named $n"
	nsenter -t "$(cat "$f")" -m -n --wd="$PWD" -- "$@"
}

# nsenter execs CMD, so $! is CMD itself and a signal reaches it directly.
kmns_bg() {
	local append= n log f
	[ "$1" = -a ] && { append=1; shift; }
	n=$1 log=$2
	shift 2
	f=$KMNS_DIR/$n/holder.pid
	[ -f "$f" ] || kmns_fail "no host named $n"
	if [ -n "$append" ]; then
		nsenter -t "$(cat "$f")" -m -n --wd="$PWD" -- "$@" \
			</dev/null >>"$log" 2>&1 &
	else
		nsenter -t "$(cat "$f")" -m -n --wd="$PWD" -- "$@" \
			</dev/null >"$log" 2>"$log.err" &
	fi
	KMNS_PID=$!
	_KMNS_PIDS+=("$KMNS_PID")
}

kmns_track() { _KMNS_PIDS+=("$1"); }

kmns_stop() {
	local p=$1 t=${2:-3} i
	kill -TERM "$p" 2>/dev/null
	for i in $(seq $((t * 10))); do
		_kmns_alive "$p" || break
		sleep 0.1
	done
	_kmns_alive "$p" && kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

kmns_corosync_start() {
	local n=$1
	kmns_bg "$n" "$KMNS_DIR/$n/corosync.out" corosync -f
	echo "$KMNS_PID" > "$KMNS_DIR/$n/corosync.pid"
}

kmns_corosync_pid() { cat "$KMNS_DIR/$1/corosync.pid"; }

kmns_corosync_kill() {
	local p
	p=$(kmns_corosync_pid "$1") || kmns_fail "no corosync on $1"
	kill -"${2:-KILL}" "$p" || kmns_fail "kill $p (corosync of $1)"
	wait "$p" 2>/dev/null
	return 0
}

kmns_quorate() {
	kmns_exec "$1" corosync-quorumtool -s 2>/dev/null |
		awk -v want="$2" '
		/^Quorate:/ { q = $2 }
		/^Nodes:/ { n = $2 }
		END { exit !(q == "Yes" && n == want) }'
}

kmns_wait_quorate() {
	local n=$1 m=$2 end
	end=$((SECONDS + $3))
	until kmns_quorate "$n" "$m"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.2
	done
}

kmns_link() {
	local i=${KMNS_NODEID[$1]}
	[ -n "$i" ] || kmns_fail "no host named $1"
	ip -n "$(_kmns_ns sw)" link set "p$i" "$2"
}

# The watchdog kills its own sleep when it is stopped, so teardown can end
# it by its PID alone.
kmns_deadline() {
	(
		trap 'kill "$s" 2>/dev/null; exit 0' TERM
		sleep "$1" &
		s=$!
		wait "$s" || exit 0
		# Orphaned (the test was SIGKILLed): $$ may be another process.
		[ "$(awk '{ print $4 }' "/proc/$BASHPID/stat")" = $$ ] || exit 0
		kmns_log "deadline of $1 s reached"
		kill -TERM $$
	) &
	_KMNS_WATCHDOG=$!
}

kmns_dump() {
	local n f
	for n in "${KMNS_HOSTS[@]}"; do
		for f in corosync.log corosync.out.err; do
			[ -s "$KMNS_DIR/$n/$f" ] || continue
			echo "---- $n: $f (last 30 lines)"
			tail -30 "$KMNS_DIR/$n/$f" | sed 's/^/    /'
		done
	done >&2
}

kmns_teardown() {
	local rc=$? p i ns
	trap - EXIT INT TERM HUP
	[ -n "$_KMNS_WATCHDOG" ] && kill "$_KMNS_WATCHDOG" 2>/dev/null
	[ "$rc" -ne 0 ] && [ -n "$KMNS_DIR" ] && kmns_dump
	# Newest first: clients before the corosync they talk to.
	for ((i = ${#_KMNS_PIDS[@]} - 1; i >= 0; i--)); do
		p=${_KMNS_PIDS[i]}
		_kmns_alive "$p" && kill -TERM "$p" 2>/dev/null
	done
	for i in $(seq 30); do
		_kmns_any_alive "${_KMNS_PIDS[@]}" || break
		sleep 0.1
	done
	for p in "${_KMNS_PIDS[@]}" "${_KMNS_HOLDERS[@]}"; do
		_kmns_alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	# Whatever those left behind (a daemon's children, orphaned when it
	# was killed) still runs in this test's own namespaces.
	for ns in "${_KMNS_NETNS[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
	done
	wait 2>/dev/null
	if [ -n "$KMNS_TEARDOWN_HOOK" ] && [ -n "$KMNS_DIR" ]; then
		"$KMNS_TEARDOWN_HOOK" || { [ "$rc" -ne 0 ] || rc=1; }
	fi
	for ns in "${_KMNS_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$KMNS_DIR" ]; then
		if [ -n "$KMNS_KEEP" ]; then
			: > "$KMNS_DIR/kept"
			kmns_log "kept $KMNS_DIR"
		else
			rm -rf "$KMNS_DIR"
		fi
	fi
	exit "$rc"
}
