# Sourced by the kmod lab scripts. kvm_ready KMOD_GATE: load kvm_amd and
# keep one VM alive for the rest of the lab run (kmod-gate.c, mode_hold,
# says why). Left running on purpose: the lab ends with poweroff -f.
kvm_ready() {
	local gate=$1 fifo line
	modprobe kvm_amd
	[ -c /dev/kvm ] || { echo "FAIL: /dev/kvm did not appear after modprobe kvm_amd" >&2; return 1; }
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	"$gate" hold >"$fifo" &
	read -r line <"$fifo" || true
	rm -f "$fifo"
	[ "$line" = ready ] || { echo "FAIL: kmod-gate hold did not create its VM" >&2; return 1; }
}
