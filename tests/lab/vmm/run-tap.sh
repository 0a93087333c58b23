#!/usr/bin/env bash
# Inside the lab: load kvm_amd, hold one VM for the run (kvm_hold.c), run
# one of the vmm Criterion suites, then any extra command (a bench).
#   run-tap.sh SUITE [BENCH ARGS...]
set -euo pipefail
KM_KVM_HOLD=${KM_KVM_HOLD:-$KEMARI_BUILD/tests/lab/vmm/kvm-hold}
. "$(dirname "$0")/lab-kvm.sh"
lab_kvm_ready
"$1" --verbose=1 --jobs 1
shift
[ $# -eq 0 ] || "$@"
