#!/usr/bin/env bash
# Inside the lab: load kvm_amd and run one of the vmm Criterion suites.
#   run-tap.sh SUITE
set -euo pipefail
modprobe kvm_amd
[ -c /dev/kvm ] || { echo "FAIL: /dev/kvm did not appear after modprobe kvm_amd" >&2; exit 1; }
"$1" --verbose=1 --jobs 1
