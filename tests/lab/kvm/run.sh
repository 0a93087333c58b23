#!/usr/bin/env bash
# Inside the lab: load kvm_amd, run the KVM self-test suite and the
# demonstration guest.
set -euo pipefail
selftest=$1 hello=$2
t0=$(date +%s%N)
modprobe kvm_amd
[ -c /dev/kvm ] || { echo "FAIL: /dev/kvm did not appear after modprobe kvm_amd" >&2; exit 1; }
echo "kvm_amd loaded in $((($(date +%s%N) - t0) / 1000000)) ms"
"$selftest" --verbose=0 --jobs 1
"$hello" 2000
