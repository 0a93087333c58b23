#!/usr/bin/env bash
# Inside the lab (tests/lab/lab-run): fault containment with the test build
# of kemari.ko (kmod/kbuild.sh --test), which alone has the deliberate fault
# trigger.
#
#   fault.sh KMOD_GATE TEST_OUTDIR
#
# kmod-gate fault makes a registered vCPU thread fault in the kernel twice
# (a NULL dereference on CPU 1 with CPU offlining asked for, then a general
# protection fault without), and checks the eventfd, EIO instead of hangs,
# the dead state, the CPU going offline, and another VM running on. Here:
# the kernel survived, the module unloads afterwards, and the log holds the
# two expected oopses and nothing else (no WARNING, no other BUG).
set -euo pipefail
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"

gate=${1:?usage: fault.sh KMOD_GATE TEST_OUTDIR}
out=${2:?usage: fault.sh KMOD_GATE TEST_OUTDIR}
: "${KEMARI_LAB:?fault.sh runs inside the lab: tests/lab/lab-run -- $0 ...}"
marker="kemari-lab-fault: begin $$"
ko=$out/kemari.ko

. "$(dirname "$0")/lib.sh"

"$KEMARI_SRC/kmod/kbuild.sh" --check "$out" ||
	fail "$ko is missing or older than kmod/: kmod/kbuild.sh --test $out"
[ -n "$(modinfo -F kemari_test_build "$ko")" ] || fail "$ko is not the test build"
[ "$(cat /proc/sys/kernel/panic_on_oops)" = 0 ] || fail "panic_on_oops is set"
[ "$(cat /sys/devices/system/cpu/cpu1/online)" = 1 ] || fail "CPU 1 is not online"
kmsg_mark

lab_kvm_ready || fail "kvm_amd and the held VM"
timeout 60 insmod "$ko" || fail "insmod $ko"
kmsg_has "TEST BUILD" || fail "the load message does not say TEST BUILD"

t=$(ms)
timeout 150 "$gate" fault || fail "kmod-gate fault"
echo "fault checks: $(($(ms) - t)) ms"
[ "$(cat /sys/devices/system/cpu/cpu1/online)" = 1 ] || fail "CPU 1 was not brought back"

kmsg_has "CPU 1 taken offline after the fault" || fail "no offline message"
n=$(kmsg_since | grep -c "VM fenced, owner notified" || true)
[ "$n" = 2 ] || fail "$n containment messages, expected 2"
kmsg_has "BUG: kernel NULL pointer dereference" || fail "no NULL oops"
kmsg_has "general protection fault" || fail "no GP oops"
if kmsg_since | grep -E 'WARNING:|BUG:|soft lockup|refcount_t' |
	grep -v 'BUG: kernel NULL pointer dereference'; then
	fail "the kernel log shows more than the two deliberate faults"
fi

# The faulted VMs stay allocated (their dead threads' references), but the
# module holds nothing of theirs: it unloads.
t=$(ms)
timeout 60 rmmod kemari || fail "rmmod after the faults"
echo "rmmod: $(($(ms) - t)) ms"
echo "lab_kmod_fault: PASS"
