#!/usr/bin/env bash
# Runs on both lab hosts of a pair (tests/lab/lab-run --topology pair):
# Soft-RoCE on each host's eth0, the QEMU socket link between them. Host a
# serves on its address; host b RDMA WRITEs 64 pages into it and SENDs
# their hash; a verifies. This is the shape of the replicator's own link.
#
#   pair.sh PATH/TO/rdma-xfer
set -euo pipefail
xfer=$1
h=${KEMARI_LAB_HOST:-?}
fail() { echo "$h: FAIL: $*" >&2; exit 1; }
[ -x "$xfer" ] || fail "rdma-xfer not found at '$xfer' (build it first)"
[ -n "${KEMARI_LAB_ADDR:-}" ] && [ -n "${KEMARI_LAB_PEER:-}" ] ||
	fail "run me with tests/lab/lab-run --topology pair"

now() { echo "${EPOCHREALTIME/./}"; }
ms() { echo $((($(now) - $1) / 1000)); }
pages=64 seed=7

# rxe's own counters: retransmissions and sequence errors show a lossy link.
rxe_stats() {
	rdma statistic show link rxe0/1 | tr ' ' '\n' |
		paste -sd' ' | sed "s/^/$h: /"
}

cleanup() { rdma link delete rxe0 2>/dev/null || true; }
trap cleanup EXIT

t0=$(now)
for m in crc32_generic rdma_rxe rdma_ucm; do
	modprobe "$m" || fail "modprobe $m"
done
rdma link add rxe0 type rxe netdev eth0
for _ in $(seq 100); do
	rdma link show rxe0/1 | grep -q 'state ACTIVE' && break
	sleep 0.1
done
rdma link show rxe0/1 | grep -q 'state ACTIVE' || fail "rxe0 is not ACTIVE"
echo "$h: rxe0 on eth0 ($KEMARI_LAB_ADDR) ACTIVE in $(ms "$t0") ms"

if [ "$h" = a ]; then
	rx0=$(</sys/class/net/eth0/statistics/rx_bytes)
	rc=0
	out=$("$xfer" server -a "$KEMARI_LAB_ADDR" -n $pages -s $seed \
		-t 120 2>&1) || rc=$?
	echo "$out" | sed "s/^/$h: /"
	rx=$(($(</sys/class/net/eth0/statistics/rx_bytes) - rx0))
	echo "$h: eth0 received $rx bytes during the transfer"
	rxe_stats
	[ "$rc" = 0 ] || fail "the server exited $rc"
	[[ $out == *"server: OK: $((pages * 4096)) bytes"* ]] ||
		fail "the server's OK line is missing"
	[ "$rx" -ge $((pages * 4096)) ] || fail "only $rx bytes arrived on eth0"
	exit 0
fi

# Host b: the server may not listen yet (the hosts boot independently);
# only a rejection (no listener) is retried, boundedly.
for i in $(seq 60); do
	rc=0
	out=$("$xfer" client -a "$KEMARI_LAB_PEER" -b "$KEMARI_LAB_ADDR" \
		-n $pages -s $seed -t 20 2>&1) || rc=$?
	[ "$rc" = 3 ] && [[ $out == *REJECTED* ]] || break
	sleep 1
done
echo "$out" | sed "s/^/$h: /"
[ "$rc" = 0 ] || fail "the client exited $rc (attempt $i)"
echo "$h: transfer done on attempt $i"
rxe_stats
