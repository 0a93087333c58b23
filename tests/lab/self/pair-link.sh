#!/usr/bin/env bash
# Runs on both lab hosts of a pair: the QEMU socket link carries traffic
# between 192.0.2.1 and 192.0.2.2.
set -eu
for _ in $(seq 60); do
	ping -c1 -W1 "$KEMARI_LAB_PEER" >/dev/null 2>&1 && break
	sleep 0.5
done
out=$(ping -c 5 -i 0.2 -W 2 "$KEMARI_LAB_PEER")
echo "$out" | tail -n 2 | sed "s/^/$KEMARI_LAB_HOST: /"
echo "$out" | grep -q ' 0% packet loss' || {
	echo "$KEMARI_LAB_HOST: packets lost on the pair link" >&2
	exit 1
}
