#!/usr/bin/env python3
"""The replicator over RDMA (Soft-RoCE in the lab), two real processes of
repl-drive: the secondary listens on 192.0.2.1 (rxe0), the primary connects
from 192.0.2.2 (rxe1).

  rdma.py DRIVE basic   a locked-memory limit too small is reported as
                        such; per-ACK replica hash equality, with and
                        without initial sync and full-data authentication;
                        a wrong key is refused and leaves the replica as it
                        was
  rdma.py DRIVE staging an epoch larger than the secondary's staging area:
                        refused (ENOSPC), the primary told why, the replica
                        at the last acked epoch
  rdma.py DRIVE stall   the primary stops (SIGSTOP) inside epoch 2 with its
                        connection open: the secondary gives up after its
                        epoch timeout, the replica at epoch 1
  rdma.py DRIVE torn    kill -9 of the primary at random bytes and random
                        times, REPS times against one secondary: the replica
                        is always the last committed epoch

Each scenario is bounded in count and by DEADLINE seconds.
"""
import os
import queue
import subprocess
import sys
import threading
import time

PAGES = 256
KEY = "kemari-test-key-0123456789"
SEC_ADDR, PRI_ADDR = "192.0.2.1", "192.0.2.2"
RDMA = ["--transport", "rdma"]
REPS = int(os.environ.get("KM_LAB_REPS", "32"))
MIN_REPS = 16  # enough in the lab; the host suite does hundreds over TCP
BUDGET = 70  # seconds per scenario
DEADLINE = time.monotonic() + BUDGET


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


class Secondary:
    def __init__(self, drive, sessions, extra=()):
        t0 = time.monotonic()
        self.p = subprocess.Popen(
            [drive, "secondary", *RDMA, "--addr", SEC_ADDR, "--pages",
             str(PAGES), "--key", KEY, "--sessions", str(sessions), *extra],
            stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "listening":
            fail("secondary did not start: %r" % line)
        print("secondary listening on %s port %s after %.1f s"
              % (SEC_ADDR, line[1], time.monotonic() - t0), flush=True)
        self.port = line[1]
        self.lines = queue.Queue()
        threading.Thread(target=self.reader, daemon=True).start()
        self.applied = {}

    def reader(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put("")

    def read_session(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if not line:
                fail("secondary exited early")
            f = line.split()
            if f[0] == "applied":
                self.applied[int(f[1])] = f[2]
            elif f[0] == "session":
                return {"ret": int(f[1]), "epoch": int(f[2]), "hash": f[3],
                        "consistent": f[4] == "1", "text": " ".join(f[5:])}
        fail("no session result within %ds" % timeout)

    def close(self):
        if self.p.wait(timeout=20):
            fail("secondary exited with %d" % self.p.returncode)


def primary_cmd(drive, port, seed, epochs, extra=()):
    return [drive, "primary", *RDMA, "--addr", SEC_ADDR + "@" + PRI_ADDR,
            "--port", port, "--pages", str(PAGES), "--key", KEY,
            "--seed", str(seed), "--epochs", str(epochs), *extra]


def parse_primary(lines):
    commits, acked, other = {}, 0, {}
    for line in lines:
        f = line.split()
        if f and f[0] == "commit":
            commits[int(f[1])] = f[2]
        elif f and f[0] == "acked":
            acked = int(f[1])
        elif f and f[0] in ("sent", "elapsed"):
            other[f[0]] = int(f[1])
    return commits, acked, other


def run_primary(drive, port, seed, epochs, extra=(), want_rc=0):
    p = subprocess.run(primary_cmd(drive, port, seed, epochs, extra),
                       capture_output=True, text=True, timeout=90)
    if p.returncode != want_rc:
        fail("primary %r exited %d (want %d): %s"
             % (extra, p.returncode, want_rc, p.stderr))
    return p


def memlock(drive, port):
    """Without CAP_IPC_LOCK and with 64 KiB of RLIMIT_MEMLOCK the primary
    cannot register its buffers: it must say so, naming the limit and the
    fix, before it ever reaches the secondary."""
    p = subprocess.run(
        ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock",
         "bash", "-c", 'ulimit -l 64 && exec "$@"', "memlock",
         *primary_cmd(drive, port, 5, 3)],
        capture_output=True, text=True, timeout=60)
    if p.returncode != 1 or "RLIMIT_MEMLOCK is 65536 bytes" not in p.stderr \
            or "LimitMEMLOCK" not in p.stderr:
        fail("memlock: exit %d, no clear message: %r" % (p.returncode,
                                                        p.stderr))
    print("memlock: " + p.stderr.strip(), flush=True)


def stall(drive):
    """A primary that hangs mid-epoch: RDMA has no keepalive of its own
    and the peer's kernel keeps the connection up, so only the
    secondary's epoch timeout ends the wait. Epoch 2 is dropped, the
    replica stays at epoch 1."""
    sec = Secondary(drive, 1)
    p = run_primary(drive, sec.port, 31, 1, ("--die-at-byte", str(1 << 40)))
    one = parse_primary(p.stdout.splitlines())[2]["sent"]
    sec.read_session()
    sec.close()
    sec = Secondary(drive, 1, ("--epoch-timeout-ms", "2000"))
    p = subprocess.Popen(
        primary_cmd(drive, sec.port, 31, 3,
                    ("--stall-at-byte", str(one + 400))),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    s = sec.read_session()
    took = time.monotonic() - t0
    p.kill()
    p.communicate(timeout=20)
    sec.close()
    if s["ret"] != -110 or s["epoch"] != 1 or "incomplete" not in s["text"]:
        fail("stall: want -110 at epoch 1, got %r" % s)
    if not s["consistent"] or s["hash"] != sec.applied.get(1):
        fail("stall: replica %r is not epoch 1's %s" % (s, sec.applied))
    print("stall: at byte %d, session ended after %.1f s: %s"
          % (one + 400, took, s["text"]), flush=True)


def basic(drive):
    # Session 1 on a fresh replica without sync (both start zeroed), then
    # one with an initial sync, then a wrong key.
    sec = Secondary(drive, 3)
    memlock(drive, sec.port)
    for extra in ((), ("--sync",)):
        t0 = time.monotonic()
        p = run_primary(drive, sec.port, 7, 40, extra)
        commits, acked, _ = parse_primary(p.stdout.splitlines())
        s = sec.read_session()
        if len(commits) != 40 or acked != max(commits):
            fail("%r: %d epochs sent, last acked %d" % (extra, len(commits),
                                                       acked))
        for e, h in commits.items():
            if sec.applied.get(e) != h:
                fail("%r epoch %d: replica %s, primary %s"
                     % (extra, e, sec.applied.get(e), h))
        if s["ret"] != -104 or "between epochs" not in s["text"]:
            fail("session end: %r" % s)
        if s["epoch"] != acked or s["hash"] != commits[acked]:
            fail("replica after the session: %r" % s)
        print("basic %r: %d epochs over RDMA in %.1f s, every replica hash "
              "matched the primary's at its ACK"
              % (extra, len(commits), time.monotonic() - t0), flush=True)
    before = s
    nappl = len(sec.applied)
    p = run_primary(drive, sec.port, 9, 3, ("--key", KEY + "-wrong"),
                    want_rc=1)
    s = sec.read_session()
    sec.close()
    if "pre-shared key" not in p.stderr:
        fail("wrong key: primary said %r" % p.stderr)
    if (s["epoch"], s["hash"]) != (before["epoch"], before["hash"]) or \
            len(sec.applied) != nappl or s["ret"] not in (-13, -104):
        fail("wrong key changed the replica or was not refused: %r" % s)
    print("auth: wrong key refused: %s | secondary: %s"
          % (p.stderr.strip(), s["text"]), flush=True)

    # The secondary's ERROR (settings differ) reaches the primary over
    # RDMA as over TCP: it is not lost to the disconnect that follows.
    sec = Secondary(drive, 2, ("--data-auth",))
    p = run_primary(drive, sec.port, 10, 3, (), want_rc=1)
    s = sec.read_session()
    if "peer reported" not in p.stderr or \
            "full-data authentication" not in p.stderr:
        fail("mismatched settings: primary said %r" % p.stderr)
    print("settings: " + p.stderr.strip(), flush=True)
    p = run_primary(drive, sec.port, 11, 20, ("--sync", "--data-auth"))
    commits, acked, _ = parse_primary(p.stdout.splitlines())
    s = sec.read_session()
    sec.close()
    bad = [e for e, h in commits.items() if sec.applied.get(e) != h]
    if bad or acked != 20 + min(commits) - 1 or s["ret"] != -104:
        fail("data-auth: epochs %r differ, acked %d, %r" % (bad, acked, s))
    print("basic ('--sync', '--data-auth'): %d epochs, hashes matched"
          % len(commits), flush=True)
    staging(drive)


def staging(drive):
    """A staging area of 48 pages: epochs that fit are placed and commit;
    the first larger one (its pages no longer fit the grant and go inline)
    is refused with ENOSPC, the primary is told why, and the replica stays
    at the last acked epoch."""
    sec = Secondary(drive, 1, ("--staging-pages", "48"))
    p = run_primary(drive, sec.port, 21, 40, (), want_rc=1)
    commits, acked, _ = parse_primary(p.stdout.splitlines())
    s = sec.read_session()
    sec.close()
    if s["ret"] != -28 or "staging area holds 48 pages" not in s["text"]:
        fail("staging: session %r" % s)
    if "staging area holds 48 pages" not in p.stderr:
        fail("staging: the primary was not told why: %r" % p.stderr)
    if acked < 1 or s["epoch"] != acked or s["hash"] != commits[acked]:
        fail("staging: replica %r, acked %d" % (s, acked))
    bad = [e for e in range(1, acked + 1) if sec.applied.get(e) != commits[e]]
    if bad:
        fail("staging: epochs %r differ" % bad)
    print("staging: %d epochs fitted and matched; epoch %d refused: %s"
          % (acked, acked + 1, s["text"]), flush=True)


def check_rep(k, s, commits, acked, prev):
    """The replica is the last committed epoch: this rep's last acked
    lockstep epoch, or the one whose COMMIT was out when the primary died;
    with no lockstep epoch committed, either untouched (as the previous
    rep left it) or inside an initial sync (Inconsistent)."""
    if s["epoch"] in commits:
        inflight = max(commits)
        if s["epoch"] != acked and not (s["epoch"] == inflight > acked):
            fail("rep %d: replica at %d, acked %d, sent up to %d: %r"
                 % (k, s["epoch"], acked, inflight, s))
        if not s["consistent"] or s["hash"] != commits[s["epoch"]]:
            fail("rep %d: replica hash %s, primary %s at epoch %d: %r"
                 % (k, s["hash"], commits[s["epoch"]], s["epoch"], s))
        return "lockstep"
    if acked:
        fail("rep %d: acked %d but replica at %r" % (k, acked, s))
    if s["consistent"] and (s["epoch"], s["hash"]) != prev:
        fail("rep %d: replica changed without a commit: %r, before %r"
             % (k, s, prev))
    return "untouched" if s["consistent"] else "sync"


def torn(drive):
    sec = Secondary(drive, REPS + 1)
    # One whole run first: the stream length and duration to aim at.
    p = run_primary(drive, sec.port, 1000, 20,
                    ("--sync", "--die-at-byte", str(1 << 40)))
    s = sec.read_session()
    commits, acked, other = parse_primary(p.stdout.splitlines())
    check_rep(-1, s, commits, acked, None)
    prev = (s["epoch"], s["hash"])
    print("torn: a whole run sends %d bytes in %d ms"
          % (other["sent"], other["elapsed"]), flush=True)
    p = subprocess.Popen(
        primary_cmd(drive, sec.port, 1, 20,
                    ("--sync", "--reps", str(REPS), "--die-range",
                     str(other["sent"]), "--kill-window-ms",
                     str(max(other["elapsed"], 50)))),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    kinds = {"lockstep": 0, "untouched": 0, "sync": 0}
    mid = k = 0
    cur = []
    for line in p.stdout:
        if time.monotonic() > DEADLINE:
            # A loaded machine: stop here if enough kills were checked.
            p.kill()
            p.wait()
            if k < MIN_REPS:
                fail("torn: out of time after %d reps" % k)
            break
        f = line.split()
        if f and f[0] == "end":
            k = int(f[1])
            s = sec.read_session()
            commits, acked, _ = parse_primary(cur)
            kinds[check_rep(k, s, commits, acked, prev)] += 1
            if "middle of an epoch" in s["text"]:
                mid += 1
            prev = (s["epoch"], s["hash"])
            cur = []
            k += 1
        else:
            cur.append(line)
    if p.wait() and k != REPS and k < MIN_REPS:
        fail("torn: the rep driver exited %d after %d reps" % (p.returncode,
                                                             k))
    sec.p.kill()
    print("torn: %d kill -9s (%d mid-epoch; replica at a lockstep epoch %d, "
          "inside a sync %d, untouched %d): always the last committed epoch"
          % (k, mid, kinds["lockstep"], kinds["sync"], kinds["untouched"]),
          flush=True)
    if mid < k // 6 or kinds["lockstep"] < k // 6:
        fail("too few kills landed mid-epoch (%d) or in lockstep (%d)"
             % (mid, kinds["lockstep"]))


def main():
    drive = sys.argv[1]
    global DEADLINE
    for scenario in sys.argv[2:]:
        t0 = time.monotonic()
        DEADLINE = t0 + BUDGET
        {"basic": basic, "torn": torn, "staging": staging,
         "stall": stall}[scenario](drive)
        print("PASS %s (%.1f s)" % (scenario, time.monotonic() - t0),
              flush=True)


if __name__ == "__main__":
    main()
