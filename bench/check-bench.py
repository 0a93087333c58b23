#!/usr/bin/env python3
"""Run replicator-bench briefly; every line must be JSON with the fields
docs/performance.md reports, sane values, and the wire-byte target."""
import json
import subprocess
import sys

FIELDS = ("transport", "pages", "pause_p50_us", "pause_p99_us",
          "floor_p50_us", "floor_p99_us", "ratio_p50", "ratio_p99",
          "wire_bytes_ratio")

out = subprocess.run([sys.argv[1], "--scale", "0.02"], check=True,
                     capture_output=True, text=True, timeout=100).stdout
rows = [json.loads(line) for line in out.splitlines()]
if sorted({r["pages"] for r in rows}) != [1, 64, 1024, 16384]:
    sys.exit("missing dirty-set sizes: %r" % rows)
for r in rows:
    missing = [f for f in FIELDS if f not in r]
    if missing:
        sys.exit("fields missing: %r in %r" % (missing, r))
    if not 0 < r["floor_p50_us"] <= r["floor_p99_us"]:
        sys.exit("floor percentiles out of order: %r" % r)
    if r["pages"] >= 64 and r["wire_bytes_ratio"] > 1.1:
        sys.exit("wire bytes above 1.1x the dirty bytes: %r" % r)
    print(json.dumps(r))
print("PASS bench smoke")
