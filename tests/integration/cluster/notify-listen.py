#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Stand in for systemd's notify socket: bind a datagram socket at argv[1],
collect sd_notify messages for argv[2] seconds, print one per line."""
import socket, sys, time

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    s.settimeout(max(0.01, end - time.time()))
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    for line in msg.splitlines():
        print(f"{time.time():.3f} {line}", flush=True)
