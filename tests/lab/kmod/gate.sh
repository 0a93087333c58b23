#!/usr/bin/env bash
# Inside the lab (tests/lab/lab-run): kemari.ko's sync gate on real KVM.
#
#   gate.sh KMOD_GATE OUTDIR [CYCLES]
#
# Loads kvm_amd and the module built on the host in OUTDIR, runs the gate
# and agent-loss checks (kmod-gate gate), unloads, runs CYCLES (default 3)
# load/unload cycles with VMs running (kmod-gate cycles), and fails on any
# WARNING/BUG/Oops in dmesg or a W/D taint.
set -euo pipefail
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"

gate=${1:?usage: gate.sh KMOD_GATE OUTDIR [CYCLES]}
out=${2:?usage: gate.sh KMOD_GATE OUTDIR [CYCLES]}
cycles=${3:-3}
: "${KEMARI_LAB:?gate.sh runs inside the lab: tests/lab/lab-run -- $0 ...}"
marker="kemari-lab-gate: begin $$"
ko=$out/kemari.ko

. "$(dirname "$0")/lib.sh"

# bounded SECONDS WHAT CMD...: run CMD; if it is still running after
# SECONDS, dump its kernel stack and every CPU's backtrace into the log
# and fail (a module that hangs in unload cannot be killed).
bounded() {
	local secs=$1 what=$2 pid i
	shift 2
	"$@" &
	pid=$!
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "--- $what: still running after $secs s; its kernel stack:" >&2
		cat "/proc/$pid/stack" >&2 || true
		echo 1 >/proc/sys/kernel/sysrq
		echo l >/proc/sysrq-trigger
		echo w >/proc/sysrq-trigger
		fail "$what hung"
	fi
	wait "$pid" || fail "$what"
}

"$KEMARI_SRC/kmod/kbuild.sh" --check "$out" ||
	fail "$ko is missing or older than kmod/: build it on the host first (kmod/kbuild.sh $out)"
kmsg_mark

t=$(ms)
lab_kvm_ready || fail "kvm_amd and the held VM"
echo "kvm_amd and the held VM: $(($(ms) - t)) ms"
t=$(ms)
bounded 60 "insmod $ko" insmod "$ko"
echo "insmod: $(($(ms) - t)) ms"

t=$(ms)
bounded 150 "kmod-gate gate" "$gate" gate
echo "gate checks: $(($(ms) - t)) ms"
t=$(ms)
bounded 60 "rmmod after the gate checks" rmmod kemari
echo "rmmod: $(($(ms) - t)) ms"

t=$(ms)
bounded 150 "kmod-gate cycles" "$gate" cycles "$ko" "$cycles"
echo "$cycles load/unload cycles with VMs running: $(($(ms) - t)) ms"
[ ! -d /sys/module/kemari ] || fail "kemari still loaded after the cycles"

kmsg_clean
echo "lab_kmod_gate: PASS"
