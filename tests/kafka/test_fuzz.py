#!/usr/bin/python3
"""Hostile input against the listener: truncated frames, wrong and huge
sizes, unknown API keys and versions, random bodies behind valid headers for
every API and version the server advertises, mutated produce requests,
impossible array counts, and more connections than it serves. Between
attacks a well-behaved client, on a connection of its own, must still get
ApiVersions and Metadata answers; at the end the server must still run and
stop cleanly.

Usage: test_fuzz.py KAFKA_SERVER_BINARY   (CHRONIK_FUZZ_SEED to replay)
"""
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import time
import zlib

sys.dont_write_bytecode = True  # kafkatest is imported from the source tree: no __pycache__ there
from kafkatest import Server, diag, exit_status, ok  # noqa: E402

def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def frame(body):
    return struct.pack(">i", len(body)) + body


def header(key, version, corr, client=b"fuzz"):
    return struct.pack(">hhih", key, version, corr, len(client)) + client


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def recv_frame(s):
    (n,) = struct.unpack(">i", recv_exact(s, 4))
    return recv_exact(s, n)


class Good:
    """A well-behaved client on one long-lived connection."""

    def __init__(self, port):
        self.port = port
        self.corr = 0
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)

    def roundtrip(self, s, key, version, body):
        self.corr += 1
        s.sendall(frame(header(key, version, self.corr) + body))
        resp = recv_frame(s)
        return struct.unpack(">i", resp[:4])[0] == self.corr, resp[4:]

    def check(self, s=None):
        s = s or self.s
        try:
            same, body = self.roundtrip(s, 18, 0, b"")
            if not same or struct.unpack(">h", body[:2])[0] != 0:
                return False
            same, body = self.roundtrip(s, 3, 1, struct.pack(">i", -1))
            # throttle absent in v1: brokers array first, one broker, node 1.
            return same and struct.unpack(">ii", body[:8]) == (1, 1)
        except (OSError, ConnectionError, struct.error):
            return False

    def check_fresh(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                return self.check(s)
        except OSError:
            return False


def attack(port, data, linger=0.3, close_now=False):
    """Send data on a new connection; read whatever comes back for a moment."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    try:
        s.sendall(data)
        if close_now:
            return
        s.settimeout(linger)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    except OSError:
        pass
    finally:
        s.close()


def api_versions(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(frame(header(18, 0, 1)))
        body = recv_frame(s)[4:]
    (n,) = struct.unpack(">i", body[2:6])
    return [struct.unpack(">hhh", body[6 + 6 * i:12 + 6 * i]) for i in range(n)]


def produce_request(rng):
    value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    rec = bytes([0]) + b"\x00\x00" + b"\x01" + b"\x00" + bytes([len(value) * 2]) + value + b"\x00"
    rec = bytes([len(rec) * 2]) + rec
    # A syntactically plausible RecordBatch v2 (the CRC will not match).
    batch = (struct.pack(">qi", 0, 49 + len(rec)) + struct.pack(">ibI", -1, 2, 0) +
             struct.pack(">hiqqqhii", 0, 0, 0, 0, -1, -1, -1, 1) + rec)
    body = (struct.pack(">h", -1) + struct.pack(">hi", -1, 1000) + struct.pack(">i", 1) +
            struct.pack(">h", 4) + b"fuzz" + struct.pack(">i", 1) + struct.pack(">i", 0) +
            struct.pack(">i", len(batch)) + batch)
    return header(0, 7, 7) + body


def main():
    if len(sys.argv) < 2:
        print("1..0 # SKIP no kafka_server binary given")
        return 0
    seed = int(os.environ.get("CHRONIK_FUZZ_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix="chronik-kafka-fuzz.")
    srv = Server(sys.argv[1], os.path.join(tmp, "data"),
                 ["--partitions", "2", "--max-request-bytes", "1048576",
                  "--max-connections", "256"])
    try:
        srv.start()
        port = srv.port
        print("1..15", flush=True)
        diag("seed %d (CHRONIK_FUZZ_SEED=%d to replay)" % (seed, seed))
        good = Good(port)
        ok(good.check(), "a well-behaved client is served")
        apis = api_versions(port)

        # 1. Framing: truncated frames, tiny, negative and huge sizes.
        for data in [struct.pack(">i", 100) + b"x" * 10, struct.pack(">i", 0),
                     struct.pack(">i", 3) + b"abc", struct.pack(">i", -1) + b"z" * 8,
                     struct.pack(">i", 0x7fffffff) + b"z" * 64,
                     struct.pack(">i", 1 << 30) + b"z" * 64, b"\x00\x00", b""]:
            attack(port, data, close_now=True)
            attack(port, data)
        ok(good.check() and good.check_fresh(), "served after truncated, tiny and huge frames")

        # 2. Unknown API keys and unsupported versions.
        known = {k for k, _, _ in apis}
        for _ in range(200):
            key = rng.choice([rng.randrange(-32768, 32768), rng.randrange(0, 80)])
            ver = rng.choice([rng.randrange(-32768, 32768), rng.randrange(-2, 20)])
            attack(port, frame(header(key, ver, 1) + os.urandom(rng.randrange(0, 32))),
                   linger=0.05)
        ok(good.check() and good.check_fresh(),
           "served after 200 unknown keys/versions (%d keys known)" % len(known))

        # 3. Random bytes.
        for _ in range(200):
            attack(port, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
                   linger=0.02, close_now=rng.random() < 0.5)
        ok(good.check() and good.check_fresh(), "served after 200 random byte strings")

        # 4. Valid headers, random bodies, every advertised API and version.
        sent = 0
        for key, lo, hi in apis:
            for ver in range(lo, hi + 1):
                for _ in range(8):
                    n = rng.choice([0, 1, 2, 4, 8, 16, 64, 300])
                    hdr = header(key, ver, 9)
                    if key == 18 and ver >= 3:
                        hdr += b"\x00"
                    attack(port, frame(hdr + bytes(rng.randrange(256) for _ in range(n))),
                           linger=0.05)
                    sent += 1
        ok(good.check() and good.check_fresh(),
           "served after %d random bodies behind valid headers" % sent)

        # 5. Mutated produce requests (bit flips, cuts, extensions).
        for _ in range(150):
            req = bytearray(produce_request(rng))
            for _ in range(rng.randrange(1, 4)):
                op = rng.random()
                if op < 0.6 and req:
                    i = rng.randrange(len(req))
                    req[i] ^= 1 << rng.randrange(8)
                elif op < 0.8 and req:
                    del req[rng.randrange(len(req)):]
                else:
                    req += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
            attack(port, frame(bytes(req)), linger=0.05)
        ok(good.check() and good.check_fresh(), "served after 150 mutated produce requests")

        # 6. Impossible counts: arrays and strings claiming more than the frame.
        for body in [
            header(3, 1, 1) + struct.pack(">i", 0x7fffffff),
            header(3, 4, 1) + struct.pack(">i", 1000000) + b"\x00\x01a" * 10 + b"\x01",
            header(0, 7, 1) + struct.pack(">hhii", -1, 1, 1000, 0x40000000),
            header(1, 11, 1) + struct.pack(">iiiibiii", -1, 100, 1, 1000, 0, 0, -1, 0x7ffffff0),
            header(19, 4, 1) + struct.pack(">i", 0x10000000),
            header(11, 5, 1) + struct.pack(">h", 2) + b"gg" + struct.pack(">ii", 6000, 6000) +
            struct.pack(">h", 0) + struct.pack(">h", -1) + struct.pack(">h", 1) + b"c" +
            struct.pack(">i", 0x7fffffff),
            header(18, 3, 1) + b"\x00" + b"\xff\xff\xff\xff\x0f",
            header(18, 3, 1) + b"\x05\x01\x00\xff\xff\xff\xff\x07",
        ]:
            attack(port, frame(body), linger=0.2)
        ok(good.check() and good.check_fresh(), "served after impossible array and string counts")

        # 7. A partial frame left hanging while the good client works.
        hang = socket.create_connection(("127.0.0.1", port), timeout=5)
        hang.sendall(struct.pack(">i", 1000) + b"half")
        ok(good.check() and good.check_fresh(), "served while another connection sends half a frame")
        hang.close()

        # 8. More connections than the listener serves at once (256 here), silent
        # or sending a frame they never finish; while they are all open, a
        # new client must get in and be served.
        flood = []
        for i in range(300):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                if i % 3 == 0:
                    s.sendall(struct.pack(">i", 1 << 20) + b"part")
                flood.append(s)
            except OSError:
                break
        time.sleep(0.5)
        ok(good.check(), "the established client is served during a connection flood (%d opened)"
           % len(flood))
        ok(good.check_fresh(), "a new client connects and is served while the flood is up")
        newcomers = []
        for _ in range(5):
            try:
                newcomers.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                pass
        ok(len(newcomers) == 5 and all(good.check(s) for s in newcomers) and good.check(),
           "five more new clients are served, and so is the established one")
        for s in newcomers + flood:
            s.close()
        fresh = False
        for _ in range(50):  # the listener reaps closed connections
            if good.check_fresh():
                fresh = True
                break
            time.sleep(0.1)
        ok(fresh, "new connections are served again after the flood")

        # 9. Compressed bombs with a valid CRC (1 GiB of zeros, gzip): an
        # error code, and the server goes on.
        bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
        chunk = bytes(1 << 20)
        area = b"".join(bomb.compress(chunk) for _ in range(1024)) + bomb.flush()
        hdr_rest = struct.pack(">hiqqqhii", 1, 999, 0, 0, -1, -1, -1, 1000) + area
        batch = (struct.pack(">qi", 0, 9 + len(hdr_rest)) + struct.pack(">ib", -1, 2) +
                 struct.pack(">I", crc32c(hdr_rest)) + hdr_rest)
        meta = header(3, 4, 5) + struct.pack(">i", 1) + struct.pack(">h", 5) + b"bombs" + b"\x01"
        body = (struct.pack(">h", -1) + struct.pack(">hi", -1, 30000) + struct.pack(">i", 1) +
                struct.pack(">h", 5) + b"bombs" + struct.pack(">i", 1) + struct.pack(">i", 0) +
                struct.pack(">i", len(batch)) + batch)
        errs = []
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(frame(meta))
            recv_frame(s)
            for _ in range(3):
                s.sendall(frame(header(0, 7, 6) + body))
                resp = recv_frame(s)
                # corr, topics[1], name, partitions[1], index, error
                errs.append(struct.unpack(">h", resp[4 + 4 + 2 + 5 + 4 + 4:][:2])[0])
        ok(all(e != 0 for e in errs) and good.check(),
           "a gzip bomb with a valid CRC gets an error code (%s), others still served" % errs)

        ok(srv.alive(), "the server never crashed")
        rc = srv.stop()
        ok(rc == 0, "it stops cleanly (exit %s)" % rc)
        return exit_status()
    finally:
        if srv.alive():
            srv.proc.kill()
            srv.proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
