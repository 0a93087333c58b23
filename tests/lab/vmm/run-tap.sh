#!/usr/bin/env bash
# Inside the lab: load kvm_amd, hold one VM for the run (kvm_hold.c), run
# one of the vmm Criterion suites, then any extra command (a bench).
#   run-tap.sh SUITE [BENCH ARGS...]
set -euo pipefail
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"
lab_kvm_ready
"$1" --verbose=1 --jobs 1
shift
[ $# -eq 0 ] || "$@"
