#!/usr/bin/env python3
"""Run replicator-bench briefly; every line must be JSON with the fields
docs/performance.md reports, sane values, and the wire-byte target.

  check-bench.py BENCH                       TCP loopback, all four sizes
  check-bench.py BENCH --lab-rdma            RDMA in the lab (rxe pair up):
                                             1, 64 and 1024 pages, few epochs
"""
import json
import subprocess
import sys

FIELDS = ("transport", "pages", "pause_p50_us", "pause_p99_us",
          "floor_p50_us", "floor_p99_us", "ratio_p50", "ratio_p99",
          "wire_bytes_ratio", "placement", "spin_us")

bench = sys.argv[1]
if sys.argv[2:] == ["--lab-rdma"]:
    # Everything is 10-50x slower under the lab's TCG: a handful of epochs.
    args = ["--transport", "rdma", "--addr", "192.0.2.1", "--from",
            "192.0.2.2", "--mem-pages", "16384", "--max-pages", "1024",
            "--scale", "0.003", "--no-auth-lines"]
    transport, sizes, timeout = "rdma", [1, 64, 1024], 150
else:
    args = ["--scale", "0.02"]
    transport, sizes, timeout = "tcp", [1, 64, 1024, 16384], 100

out = subprocess.run([bench, *args], check=True, stdout=subprocess.PIPE,
                     text=True, timeout=timeout).stdout
rows = [json.loads(line) for line in out.splitlines()]
if sorted({r["pages"] for r in rows}) != sizes:
    sys.exit("missing dirty-set sizes: %r" % rows)
for r in rows:
    missing = [f for f in FIELDS if f not in r]
    if missing:
        sys.exit("fields missing: %r in %r" % (missing, r))
    if r["transport"] != transport:
        sys.exit("transport %r, expected %r" % (r["transport"], transport))
    if not 0 < r["floor_p50_us"] <= r["floor_p99_us"]:
        sys.exit("floor percentiles out of order: %r" % r)
    if not 0 < r["pause_p50_us"] <= r["pause_p99_us"]:
        sys.exit("pause percentiles out of order: %r" % r)
    if r["pages"] >= 64 and r["wire_bytes_ratio"] > 1.1:
        sys.exit("wire bytes above 1.1x the dirty bytes: %r" % r)
    print(json.dumps(r))
print("PASS bench smoke (%s)" % transport)
