#!/usr/bin/env bash
# Inside the lab: replicator-bench over RDMA (rxe pair), a short smoke run
# checked by bench/check-bench.py; the JSON lines are the lab's figures.
#
#   bench.sh PATH/TO/replicator-bench
set -euo pipefail
here=$(dirname "$0")
. "$here/../rdma/rxe-pair.sh"
bench=$1
[ -x "$bench" ] || fail "replicator-bench not found at '$bench'"
trap rxe_pair_down EXIT
rxe_pair_up
t0=$(now)
python3 "$here/../../../bench/check-bench.py" "$bench" --lab-rdma
echo "bench done in $(ms "$t0") ms"
