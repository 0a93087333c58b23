#!/usr/bin/env bash
# Inside the lab: the Linux save/restore smoke test (test_linux_state.c)
# with the lab's own kernel and the test initramfs.
#   linux-state.sh TEST_BINARY
set -euo pipefail
kver=${KEMARI_LAB_KVER:?run this inside the lab (tests/lab/lab-run)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export KM_TEST_KERNEL=$KEMARI_BUILD/lab/kernel/$kver/root/boot/vmlinuz-$kver
export KM_TEST_INITRD=$tmp/initrd.cpio
"$(dirname "$0")/mkinitrd.sh" "$KM_TEST_INITRD"
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"
lab_kvm_ready
"$1" --verbose=1 --jobs 1
