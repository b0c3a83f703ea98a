#!/usr/bin/python3
"""soak.py - the crash soak: chronikd under mixed load, killed with SIGKILL
at random moments, restarted, checked.

    soak.py CHRONIKD CHRONIK WORKDIR [--cycles N] [--seed S] [--fsync POLICY] [--tap]

Each cycle starts chronikd (fsync every by default; a SIGKILL loses
nothing the kernel already has, so the checks below hold for interval:MS
and never too) on WORKDIR/data
mounted at WORKDIR/mnt with its Kafka listener on a free 127.0.0.1 port,
and runs at once, against topic "s" (two partitions):

  - two `data` writers (one per partition, O_APPEND, 1-5 lines per write),
  - two `records.jsonl` writers (one per partition, 1-3 JSON lines per
    write, with keys and headers),
  - two Kafka producers with acks=all: one idempotent, one not (retries
    off, so a record is sent at most once),
  - a consumer in group "soak" committing its position synchronously,
  - a topic churner: mkdir and rmdir of topics "churn-N" through the mount.

Every value is unique ("<source>-<cycle>-<seq>"). A writer logs the lines
of every write() that returned; a producer logs every record whose
delivery was acknowledged; the consumer logs every commit that succeeded;
the churner logs every mkdir and rmdir that returned. After a random
0.2-1.5 s, chronikd gets SIGKILL (a chronikd that exited by itself
before that, on a sanitizer's report say, is a problem). Then, with the
daemon down, on the data directory itself:

  - `chronik verify` must be clean;
  - every record of s/0 and s/1 (chronik consume --jsonl) must have dense
    offsets from 0, a value that is one this soak tried to write (so no
    torn line, no garbage), and no value twice;
  - every write that returned and every acknowledged record must be there
    exactly once;
  - a partition never ends earlier than it did after the last cycle;
  - every committed group offset must be at least the highest commit that
    succeeded (committed offsets never go backwards);
  - a churn topic whose mkdir returned and whose rmdir did not start is
    there; one whose rmdir returned is not.

Prints a summary line: cycles, acknowledged records checked, losses,
duplicates, other problems. With --tap, one TAP test point per cycle.
Exit status 0 when nothing was lost or wrong.
"""
import argparse
import errno
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

VALUE_RE = re.compile(r"^(d|j|ki|kn)[0-9]-[0-9]+-[0-9]+$")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def is_mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def log_tail(workdir, n=10):
    """The last n lines of chronikd's log, on one line."""
    try:
        with open(os.path.join(workdir, "chronikd.log"), "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError as e:
        return "(no log: %s)" % e
    return " | ".join(lines[-n:])


def unmount(path):
    for cmd in (["fusermount3", "-u", path], ["fusermount3", "-uz", path]):
        if not is_mounted(path):
            return
        subprocess.run(cmd, stderr=subprocess.DEVNULL)


class Log:
    """What the load did, shared by the worker threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tried = set()  # every value ever handed to a write or produce
        self.returned = {}  # value -> partition: write() returned / acked
        self.acked_kafka = 0
        self.commits = {}  # partition -> highest committed offset that succeeded
        self.ncommits = 0
        self.topics_made = set()  # mkdir returned, rmdir not started
        self.topics_gone = set()  # rmdir returned
        self.topics_unsure = set()  # rmdir started, did not return

    def try_(self, values):
        with self.lock:
            self.tried.update(values)

    def ok(self, values, part):
        with self.lock:
            for v in values:
                self.returned[v] = part


class Cycle:
    def __init__(self, args, n, log, rng):
        self.args, self.n, self.log, self.rng = args, n, log, rng
        self.stop = threading.Event()
        self.threads = []
        self.mnt = os.path.join(args.workdir, "mnt")
        self.data = os.path.join(args.workdir, "data")
        self.port = free_port()
        self.errors = []

    # ---- the daemon ------------------------------------------------------
    def start(self):
        # The free port may be taken by someone else before chronikd binds
        # it: try a few.
        for attempt in range(3):
            try:
                return self.start_once()
            except RuntimeError as e:
                print("# cycle %d, start %d: %s" % (self.n, attempt + 1, e),
                      file=sys.stderr, flush=True)
                if attempt == 2:
                    raise
                unmount(self.mnt)
                self.port = free_port()

    def start_once(self):
        self.errlog = open(os.path.join(self.args.workdir, "chronikd.log"), "ab")
        self.proc = subprocess.Popen(
            [self.args.chronikd, "-f", "--fsync", self.args.fsync,
             "--kafka", "127.0.0.1:%d" % self.port,
             "--default.partitions=2", self.data, self.mnt],
            stdout=subprocess.DEVNULL, stderr=self.errlog)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.errlog.close()
                raise RuntimeError("chronikd exited with %d: %s" %
                                   (self.proc.returncode, log_tail(self.args.workdir)))
            if is_mounted(self.mnt):
                try:
                    socket.create_connection(("127.0.0.1", self.port), 1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        self.errlog.close()
        raise RuntimeError("chronikd did not come up")

    def kill(self):
        if self.proc.poll() is not None:
            # It died before the kill: a sanitizer's report or an error
            # of its own (its log says which).
            self.errors.append("chronikd exited by itself with %d: %s" %
                               (self.proc.returncode, log_tail(self.args.workdir)))
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if getattr(self, "cons", None):
            self.cons.kill()
            self.cons.wait()
        self.errlog.close()
        self.stop.set()
        deadline = time.monotonic() + 20
        while is_mounted(self.mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
        unmount(self.mnt)
        for t in self.threads:
            t.join(30)
            if t.is_alive():
                self.errors.append("a worker did not stop: %s" % t.name)

    # ---- the load ------------------------------------------------------------
    def spawn(self, name, fn, *a):
        t = threading.Thread(target=self.guard, args=(fn,) + a, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def guard(self, fn, *a):
        try:
            fn(*a)
        except (OSError, KafkaException):
            pass  # the daemon went away under it

    def fs_writer(self, kind, part):
        src = "d%d" % part if kind == "data" else "j%d" % part
        path = os.path.join(self.mnt, "s", str(part), kind)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            seq = 0
            while not self.stop.is_set():
                k = self.rng.randint(1, 5 if kind == "data" else 3)
                vals = ["%s-%d-%d" % (src, self.n, seq + i) for i in range(k)]
                seq += k
                if kind == "data":
                    buf = "".join(v + "\n" for v in vals)
                else:
                    buf = "".join(json.dumps({"value": v, "key": "k%d" % (i % 3),
                                              "headers": [{"key": "src", "value": src}]}) + "\n"
                                  for i, v in enumerate(vals))
                self.log.try_(vals)
                b = buf.encode()
                n = os.write(fd, b)
                if n != len(b):
                    self.errors.append("%s: short write %d of %d" % (path, n, len(b)))
                    return
                self.log.ok(vals, part)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass

    def producer(self, idempotent):
        src = "ki" if idempotent else "kn"
        conf = {"bootstrap.servers": "127.0.0.1:%d" % self.port, "acks": "all",
                "linger.ms": 2, "message.timeout.ms": 4000, "socket.timeout.ms": 2000,
                "reconnect.backoff.max.ms": 200, "log_level": 0}
        if idempotent:
            conf["enable.idempotence"] = True
        else:
            conf["enable.idempotence"] = False
            conf["retries"] = 0
        p = Producer(conf)

        def done(err, msg, v=None):
            if err is None:
                self.log.ok([msg.value().decode()], msg.partition())
                with self.log.lock:
                    self.log.acked_kafka += 1

        seq = 0
        while not self.stop.is_set():
            part = seq % 2
            v = "%s%d-%d-%d" % (src, part, self.n, seq)
            self.log.try_([v])
            try:
                p.produce("s", value=v.encode(), key=b"k", partition=part, on_delivery=done)
            except BufferError:
                p.poll(0.05)
                continue
            seq += 1
            p.poll(0.001 if seq % 8 else 0.01)
        # The daemon is dead by now: nothing more can be acknowledged.
        p.purge(in_queue=True, in_flight=True, blocking=False)
        p.flush(1)

    def consumer(self):
        """The consumer runs in a process of its own (consumer_main), which
        prints a line for each commit that succeeded; it is killed with the
        daemon, since a synchronous commit to a dead coordinator blocks."""
        self.cons = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--consumer",
                                      "127.0.0.1:%d" % self.port],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in self.cons.stdout:
            f = line.split()
            if len(f) == 3 and f[0] == b"C":
                part, off = int(f[1]), int(f[2])
                with self.log.lock:
                    self.log.commits[part] = max(self.log.commits.get(part, -1), off)
                    self.log.ncommits += 1

    def churner(self):
        i = 0
        while not self.stop.is_set():
            name = "churn-%d-%d" % (self.n, i)
            i += 1
            path = os.path.join(self.mnt, name)
            os.mkdir(path)
            with self.log.lock:
                self.log.topics_made.add(name)
            time.sleep(0.05)
            with self.log.lock:
                self.log.topics_made.discard(name)
                self.log.topics_unsure.add(name)
            os.rmdir(path)
            with self.log.lock:
                self.log.topics_unsure.discard(name)
                self.log.topics_gone.add(name)
            time.sleep(0.05)

    def run(self):
        self.start()
        if not os.path.isdir(os.path.join(self.mnt, "s")):
            os.mkdir(os.path.join(self.mnt, "s"))
        for part in (0, 1):
            self.spawn("data-%d" % part, self.fs_writer, "data", part)
            self.spawn("jsonl-%d" % part, self.fs_writer, "records.jsonl", part)
        self.spawn("producer-idem", self.producer, True)
        self.spawn("producer-plain", self.producer, False)
        self.spawn("consumer", self.consumer)
        self.spawn("churn", self.churner)
        time.sleep(self.rng.uniform(0.2, 1.5))
        self.kill()


def cli(args, *a):
    return subprocess.run([args.chronik, "--data", os.path.join(args.workdir, "data")] + list(a),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)


def check(args, log, ends):
    """Problems found in the data directory, as (kind, text) pairs."""
    problems = []
    r = cli(args, "verify")
    if r.returncode != 0:
        problems.append(("other", "chronik verify: %s %s" % (r.stdout.decode().strip(),
                                                          r.stderr.decode().strip()[:500])))
    seen = {}
    for part in (0, 1):
        r = cli(args, "consume", "s/%d" % part, "--jsonl")
        if r.returncode != 0:
            problems.append(("other", "consume s/%d: %s" % (part, r.stderr.decode()[:300])))
            continue
        lines = r.stdout.decode().splitlines()
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                problems.append(("other", "s/%d: line %d is not JSON: %r" % (part, i, line[:80])))
                continue
            if rec["offset"] != i:
                problems.append(("other", "s/%d: record %d has offset %d" % (part, i, rec["offset"])))
            v = rec.get("value")
            if not isinstance(v, str) or not VALUE_RE.match(v) or v not in log.tried:
                problems.append(("other", "s/%d offset %d: torn or unknown value %r" % (part, i, v)))
                continue
            if v in seen:
                problems.append(("dup", "s/%d: %r at offsets %s and %d" % (part, v, seen[v], i)))
            seen[v] = (part, i)
        if len(lines) < ends.get(part, 0):
            problems.append(("other", "s/%d ends at %d, it ended at %d before" %
                             (part, len(lines), ends[part])))
        ends[part] = len(lines)
    with log.lock:
        returned = dict(log.returned)
        commits = dict(log.commits)
        made, gone = set(log.topics_made), set(log.topics_gone)
    for v, part in returned.items():
        if v not in seen:
            problems.append(("loss", "%r (s/%d) returned or acknowledged, not there" % (v, part)))
        elif seen[v][0] != part:
            problems.append(("other", "%r in s/%d, written to s/%d" % (v, seen[v][0], part)))
    r = cli(args, "info")
    try:
        meta = json.loads(r.stdout.decode())
    except ValueError:
        problems.append(("other", "chronik info: %r" % r.stdout[:200]))
        return problems, len(returned)
    group = meta.get("groups", {}).get("soak", {})
    for part, off in commits.items():
        got = group.get("s/%d" % part, {}).get("offset", -1)
        if got < off:
            problems.append(("loss", "group soak s/%d committed %d, reads back %d" % (part, off, got)))
    topics = {t["name"] for t in meta.get("topics", [])}
    for t in made - topics:
        problems.append(("loss", "topic %s was created, is gone" % t))
    for t in gone & topics:
        problems.append(("other", "topic %s was deleted, is back" % t))
    return problems, len(returned)


def consumer_main(broker):
    """Assign s/0 and s/1 in group "soak", commit after every batch read,
    print "C PARTITION OFFSET" once a commit has succeeded."""
    c = Consumer({"bootstrap.servers": broker, "group.id": "soak",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "socket.timeout.ms": 2000, "log_level": 0})
    c.assign([TopicPartition("s", 0), TopicPartition("s", 1)])
    while True:
        msgs = c.consume(50, 0.2)
        pos = {}
        for m in msgs or []:
            if not m.error():
                pos[m.partition()] = m.offset() + 1
        if not pos:
            continue
        try:
            res = c.commit(offsets=[TopicPartition("s", p, o) for p, o in pos.items()],
                           asynchronous=False)
        except KafkaException:
            continue
        for tp in res:
            if tp.error is None:
                print("C %d %d" % (tp.partition, tp.offset), flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--consumer":
        consumer_main(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("chronikd")
    ap.add_argument("chronik")
    ap.add_argument("workdir")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--fsync", default="every")
    ap.add_argument("--tap", action="store_true")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    os.makedirs(os.path.join(args.workdir, "mnt"), exist_ok=True)
    log = Log()
    ends = {}
    totals = {"loss": 0, "dup": 0, "other": 0}
    checked = 0
    if args.tap:
        print("1..%d" % args.cycles, flush=True)
    print("# soak: seed %d, %d cycles, fsync %s" % (seed, args.cycles, args.fsync), flush=True)
    done = 0
    try:
        for n in range(args.cycles):
            cyc = Cycle(args, n, log, rng)
            try:
                cyc.run()
            finally:
                unmount(cyc.mnt)
            problems, checked = check(args, log, ends)
            problems += [("other", e) for e in cyc.errors]
            for kind, _ in problems:
                totals[kind] += 1
            done += 1
            if args.tap:
                print("%sok %d - cycle %d: %d records checked, s/0 %d s/1 %d, %d commits%s" %
                      ("not " if problems else "", n + 1, n, checked, ends.get(0, 0),
                       ends.get(1, 0), len(log.commits),
                       "" if not problems else ", %d problems" % len(problems)), flush=True)
            for _, text in problems[:20]:
                print("# " + text, flush=True)
                print("# cycle %d: %s" % (n, text), file=sys.stderr, flush=True)
    finally:
        summary = ("# soak: seed %d, %d cycles, %d acknowledged records checked (%d by Kafka), "
                   "%d group commits, %d topics created and deleted, "
                   "%d losses, %d duplicates, %d other problems" %
                   (seed, done, checked, log.acked_kafka, log.ncommits, len(log.topics_gone),
                    totals["loss"], totals["dup"], totals["other"]))
        print(summary, flush=True)
        if done != args.cycles or any(totals.values()):
            print(summary, file=sys.stderr, flush=True)  # meson shows stderr
    return 0 if done == args.cycles and not any(totals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
