#!/usr/bin/env bash
# The main job. For now (foundation): build kemari, boot the lab (Debian's
# own kernel under QEMU TCG), run a KVM guest in it and show its output
# and exit rate, bring up a Soft-RoCE link and pass RDMA traffic, and load
# kemari.ko. Later work turns this into the protected-VM failover demo.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
# Kernel download and the module build happen here, on the host (fast);
# the lab only runs things.
KEMARI_BUILD=$src/build tests/lab/lab-run --prepare
KEMARI_BUILD=$src/build kmod/kbuild.sh build/kmod/kbuild >/dev/null
exec tests/lab/lab-run --timeout 600 -- bash scripts/demo-lab.sh
