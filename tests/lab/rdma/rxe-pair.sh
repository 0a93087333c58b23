#!/usr/bin/env bash
# Sourced inside the lab: two Soft-RoCE devices on a veth pair in one
# kernel, rxe0 on veth0 (192.0.2.1, the secondary) and rxe1 on veth1
# (192.0.2.2, the primary). Defines fail, now, ms, rxe_veth_up (modules,
# the veth pair and its routes), rxe_links_up (the two rxe devices) and
# rxe_pair_up (both); the caller's EXIT trap should call rxe_pair_down.
# Used by the RDMA self-test (run.sh) and the replicator's lab suites.
#
# Why one network namespace and policy routes: on Debian's 6.1 rxe opens
# its UDP socket (port 4791) in the initial namespace only; with the veth
# ends in two namespaces the CM connect ended UNREACHABLE (-110, measured
# 2026-11-26) although both links were ACTIVE and ping worked. Both
# addresses are then local to one kernel, which would route them through
# lo (no RDMA device there); the rules below send locally generated
# traffic between them out of the other end of the pair (see
# tests/lab/rdma/README.md for the measurements behind every line).
fail() { echo "FAIL: $*" >&2; exit 1; }
now() { echo "${EPOCHREALTIME/./}"; }
ms() { echo $((($(now) - $1) / 1000)); }

rxe_pair_down() {
	rdma link delete rxe1 2>/dev/null || true
	rdma link delete rxe0 2>/dev/null || true
	ip link del veth0 2>/dev/null || true
	ip rule del pref 10 2>/dev/null || true
	ip rule del pref 11 2>/dev/null || true
	ip rule add pref 0 lookup local 2>/dev/null &&
		ip rule del pref 100 2>/dev/null || true
}

rxe_veth_up() {
	local d
	[ "${KEMARI_LAB:-}" = 1 ] || fail "run me inside the lab (tests/lab/lab-run)"
	# rdma_rxe needs crc32_generic first; autoloading does not work here.
	for m in crc32_generic veth rdma_rxe rdma_ucm; do
		modprobe "$m" || fail "modprobe $m"
	done
	ip -batch - <<-EOF2
	link add veth0 type veth peer name veth1
	addr add 192.0.2.1/24 dev veth0
	addr add 192.0.2.2/24 dev veth1
	link set veth0 up
	link set veth1 up
	EOF2
	for d in all veth0 veth1; do
		echo 1 >/proc/sys/net/ipv4/conf/$d/accept_local
		echo 0 >/proc/sys/net/ipv4/conf/$d/rp_filter
	done
	# Permanent neighbours: ib_core can lose the wake-up of an ARP reply
	# that arrives at once over veth and then sleeps its whole timeout.
	ip -batch - <<-EOF2
	rule add pref 100 lookup local
	rule del pref 0
	rule add pref 10 iif lo to 192.0.2.1 lookup 101
	rule add pref 11 iif lo to 192.0.2.2 lookup 102
	route add 192.0.2.1 dev veth1 src 192.0.2.2 table 101
	route add 192.0.2.2 dev veth0 src 192.0.2.1 table 102
	neigh replace 192.0.2.1 dev veth1 nud permanent lladdr $(</sys/class/net/veth0/address)
	neigh replace 192.0.2.2 dev veth0 nud permanent lladdr $(</sys/class/net/veth1/address)
	EOF2
	ip route get 192.0.2.1 from 192.0.2.2 | grep -q 'dev veth1' ||
		fail "192.0.2.1 is not routed over veth1: $(ip route get 192.0.2.1 from 192.0.2.2)"
}

rxe_links_up() {
	rdma link add rxe0 type rxe netdev veth0
	rdma link add rxe1 type rxe netdev veth1
	for _ in $(seq 150); do
		[ "$(rdma link show | grep -c 'state ACTIVE')" -ge 2 ] && break
		sleep 0.1
	done
	[ "$(rdma link show | grep -c 'state ACTIVE')" -ge 2 ] ||
		fail "rxe0/rxe1 did not become ACTIVE: $(rdma link show)"
}

rxe_pair_up() {
	local t0
	t0=$(now)
	rxe_veth_up
	rxe_links_up
	echo "rxe pair up in $(ms "$t0") ms"
}
