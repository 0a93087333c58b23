#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The man pages render without groff warnings and document what the
# programs actually offer: every kemarictl command and exit code, every
# kemarid option, every configuration key the parser knows.
set -e
M=$KEMARI_SRC/docs/man
fail() { echo "FAIL: $*"; exit 1; }
for f in "$M"/kemarictl.8 "$M"/kemarid.8 "$M"/kemari.conf.5; do
	w=$(LC_ALL=C.UTF-8 groff -man -ww -z "$f" 2>&1)
	[ -z "$w" ] || fail "$f: $w"
done
page=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$M/kemarictl.8" 2>/dev/null)
cmds=$("$KEMARI_BUILD/cluster/kemarictl" -h | awk '/^  [a-z]/ { print $1 }')
[ "$(wc -w <<< "$cmds")" -ge 8 ] || fail "could not read kemarictl's commands"
for c in $cmds; do
	grep -q "^       $c" <<< "$page" || fail "kemarictl.8 lacks command $c"
done
for rc in 0 1 2 3 4 5 6 7; do
	grep -qE "^       $rc( |$)" <<< "$page" || fail "kemarictl.8 lacks exit code $rc"
done
page=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$M/kemarid.8" 2>/dev/null)
opts=$("$KEMARI_BUILD/cluster/kemarid" -h | awk '/^  -/ { print $1 }')
[ "$(wc -w <<< "$opts")" -ge 5 ] || fail "could not read kemarid's options"
for o in $opts; do
	grep -q -- "^       $o" <<< "$page" || fail "kemarid.8 lacks option $o"
done
page=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$M/kemari.conf.5" 2>/dev/null)
keys=$(sed -n 's/^\t{ "\([a-z_]*\)", CONFIG_TYPE_[A-Z]*, [a-z]* },$/\1/p' \
	"$KEMARI_SRC/config/km_config.c" | sort -u)
[ "$(wc -w <<< "$keys")" -ge 20 ] || fail "could not read the parser's keys"
for k in $keys; do
	grep -q "$k" <<< "$page" || fail "kemari.conf.5 lacks setting $k"
done
echo PASS
