# Sourced by every lab script that runs KVM guests: lab_kvm_ready loads
# kvm_amd and holds one VM for the whole lab run (kvm_hold.c says why).
# KM_KVM_HOLD may name another kvm-hold binary.
lab_kvm_ready() {
	local hold=${KM_KVM_HOLD:-$KEMARI_BUILD/tests/lab/kvm/kvm-hold}
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
