#!/usr/bin/env bash
# Inside the lab: two Soft-RoCE devices on a veth pair, a librdmacm RC
# connection that RDMA WRITEs a pattern and SENDs its hash, verified by the
# receiver; then the same with one byte corrupted after hashing, which the
# receiver must refuse.
#
#   run.sh PATH/TO/rdma-xfer
set -euo pipefail
xfer=$1
[ -x "$xfer" ] || { echo "FAIL: rdma-xfer not found at '$xfer' (build it first)" >&2; exit 1; }
[ "${KEMARI_LAB:-}" = 1 ] || { echo "FAIL: run.sh runs inside the lab (tests/lab/lab-run)" >&2; exit 1; }

. "$(dirname "$0")/rxe-pair.sh"

work=$(mktemp -d)
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rxe_pair_down
	rm -rf "$work"
}
trap cleanup EXIT

# Modules, the veth pair and the routes that make two local addresses
# talk over it (rxe-pair.sh says why each line is there).
t0=$(now)
rxe_veth_up
echo "modules, veth pair and routes up in $(ms "$t0") ms"

# Before any rxe device exists the program must say so plainly (exit 2).
rc=0
"$xfer" client -a 192.0.2.1 -b 192.0.2.2 -t 10 >"$work/nodev" 2>&1 || rc=$?
cat "$work/nodev"
[ "$rc" = 2 ] && grep -q 'no RDMA device found' "$work/nodev" ||
	fail "without an RDMA device: exit $rc and no clear message"

t0=$(now)
rxe_links_up
rdma link show
echo "rxe0 and rxe1 ACTIVE $(ms "$t0") ms after the first link add"

# Without CAP_IPC_LOCK and with 4 KiB of RLIMIT_MEMLOCK, registering the
# 16 KiB buffer must fail with a message naming the limit (exit 2). The
# client registers right after address resolution: no server is needed.
rc=0
setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock bash -c \
	'ulimit -l 4 && exec "$0" client -a 192.0.2.1 -b 192.0.2.2 -t 10' \
	"$xfer" >"$work/memlock" 2>&1 || rc=$?
cat "$work/memlock"
[ "$rc" = 2 ] && grep -q 'RLIMIT_MEMLOCK is 4096 bytes' "$work/memlock" ||
	fail "with a 4 KiB memlock limit: exit $rc and no clear message"

# One transfer: start a server on 192.0.2.1, wait until it listens, run the
# client from 192.0.2.2. Sets server_rc and client_rc; output in $work.
transfer() {
	local name=$1 port=$2 seed=$3 pages=$4; shift 4
	local t=$(now)

	"$xfer" server -a 192.0.2.1 -p "$port" -s "$seed" -n "$pages" -t 60 \
		>"$work/$name.server" 2>&1 &
	server_pid=$!
	for _ in $(seq 300); do
		[[ $(<"$work/$name.server") == *'listening on'* ]] && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'listening on' "$work/$name.server" || {
		cat "$work/$name.server"
		fail "$name: the server did not start listening"
	}
	echo "$name: server listening after $(ms "$t") ms"
	client_rc=0
	"$xfer" client -a 192.0.2.1 -b 192.0.2.2 -p "$port" -s "$seed" \
		-n "$pages" -t 60 "$@" >"$work/$name.client" 2>&1 || client_rc=$?
	server_rc=0
	wait "$server_pid" || server_rc=$?
	server_pid=
	sed "s/^/  [$name server] /" "$work/$name.server"
	sed "s/^/  [$name client] /" "$work/$name.client"
	echo "$name: server exit $server_rc, client exit $client_rc, $(ms "$t") ms"
}

rx0=$(</sys/class/net/veth0/statistics/rx_bytes)
transfer good 7471 42 4
rx=$(($(</sys/class/net/veth0/statistics/rx_bytes) - rx0))
echo "good: veth0 received $rx bytes"
[ "$rx" -ge 16384 ] ||
	fail "good: only $rx bytes crossed veth1 -> veth0; the WRITE did not go over the pair"
[ "$client_rc" = 0 ] || fail "good: the client failed (exit $client_rc)"
[ "$server_rc" = 0 ] || fail "good: the server did not verify (exit $server_rc)"
grep -q 'server: OK: 16384 bytes' "$work/good.server" ||
	fail "good: the server's OK line is missing"

# The negative check: byte 5000 (page 1) flipped after hashing. The
# transfer itself succeeds; the server must see both the hash and the
# byte differ, and exit 1 (mismatch), not 3 (transport failure).
transfer corrupt 7472 43 4 -c 5000
[ "$client_rc" = 0 ] || fail "corrupt: the client failed (exit $client_rc)"
[ "$server_rc" = 1 ] ||
	fail "corrupt: the server exited $server_rc, expected 1 (mismatch)"
grep -q 'first differing byte at offset 5000 (page 1)' "$work/corrupt.server" ||
	fail "corrupt: the server did not name offset 5000"
grep -q 'MISMATCH: buffer xxh64' "$work/corrupt.server" ||
	fail "corrupt: the server did not report the hash mismatch"

echo "PASS: RDMA WRITE + SEND verified over rxe; a corrupted transfer was refused"
