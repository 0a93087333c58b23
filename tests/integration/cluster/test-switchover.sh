#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Planned switchover (final epoch, demote, promote) both ways, and a drill
# (a controlled failover that reports its time).
. "$(dirname "$0")/pair.sh"

pair_up
protect_on alpha
for p in alpha beta; do
	s=${PEER[$p]}
	gen=$(field "$p" web1 generation)
	t0=$(now)
	ctl "$p" switchover web1 > /dev/null || fail "switchover from $p"
	wait_for 20 lockstep "$s" || fail "no Lockstep with $s Primary"
	[ "$(field "$s" web1 generation)" = $((gen + 1)) ] || fail "generation"
	log "switchover $p -> $s: Lockstep again after $(ms "$t0" "$(now)") ms"
done
# demote ran before promote, on the right nodes, and nothing was fenced
awk '$3 == "demote" || $3 == "promote" { printf "%s:%s ", $2, $3 } END { print "" }' \
	"$W/backend.log" | grep -q "alpha:promote alpha:demote beta:promote beta:demote alpha:promote" ||
	fail "backend order: $(cat "$W/backend.log")"
[ -e "$W/fence.log" ] && fail "a switchover fenced"
ls "$W"/*/blackbox/*.fdata > /dev/null 2>&1 && fail "a switchover dumped the blackbox"

# drill on the Primary (alpha): its copy stops, beta takes over without
# fencing (the fault was reported), and kemarictl reports the time.
out=$(ctl alpha drill web1 --timeout 30) || fail "drill: $out"
log "$out"
echo "$out" | grep -qE "^drill: web1 failed over to beta in [0-9.]+ ms" || fail "drill output"
is beta web1 role Primary || fail "drill: beta not Primary"
is alpha web1 replica Outdated || fail "drill: alpha not Outdated"
[ -e "$W/fence.log" ] && fail "the drill fenced"
ls "$W"/beta/blackbox/*.fdata > /dev/null 2>&1 || fail "no blackbox after the drill"
ctl alpha drill web1 > /dev/null 2>&1 && fail "drill accepted on a Secondary"
ctl beta reprotect web1 > /dev/null || fail "reprotect after drill"
wait_for 20 lockstep beta || fail "no Lockstep after the drill"
log "PASS"
