#!/usr/bin/env python3
"""Host integration scenarios for the replicator: two real processes over
TCP loopback (127.0.0.1), driven by repl-drive.

  run.py basic   DRIVE  epochs with and without initial sync and data auth:
                        after every ACK the replica hash equals the
                        primary's memory hash of that epoch
  run.py torn    DRIVE  kill -9 of the primary at random bytes and times,
                        many times: the replica is always exactly the last
                        committed epoch
  run.py corrupt DRIVE  byte flips and truncation injected on the wire by a
                        proxy: rejected, replica at the last acked epoch;
                        a primary that stops sending mid-epoch with the
                        connection open: the secondary gives up after
                        its epoch timeout, replica at the last epoch
  run.py auth    DRIVE  wrong key and a replayed recorded session: refused,
                        replica unchanged

Every loop is bounded in count and in time.
"""
import random
import queue
import socket
import subprocess
import sys
import threading
import time

PAGES = 256
KEY = "kemari-test-key-0123456789"
DEADLINE = time.monotonic() + 150


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


class Secondary:
    def __init__(self, drive, sessions=1, extra=()):
        self.p = subprocess.Popen(
            [drive, "secondary", "--pages", str(PAGES), "--key", KEY,
             "--sessions", str(sessions), *extra],
            stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().split()
        if not line or line[0] != "listening":
            fail("secondary did not start: %r" % line)
        self.port = int(line[1])
        self.lines = queue.Queue()
        threading.Thread(target=self.reader, daemon=True).start()
        self.applied = {}
        self.sessions = []

    def reader(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put("")

    def read_session(self, timeout=20):
        """Read lines up to the next "session" line; returns its fields.
        A primary killed before it connected leaves no session: after a
        second of silence, an empty connection ends the wait."""
        end = time.monotonic() + timeout
        poked = False
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=1.0)
            except queue.Empty:
                if not poked:
                    socket.create_connection(("127.0.0.1", self.port)).close()
                    poked = True
                continue
            if not line:
                fail("secondary exited early")
            f = line.split()
            if f[0] == "applied":
                self.applied[int(f[1])] = f[2]
            elif f[0] == "session":
                s = {"ret": int(f[1]), "epoch": int(f[2]), "hash": f[3],
                     "consistent": f[4] == "1", "text": " ".join(f[5:])}
                self.sessions.append(s)
                return s
        fail("no session result within %ds" % timeout)

    def close(self):
        if self.p.wait(timeout=10):
            fail("secondary exited with %d" % self.p.returncode)


def primary(drive, port, seed, epochs, extra=()):
    return subprocess.Popen(
        [drive, "primary", "--port", str(port), "--pages", str(PAGES),
         "--key", KEY, "--seed", str(seed), "--epochs", str(epochs),
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parse_primary(out):
    commits, acked, synced = {}, 0, False
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "commit":
            commits[int(f[1])] = f[2]
        elif f and f[0] == "acked":
            acked = int(f[1])
        elif f and f[0] == "synced":
            synced = True
    return commits, acked, synced


def check_replica(s, commits, acked, what):
    """The replica is the last committed epoch: the last acked one, or the
    one whose COMMIT was already out when the primary died (its ACK lost
    with it). Before the first lockstep epoch it is only ever at a sync
    round, flagged Inconsistent."""
    if s["epoch"] not in commits:
        if acked or (s["epoch"] and s["consistent"]):
            fail("%s: replica at epoch %d (consistent %s) but primary acked "
                 "lockstep epoch %d: %r" % (what, s["epoch"], s["consistent"],
                                            acked, s))
        return
    inflight = max(commits)
    if s["epoch"] != acked and not (s["epoch"] == inflight > acked):
        fail("%s: replica at epoch %d, primary acked %d, sent up to %d: %r"
             % (what, s["epoch"], acked, inflight, s))
    if not s["consistent"]:
        fail("%s: replica inconsistent at lockstep epoch: %r" % (what, s))
    if commits[s["epoch"]] != s["hash"]:
        fail("%s: replica hash %s != primary's %s at epoch %d: %r"
             % (what, s["hash"], commits[s["epoch"]], s["epoch"], s))


def basic(drive):
    for extra in ((), ("--sync",), ("--sync", "--data-auth")):
        sec = Secondary(drive, extra=[x for x in extra if x == "--data-auth"])
        p = primary(drive, sec.port, 7, 40, extra)
        out, err = p.communicate(timeout=60)
        if p.returncode:
            fail("primary %r failed: %s" % (extra, err))
        commits, acked, synced = parse_primary(out)
        s = sec.read_session()
        sec.close()
        if len(commits) != 40 or acked != max(commits):
            fail("%d epochs sent, last acked %d" % (len(commits), acked))
        for e, h in commits.items():
            if sec.applied.get(e) != h:
                fail("%r epoch %d: replica %s, primary %s"
                     % (extra, e, sec.applied.get(e), h))
        if s["ret"] != -104 or "between epochs" not in s["text"]:
            fail("session end: %r" % s)
        check_replica(s, commits, acked, "basic")
        print("basic %r: %d epochs, every replica hash matched"
              % (extra, len(commits)), flush=True)


def torn(drive, reps=300, epochs=20):
    # Stream length of a full run, to spread kill points over all of it.
    sec = Secondary(drive)
    p = primary(drive, sec.port, 1, epochs, ("--sync", "--die-at-byte",
                                              str(1 << 40)))
    out, _ = p.communicate(timeout=60)
    sec.read_session()
    sec.close()
    approx = int(out.split("sent ")[1].split()[0])
    seed = int(time.time())
    print("torn: stream of %d bytes, random seed %d" % (approx, seed))
    rnd = random.Random(seed)
    mid_epoch = lockstep = 0
    for rep in range(reps):
        if time.monotonic() > DEADLINE:
            fail("torn: out of time after %d reps" % rep)
        sec = Secondary(drive)
        extra = ["--sync"]
        by_byte = rep % 2 == 0
        if by_byte:
            extra += ["--die-at-byte", str(rnd.randrange(0, approx))]
        p = primary(drive, sec.port, rep, epochs, extra)
        if not by_byte:
            time.sleep(rnd.uniform(0, 0.02))
            p.kill()
        out, _ = p.communicate(timeout=30)
        s = sec.read_session()
        sec.close()
        commits, acked, synced = parse_primary(out)
        check_replica(s, commits, acked, "torn rep %d" % rep)
        if "middle of an epoch" in s["text"]:
            mid_epoch += 1
        if s["epoch"] in commits:
            lockstep += 1
    if mid_epoch < reps // 4 or lockstep < reps // 4:
        fail("only %d of %d kills landed mid-epoch, %d in lockstep"
             % (mid_epoch, reps, lockstep))
    print("torn: %d kills (%d mid-epoch, %d after the sync), replica always "
          "the last committed epoch" % (reps, mid_epoch, lockstep), flush=True)


class Proxy(threading.Thread):
    """Forwards one connection; mutates the primary->secondary direction
    at byte `at`: flip one bit, cut both connections there, or stall
    (forward nothing more, keep both open). Records that direction when
    `record` is a list."""

    def __init__(self, to_port, mode=None, at=-1, record=None):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.to_port, self.mode, self.at, self.record = to_port, mode, at, record
        self.unstall = threading.Event()
        self.start()

    def pump(self, a, b, mutate):
        done = 0
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if mutate and self.record is not None:
                    self.record.append(data)
                if mutate and done <= self.at < done + len(data):
                    i = self.at - done
                    if self.mode == "flip":
                        data = data[:i] + bytes([data[i] ^ 0x04]) + data[i + 1:]
                    elif self.mode == "stall":
                        b.sendall(data[:i])
                        self.unstall.wait(60)
                        raise ConnectionError("stalled")
                    else:
                        b.sendall(data[:i])
                        raise ConnectionError("cut")
                done += len(data)
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        c, _ = self.ls.accept()
        up = socket.create_connection(("127.0.0.1", self.to_port))
        t = threading.Thread(target=self.pump, args=(up, c, False),
                             daemon=True)
        t.start()
        self.pump(c, up, True)
        t.join(10)
        c.close()
        up.close()
        self.ls.close()


def stream_len(drive, epochs, extra=()):
    sec = Secondary(drive)
    p = primary(drive, sec.port, 1, epochs,
                (*extra, "--die-at-byte", str(1 << 40)))
    out, _ = p.communicate(timeout=60)
    sec.read_session()
    sec.close()
    return int(out.split("sent ")[1].split()[0])


# Flips at known offsets of the stream and the error each must produce:
# HELLO is bytes 0-63, RESPONSE 64-111, the first BEGIN 112-151.
TARGETED = [(0, -74, "magic"), (4, -93, "version"), (6, -71, "type"),
            (8, -90, "length"), (12, -84, "checksum"), (40, -84, "body"),
            (80, -84, "response"), (118, -42, "BEGIN type")]


def corrupt_targeted(drive):
    for at, want, what in TARGETED:
        sec = Secondary(drive)
        px = Proxy(sec.port, "flip", at)
        p = primary(drive, px.port, 1, 3)
        p.communicate(timeout=30)
        s = sec.read_session()
        sec.close()
        px.join(10)
        if s["ret"] != want or s["epoch"] != 0 or sec.applied:
            fail("flip of the %s at byte %d: want %d, got %r"
                 % (what, at, want, s))
        print("corrupt: %s flipped -> %d: %s" % (what, want, s["text"]))


def stall(drive):
    """The primary's stream stops inside epoch 2's page data, the
    connection stays open (a hung primary, or a host whose kernel still
    answers): the secondary ends the session after its epoch timeout with
    epoch 2 dropped and the replica at epoch 1."""
    one = stream_len(drive, 1)
    sec = Secondary(drive, extra=("--epoch-timeout-ms", "300"))
    px = Proxy(sec.port, "stall", one + 400)
    p = primary(drive, px.port, 1, 3)
    t0 = time.monotonic()
    s = sec.read_session(timeout=20)
    took = time.monotonic() - t0
    px.unstall.set()
    p.kill()
    p.communicate(timeout=10)
    sec.close()
    px.join(10)
    if s["ret"] != -110 or s["epoch"] != 1 or "incomplete" not in s["text"]:
        fail("stall in epoch 2: want -110 at epoch 1, got %r" % s)
    if s["hash"] != sec.applied.get(1):
        fail("stall: replica %s is not epoch 1's %s" % (s["hash"],
                                                          sec.applied.get(1)))
    print("corrupt: stall at byte %d -> %d after %.1fs: %s"
          % (one + 400, s["ret"], took, s["text"]))


def corrupt(drive, reps=60, epochs=12):
    corrupt_targeted(drive)
    stall(drive)
    approx = stream_len(drive, epochs)
    seed = int(time.time())
    print("corrupt: stream of %d bytes, random seed %d" % (approx, seed))
    rnd = random.Random(seed)
    seen = {}
    for rep in range(reps):
        if time.monotonic() > DEADLINE:
            fail("corrupt: out of time after %d reps" % rep)
        mode = "flip" if rep % 3 else "cut"
        sec = Secondary(drive)
        at = rnd.randrange(0, approx)
        px = Proxy(sec.port, mode, at)
        p = primary(drive, px.port, 1, epochs)
        out, _ = p.communicate(timeout=30)
        s = sec.read_session()
        sec.close()
        px.join(10)
        commits, acked, synced = parse_primary(out)
        if mode == "flip":
            if p.returncode == 0:
                fail("rep %d: a flipped byte at %d went unnoticed" % (rep, at))
            if s["epoch"] != acked:
                fail("rep %d: flipped epoch applied: %r acked %d"
                     % (rep, s, acked))
        check_replica(s, commits, acked, "corrupt rep %d" % rep)
        seen[s["ret"]] = s["text"]
        if mode == "flip" and s["ret"] in (-104, -110):
            fail("rep %d: flip at %d not detected as such: %r" % (rep, at, s))
    print("corrupt: %d injections rejected; errors seen:" % reps)
    for code, text in sorted(seen.items()):
        print("  %d: %s" % (code, text))
    if not any(c not in (-104, -110) for c in seen):
        fail("no specific rejection error was seen")


def auth(drive):
    # Wrong key: the primary refuses the secondary, nothing is applied.
    sec = Secondary(drive)
    p = subprocess.run(
        [drive, "primary", "--port", str(sec.port), "--pages", str(PAGES),
         "--key", KEY + "-wrong", "--epochs", "3"],
        capture_output=True, text=True, timeout=30)
    s = sec.read_session()
    sec.close()
    if p.returncode != 1 or "pre-shared key" not in p.stderr:
        fail("wrong key accepted: %s" % p.stderr)
    if s["epoch"] != 0 or sec.applied:
        fail("wrong key changed the replica: %r" % s)
    print("auth: wrong key refused: " + p.stderr.strip())

    # Replay: record a real session, replay its bytes as a new session.
    sec = Secondary(drive, sessions=2)
    rec = []
    px = Proxy(sec.port, record=rec)
    p = primary(drive, px.port, 3, 5)
    out, _ = p.communicate(timeout=30)
    first = sec.read_session()
    px.join(10)
    c = socket.create_connection(("127.0.0.1", sec.port))
    try:
        c.sendall(b"".join(rec))
        c.settimeout(10)
        while c.recv(4096):
            pass
    except OSError:
        pass
    c.close()
    s = sec.read_session()
    sec.close()
    if s["ret"] != -13 or "replayed" not in s["text"]:
        fail("replayed session not refused as such: %r" % s)
    if (s["epoch"], s["hash"]) != (first["epoch"], first["hash"]):
        fail("replayed session changed the replica: %r vs %r" % (s, first))
    print("auth: replayed session refused: " + s["text"])


def main():
    scenario, drive = sys.argv[1], sys.argv[2]
    {"basic": basic, "torn": torn, "corrupt": corrupt, "auth": auth}[
        scenario](drive)
    print("PASS " + scenario)


if __name__ == "__main__":
    main()
