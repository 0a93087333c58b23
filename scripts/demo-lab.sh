#!/usr/bin/env bash
# The demo's lab half; runs inside the lab (see scripts/demo.sh).
set -euo pipefail
b=$KEMARI_BUILD
step() { printf '\n== %s ==\n' "$*"; }

step "lab kernel $(uname -r), $(nproc) vCPUs"
step "KVM: a guest under kvm_amd (nested SVM)"
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"
lab_kvm_ready
"$b/tests/lab/kvm/kvm-hello" 5000

step "Soft-RoCE: RDMA WRITE and SEND over rxe on a veth pair"
"$KEMARI_SRC/tests/lab/rdma/run.sh" "$b/tests/lab/rdma/rdma-xfer"
step "kemari.ko: load, /dev/kemari, unload"
"$KEMARI_SRC/tests/lab/kmod/run.sh" "$b/tests/lab/kmod/kmod-check" "$b/kmod/kbuild"
step "done"
