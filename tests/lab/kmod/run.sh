#!/usr/bin/env bash
# Lab self-test 3, run inside the lab (tests/lab/lab-run):
#
#   run.sh KMOD_CHECK OUTDIR
#
# Takes kemari.ko from OUTDIR, built on the host from the current kmod/
# against the lab kernel's own headers package (kmod/kbuild.sh; the
# lab_kmod_build fixture or the kemari-kmod target), and asserts that it
# was built for the running kernel, that it refuses unsupported kernels,
# loads, serves /dev/kemari (KMOD_CHECK), refuses a second load and an
# unload while open, unloads without a trace, survives load/unload cycles,
# and leaves no WARNING/BUG/Oops in dmesg.
set -euo pipefail

check=${1:?usage: run.sh KMOD_CHECK OUTDIR}
out=${2:?usage: run.sh KMOD_CHECK OUTDIR}
: "${KEMARI_LAB:?run.sh runs inside the lab: tests/lab/lab-run -- $0 ...}"
cycles=3
marker="kemari-lab-kmod: begin $$"

unload_quietly() { rmmod kemari 2>/dev/null || true; }
fail_hook=unload_quietly
. "$(dirname "$0")/lib.sh"
since() { echo $(($(ms) - $1)); }
loaded() { [ -d /sys/module/kemari ]; }

assert_gone() {
	! loaded || fail "$1: /sys/module/kemari still exists"
	[ ! -e /sys/class/misc/kemari ] || fail "$1: /sys/class/misc/kemari still exists"
	[ ! -e /dev/kemari ] || fail "$1: /dev/kemari still exists"
}

assert_present() {
	loaded || fail "$1: /sys/module/kemari missing"
	[ -e /sys/class/misc/kemari/dev ] || fail "$1: /sys/class/misc/kemari missing"
	[ -c /dev/kemari ] || fail "$1: /dev/kemari is not a character device"
}

# insmod must fail; $2 is the message insmod prints, $3 the kernel's.
refuse() {
	local what=$1 errmsg=$2 klog=$3 msg
	shift 3
	if msg=$(timeout 60 insmod "$ko" "$@" 2>&1); then
		fail "$what: insmod $* succeeded"
	fi
	echo "$msg" | grep -q "$errmsg" || fail "$what: insmod said '$msg', expected '$errmsg'"
	[ -z "$klog" ] || kmsg_has "$klog" || fail "$what: no '$klog' in dmesg"
	echo "ok: $what refused ($errmsg)"
}

# The module is built on the host (the lab_kmod_build fixture runs
# kmod/kbuild.sh against this same headers tree, $KEMARI_LAB_KDIR): kbuild
# inside the lab took over 6 minutes even with nothing to rebuild.
ko=$out/kemari.ko
"$KEMARI_SRC/kmod/kbuild.sh" --check "$out" ||
	fail "$ko is missing or older than kmod/: build it on the host first: kmod/kbuild.sh $out $KEMARI_LAB_KDIR"
vermagic=$(modinfo -F vermagic "$ko")
case "$vermagic" in
"$KEMARI_LAB_KVER "*) echo "ok: vermagic $vermagic" ;;
*) fail "vermagic '$vermagic' does not name the lab kernel $KEMARI_LAB_KVER" ;;
esac

loaded && fail "kemari is loaded before the test"
# kemari.ko uses kvm.ko's exports and hooks its functions: kvm first.
modprobe kvm_amd || fail "modprobe kvm_amd"
kmsg_mark

refuse "kernel 5.10" "Operation not supported" \
	"kernel 5.10.0-30-amd64 is not supported" assume_release=5.10.0-30-amd64
refuse "kernel 6.2" "Operation not supported" \
	"kernel 6.2.0-1-amd64 is not supported" assume_release=6.2.0-1-amd64
refuse "unparsable release" "Invalid" \
	"cannot parse kernel release" assume_release=garbage
# Every KVM internal the hooks need must resolve (km_sym.c); a missing one
# refuses the load (ENOENT, which insmod words "Unknown symbol in module")
# and the kernel log names it.
refuse "missing symbol" "Unknown symbol in module" \
	"kernel symbol kemari_no_such_symbol not found" \
	require_symbol=kemari_no_such_symbol
assert_gone "after the refusals"

# Any 6.1.x passes the table.
timeout 60 insmod "$ko" assume_release=6.1.999-test || fail "6.1.999 refused"
kmsg_has "kernel 6.1.999-test" || fail "no load message for 6.1.999-test"
rmmod kemari || fail "rmmod after the 6.1.999 load"
echo "ok: 6.1.999-test accepted"

t=$(ms)
timeout 60 insmod "$ko" || fail "insmod $ko"
echo "insmod: $(since "$t") ms"
assert_present "after insmod"
kmsg_has "kemari: /dev/kemari ready (ABI" || fail "no 'ready' message in dmesg"

refuse "second load" "File exists" ""
assert_present "after the second load was refused"

"$check" || fail "kmod-check"

exec 3<>/dev/kemari
[ "$(cat /sys/module/kemari/refcnt)" = 1 ] || fail "an open /dev/kemari does not pin the module"
if rmmod kemari 2>/dev/null; then
	fail "rmmod succeeded while /dev/kemari was open"
fi
exec 3>&-
[ "$(cat /sys/module/kemari/refcnt)" = 0 ] || fail "closing /dev/kemari did not unpin the module"
echo "ok: rmmod refused while /dev/kemari is open"

t=$(ms)
rmmod kemari || fail "rmmod kemari"
echo "rmmod: $(since "$t") ms"
assert_gone "after rmmod"
kmsg_has "kemari: unloaded" || fail "no 'unloaded' message in dmesg"

t=$(ms)
for i in $(seq "$cycles"); do
	timeout 60 insmod "$ko" || fail "cycle $i: insmod"
	assert_present "cycle $i"
	"$check" >/dev/null || fail "cycle $i: kmod-check"
	rmmod kemari || fail "cycle $i: rmmod"
	assert_gone "cycle $i"
done
echo "ok: $cycles load/check/unload cycles in $(since "$t") ms"

# Secure Boot hosts: once signatures are enforced (one way: it cannot be
# switched off again, so this comes last) the unsigned module is refused,
# and so is one signed with a key the kernel does not trust. Signing with
# sign-file from the headers package works (README.md, "Signing"); a load
# would need the key enrolled, which the lab's direct kernel boot cannot do.
t=$(ms)
keys=$(mktemp -d)
openssl req -new -x509 -newkey rsa:2048 -nodes -days 1 -batch \
	-subj "/CN=kemari lab test key/" -outform DER \
	-keyout "$keys/key.pem" -out "$keys/cert.der" 2>/dev/null ||
	fail "openssl could not make a signing key"
cp "$ko" "$keys/kemari.ko"
"$KEMARI_LAB_KDIR/scripts/sign-file" sha256 "$keys/key.pem" "$keys/cert.der" \
	"$keys/kemari.ko" || fail "sign-file failed"
[ "$(modinfo -F signer "$keys/kemari.ko")" = "kemari lab test key" ] ||
	fail "the signed module names no signer"
echo 1 >/sys/module/module/parameters/sig_enforce
refuse "unsigned load under sig_enforce" "Key was rejected" \
	"Loading of unsigned module is rejected"
ko_unsigned=$ko
ko=$keys/kemari.ko
refuse "untrusted signature under sig_enforce" "Key was rejected" \
	"Loading of module with unavailable key is rejected"
ko=$ko_unsigned
rm -rf "$keys"
assert_gone "after the signature refusals"
echo "ok: signing checks in $(since "$t") ms"

kmsg_clean "O/E expected: out-of-tree, unsigned"
echo "lab_kmod: PASS"
