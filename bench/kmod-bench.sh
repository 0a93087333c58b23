#!/usr/bin/env bash
# Inside the lab: kmod-bench with the module built on the host, its JSON
# lines checked by kmod-bench-check.py (all six cases, sane figures).
#
#   kmod-bench.sh KMOD_BENCH KMOD_GATE OUTDIR [EXITS ROUNDS]
#
# The figures in docs/performance.md ("Kernel gate") come from EXITS=1000
# ROUNDS=7 (the smoke test uses the defaults, 200 and 3).
set -euo pipefail

bench=${1:?usage: kmod-bench.sh KMOD_BENCH KMOD_GATE OUTDIR [EXITS ROUNDS]}
gate=${2:?usage}
out=${3:?usage}
exits=${4:-200}
rounds=${5:-3}
: "${KEMARI_LAB:?kmod-bench.sh runs inside the lab: tests/lab/lab-run -- $0 ...}"
here=$(cd "$(dirname "$0")" && pwd)
. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"

"$KEMARI_SRC/kmod/kbuild.sh" --check "$out" ||
	{ echo "FAIL: build kemari.ko on the host first: kmod/kbuild.sh $out" >&2; exit 1; }
lab_kvm_ready
result=$(mktemp)
timeout 200 "$bench" --module "$out/kemari.ko" --exits "$exits" --rounds "$rounds" | tee "$result"
python3 "$here/kmod-bench-check.py" "$result"
rm -f "$result"
