# Sourced by the kmod lab scripts (run.sh, gate.sh, fault.sh): the kernel
# log since the script's own marker, failing with it, and the final
# clean-log and taint check. The caller sets marker= and may set
# fail_hook= (a command run by fail before it exits).
ms() { echo $(($(date +%s%N) / 1000000)); }

# The log since the marker, read whole (grep -q on a pipe would end it early
# and pipefail would count the writer's SIGPIPE as a failure).
kmsg_since() {
	local all
	all=$(dmesg)
	sed -n "/$marker/,\$p" <<<"$all"
}
kmsg_has() { local l; l=$(kmsg_since); grep -q -- "$1" <<<"$l"; }

fail() {
	echo "FAIL: $*" >&2
	echo "--- dmesg since the test began:" >&2
	kmsg_since >&2
	[ -z "${fail_hook:-}" ] || $fail_hook
	exit 1
}

# Write the marker and remember the taint flags from here on.
kmsg_mark() {
	echo "$marker" >/dev/kmsg
	taint0=$(cat /proc/sys/kernel/tainted)
}

# kmsg_clean [NOTE]: no warning or bug in the log since the marker, and no
# TAINT_BAD_PAGE (5), TAINT_DIE (7) or TAINT_WARN (9) since kmsg_mark.
kmsg_clean() {
	local l taint bad
	l=$(kmsg_since)
	if grep -E 'WARNING:|BUG:|Oops|general protection|Call Trace|refcount_t|soft lockup' <<<"$l"; then
		fail "the kernel log shows a warning or a bug since the test began"
	fi
	taint=$(cat /proc/sys/kernel/tainted)
	bad=$(((taint & ~taint0) & ((1 << 5) | (1 << 7) | (1 << 9))))
	[ "$bad" -eq 0 ] || fail "the kernel became tainted ($taint0 -> $taint)"
	echo "ok: dmesg clean, taint $taint0 -> $taint${1:+ ($1)}"
}
