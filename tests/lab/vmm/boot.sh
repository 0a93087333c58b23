#!/usr/bin/env bash
# Inside the lab: boot the lab's own Debian kernel in kemari-vmm (2 vCPUs)
# with a busybox initramfs built here, to userspace; assert the marker line
# on the serial console, that both vCPUs came up and that the guest's
# reboot ended the VM cleanly; print the time to the marker. Then once
# more (1 vCPU, quiet) ending with poweroff instead of reboot.
#   boot.sh KEMARI_VMM
set -euo pipefail
vmm=$1
kver=${KEMARI_LAB_KVER:?run this inside the lab (tests/lab/lab-run)}
kernel=$KEMARI_BUILD/lab/kernel/$kver/root/boot/vmlinuz-$kver
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -r "$kernel" ] || fail "the lab kernel $kernel is missing"

"$(dirname "$0")/mkinitrd.sh" "$tmp/initrd.cpio"

. "$KEMARI_SRC/tests/lab/kvm/lab-kvm.sh"
lab_kvm_ready

base="console=ttyS0 reboot=k panic=1 pci=off 8250.nr_uarts=1"
base+=" i8042.noaux i8042.nomux i8042.nopnp rdinit=/init"

# boot NAME CPUS EXTRA_CMDLINE [OPTION...]: run the VM, fill
# $tmp/NAME.{marker,err,rc}. CPUS "restore": the options name a state file.
boot() {
	local name=$1 cpus=$2 extra=$3 t0
	local -a how=(--kernel "$kernel" --initrd "$tmp/initrd.cpio"
		--cmdline "$base $extra" --memory 256M --cpus "$cpus")
	shift 3
	[ "$cpus" != restore ] || how=()
	t0=$(date +%s%N)
	set +e
	"$vmm" "${how[@]}" "$@" --timeout 200 --serial stdout 2>"$tmp/$name.err" |
		while IFS= read -r line; do
		# Strip CR here: a filter like tr would buffer the pipe and
		# the marker's time would be taken at the VM's exit instead.
		line=${line%$'\r'}
		printf '%s: %s\n' "$name" "$line"
		printf '%s\n' "$line" >>"$tmp/$name.console"
		case $line in
		*KEMARI-BOOT-OK*)
			echo "$name: boot to marker: $((($(date +%s%N) - t0) / 1000000)) ms from kemari-vmm start"
			echo "$line" >"$tmp/$name.marker" ;;
		esac
	done
	echo "${PIPESTATUS[0]}" >"$tmp/$name.rc"
	set -e
	sed "s/^/$name: /" "$tmp/$name.err"
}

boot reboot 2 ""
[ -f "$tmp/reboot.marker" ] || fail "the marker never appeared on the serial console"
grep -q 'cpus=2 ' "$tmp/reboot.marker" ||
	fail "the guest did not bring up 2 vCPUs: $(cat "$tmp/reboot.marker")"
[ "$(cat "$tmp/reboot.rc")" -eq 0 ] ||
	fail "kemari-vmm exited with $(cat "$tmp/reboot.rc"), not 0 (clean guest reset)"
grep -q 'reset the machine through the i8042' "$tmp/reboot.err" ||
	fail "the VM did not end through the i8042 reset"
# The CPU model we give must satisfy the guest kernel's own consistency
# checks (XSAVE sizes, ...): a WARNING here means a wrong CPUID or XCR0.
! grep -E 'WARNING:|XSAVE consistency|BUG:' "$tmp/reboot.console" ||
	fail "the guest kernel complained about the virtual CPU (lines above)"
grep -q 'x86/fpu: Enabled xstate features' "$tmp/reboot.console" ||
	fail "the guest kernel did not enable XSAVE"
echo "PASS: Linux booted to userspace on 2 vCPUs and its reboot ended the VM"

boot poweroff 1 "quiet kemari.end=poweroff"
[ -f "$tmp/poweroff.marker" ] || fail "poweroff run: no marker"
[ "$(cat "$tmp/poweroff.rc")" -eq 0 ] ||
	fail "poweroff run: kemari-vmm exited with $(cat "$tmp/poweroff.rc")"
grep -q 'halted every vCPU with interrupts disabled' "$tmp/poweroff.err" ||
	fail "poweroff run: the VM did not end as a guest poweroff"
echo "PASS: the guest's poweroff ended the VM cleanly"

# The command line's whole-VM file: save at the 12,000th console byte
# (about halfway through boot), then run on from the file in a new process.
boot save 2 "" --save "$tmp/vm.state" --save-at 12000
[ "$(cat "$tmp/save.rc")" -eq 0 ] || fail "save run: kemari-vmm exited with $(cat "$tmp/save.rc")"
[ ! -f "$tmp/save.marker" ] || fail "save run: the guest got to userspace before the save"
grep -q 'saved the VM to .* at tapped exit 12000' "$tmp/save.err" ||
	fail "save run: no state file written"
echo "state file: $(stat -c %s "$tmp/vm.state") bytes"
boot restored restore "" --restore "$tmp/vm.state"
[ -f "$tmp/restored.marker" ] || fail "restored run: no marker"
grep -q 'cpus=2 ' "$tmp/restored.marker" || fail "restored run: not 2 vCPUs"
[ "$(cat "$tmp/restored.rc")" -eq 0 ] ||
	fail "restored run: kemari-vmm exited with $(cat "$tmp/restored.rc")"
echo "PASS: --save at a tapped exit and --restore in a new process boot on to userspace"
