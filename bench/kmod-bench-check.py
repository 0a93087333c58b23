#!/usr/bin/env python3
"""Check kmod-bench's JSON lines: the five cases, each with its fields,
positive times, min <= median, and the floor's ratio exactly 1."""
import json
import sys

CASES = ["absent", "unregistered", "untapped", "tapped_self", "tapped_other",
         "wakeup_rtt"]
FIELDS = ("bench", "case", "exits", "rounds", "us_per_exit_p50",
          "us_per_exit_min", "ratio_p50", "ratio_min")

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
if [r.get("case") for r in rows] != CASES:
    sys.exit("FAIL: cases %r, expected %r" % ([r.get("case") for r in rows], CASES))
for r in rows:
    missing = [f for f in FIELDS if f not in r]
    if missing:
        sys.exit("FAIL: %s lacks %r" % (r["case"], missing))
    if not 0 < r["us_per_exit_min"] <= r["us_per_exit_p50"]:
        sys.exit("FAIL: %s: times out of order: %r" % (r["case"], r))
    if not r["ratio_p50"] > 0:
        sys.exit("FAIL: %s: ratio %r" % (r["case"], r["ratio_p50"]))
if rows[0]["ratio_p50"] != 1 or rows[0]["ratio_min"] != 1:
    sys.exit("FAIL: the floor's ratio is %r, not 1" % rows[0]["ratio_p50"])
if len({r["rounds"] for r in rows}) != 1:
    sys.exit("FAIL: the cases have different round counts: %r" % rows)
print("kmod-bench: PASS (%s)" % ", ".join(
    "%s %.2f/%.2f" % (r["case"], r["ratio_p50"], r["ratio_min"])
    for r in rows))
