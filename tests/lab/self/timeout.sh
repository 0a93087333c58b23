#!/usr/bin/env bash
# lab-run's timeout: the command hangs, lab-run must return 124 within the
# limit plus boot time, name the lab host, show the last output line, and
# leave no QEMU behind.
set -u
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
"$here/../lab-run" --timeout 20 -- bash -c 'echo kemari-marker-before-hang; sleep 600' >"$log" 2>&1
rc=$?
took=$((SECONDS - start))
cat "$log"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 124 ] || fail "lab-run returned $rc, not 124"
[ $took -lt 60 ] || fail "lab-run took ${took}s for a 20s timeout"
grep -q 'timeout after 20s on lab host a' "$log" || fail "no timeout report"
grep -q '> kemari-marker-before-hang' "$log" || fail "last output line not reported"
pid=$(sed -n 's/.*QEMU pid \([0-9]*\) killed.*/\1/p' "$log")
[ -n "$pid" ] || fail "no QEMU pid reported"
! kill -0 "$pid" 2>/dev/null || fail "QEMU $pid still running"
echo "PASS: timeout reported after ${took}s, QEMU $pid gone"
