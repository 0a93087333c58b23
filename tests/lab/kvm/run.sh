#!/usr/bin/env bash
# Inside the lab: load kvm_amd, run the KVM self-test suite and the
# demonstration guest.
set -euo pipefail
selftest=$1 hello=$2
t0=$(date +%s%N)
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"
lab_kvm_ready
echo "kvm_amd loaded and a VM held in $((($(date +%s%N) - t0) / 1000000)) ms"
"$selftest" --verbose=0 --jobs 1
"$hello" 2000
