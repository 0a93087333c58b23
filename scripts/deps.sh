#!/usr/bin/env bash
# Install every Debian 12 package kemari needs to build, test and run its lab.
# Idempotent: packages already present are skipped, apt-get update runs once
# per invocation and only when something is missing. Never installs a kernel
# on the host: the lab downloads and extracts Debian's kernel itself.
set -euo pipefail

PKGS=(
	# build
	build-essential cmake pkg-config git clang clang-format libclang-rt-14-dev
	# tests
	libcriterion-dev python3 jq
	# cluster tests: xmllint (OCF meta-data), groff and man (man pages),
	# pacemaker (the OCF agent under a real cluster manager)
	libxml2-utils groff-base man-db pacemaker pacemaker-cli-utils
	# cluster
	corosync libcorosync-common-dev libcpg-dev libquorum-dev libvotequorum-dev
	libcmap-dev libcfg-dev libqb-dev libsystemd-dev libconfig-dev libjson-c-dev
	# replicator
	libibverbs-dev librdmacm-dev rdma-core ibverbs-providers rdmacm-utils
	ibverbs-utils libxxhash-dev libisal-dev libsodium-dev
	# lab
	qemu-system-x86 busybox-static cpio kmod iproute2 nftables procps
	psmisc file xz-utils zstd iputils-ping
	# kernel module build inside the lab (headers are extracted, not installed)
	bc flex bison libelf-dev
)

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: must run as root (it installs Debian packages with apt-get)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps.sh: all ${#PKGS[@]} packages present"
	exit 0
fi

echo "deps.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# corosync's and pacemaker's packages enable and start default instances;
# kemari's tests run their own in namespaces, so the stock ones must not hold
# the default IPC sockets.
for svc in pacemaker corosync; do
	if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done
