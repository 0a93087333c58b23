#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Replay backend.log and fence.log of a test pair in time order and fail if
the VM ever ran on both nodes at once: a node runs it from `promote` until
it is fenced (powered off) or runs `stop`/`demote`."""
import sys

w = sys.argv[1]
ev = []
for line in open(f"{w}/backend.log"):
    t, node, action, vm = line.split()[:4]
    ev.append((float(t), node, action))
try:
    for line in open(f"{w}/fence.log"):
        f = line.split()
        if f[2] == "fenced":
            ev.append((float(f[0]), f[3], "fenced"))
except FileNotFoundError:
    pass
running, promotions = set(), 0
for t, node, action in sorted(ev):
    if action == "promote":
        promotions += 1
        if running - {node}:
            sys.exit(f"TWO PRIMARIES: {node} promoted at {t:.3f} while "
                     f"{sorted(running)} ran the VM")
        running.add(node)
    elif action in ("fenced", "stop", "demote"):
        running.discard(node)
print(f"one-primary check: {len(ev)} events, {promotions} promotions, "
      "never two running copies")
