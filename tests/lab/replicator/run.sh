#!/usr/bin/env bash
# Inside the lab: the replicator over RDMA (Soft-RoCE), two real processes
# of repl-drive, scenarios of rdma.py.
#
#   run.sh PATH/TO/repl-drive SCENARIO...
set -euo pipefail
here=$(dirname "$0")
. "$here/../rdma/rxe-pair.sh"
drive=$1
shift
[ -x "$drive" ] || fail "repl-drive not found at '$drive' (build it first)"
trap rxe_pair_down EXIT
rxe_pair_up
python3 "$here/rdma.py" "$drive" "$@"
