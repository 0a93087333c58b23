# Sourced by the vmm lab scripts: load kvm_amd and hold one VM for the
# whole lab run (kvm_hold.c says why). Needs KM_KVM_HOLD, the kvm-hold
# binary.
lab_kvm_ready() {
	local hold=${KM_KVM_HOLD:?KM_KVM_HOLD must name the kvm-hold binary}
	local fifo line
	modprobe kvm_amd
	[ -c /dev/kvm ] || { echo "FAIL: /dev/kvm did not appear after modprobe kvm_amd" >&2; return 1; }
	fifo=$(mktemp -u)
	mkfifo "$fifo"
	# Left running on purpose: the lab ends with poweroff -f.
	"$hold" >"$fifo" &
	read -r line <"$fifo" || true
	rm -f "$fifo"
	[ "$line" = ready ] || { echo "FAIL: kvm-hold did not create its VM" >&2; return 1; }
}
