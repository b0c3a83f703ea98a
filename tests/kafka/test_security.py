#!/usr/bin/python3
"""SASL and TLS at the wire level and with confluent-kafka-python.

The wire part speaks the SASL APIs itself (its own SCRAM client, written
from RFC 5802, checking the server's signature too) and checks Kafka's
error codes and what happens to the connection: 58 on a wrong password
or an unknown user, then the connection closed; 33 for an unknown
mechanism; a request other than ApiVersions/SASL before authentication
closes the connection unanswered; the raw token framing after a v0
SaslHandshake. The client part runs confluent-kafka-python with
SCRAM-SHA-256 (SASL_PLAINTEXT) and SCRAM-SHA-512 over TLS (SASL_SSL), and
a read-only user whose produce fails with TOPIC_AUTHORIZATION_FAILED.

Usage: test_security.py KAFKA_SERVER CHRONIK
"""
import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
from kafkatest import diag, exit_status, ok  # noqa: E402

try:
    from confluent_kafka import Consumer, KafkaError, Producer
except ImportError:
    print("1..0 # SKIP confluent_kafka not installed (python3-confluent-kafka)")
    sys.exit(0)


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.cid = 0

    def send_frame(self, payload):
        self.s.sendall(struct.pack(">i", len(payload)) + payload)

    def recv_frame(self):
        """The next frame's bytes, or None when the server closed."""
        h = self._recv(4)
        if h is None:
            return None
        return self._recv(struct.unpack(">i", h)[0])

    def _recv(self, n):
        d = b""
        while len(d) < n:
            try:
                k = self.s.recv(n - len(d))
            except (ConnectionResetError, socket.timeout):
                return None
            if not k:
                return None
            d += k
        return d

    def request(self, key, ver, body):
        """Response body (after the correlation id), None if closed."""
        self.cid += 1
        self.send_frame(struct.pack(">hhih", key, ver, self.cid, 4) + b"test" + body)
        r = self.recv_frame()
        if r is None:
            return None
        assert struct.unpack(">i", r[:4])[0] == self.cid
        return r[4:]

    def closed(self):
        return self._recv(1) is None


def kstr(b):
    return struct.pack(">h", len(b)) + b


def kbytes(b):
    return struct.pack(">i", len(b)) + b


def handshake(c, mech, ver=1):
    r = c.request(17, ver, kstr(mech.encode()))
    err, n = struct.unpack(">hi", r[:6])
    mechs, off = [], 6
    for _ in range(n):
        ln = struct.unpack(">h", r[off:off + 2])[0]
        mechs.append(r[off + 2:off + 2 + ln].decode())
        off += 2 + ln
    return err, mechs


def authenticate(c, token):
    """(error_code, message, auth_bytes) or None if the connection closed."""
    r = c.request(36, 1, kbytes(token))
    if r is None:
        return None
    err, ml = struct.unpack(">hh", r[:4])
    off = 4 + max(ml, 0)
    msg = r[4:off].decode() if ml >= 0 else None
    bl = struct.unpack(">i", r[off:off + 4])[0]
    return err, msg, r[off + 4:off + 4 + bl]


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])


def read_uvarint(b, off):
    n = shift = 0
    while True:
        x = b[off]
        off += 1
        n |= (x & 0x7f) << shift
        shift += 7
        if not x & 0x80:
            return n, off


def authenticate_v2(c, token):
    """SaslAuthenticate v2 (flexible: request header v2, compact bytes,
    tagged fields; response header v1): as authenticate()."""
    c.cid += 1
    c.send_frame(struct.pack(">hhih", 36, 2, c.cid, 4) + b"test" + b"\0" +
                 uvarint(len(token) + 1) + token + b"\0")
    r = c.recv_frame()
    if r is None:
        return None
    assert struct.unpack(">i", r[:4])[0] == c.cid
    ntags, off = read_uvarint(r, 4)
    assert ntags == 0
    err = struct.unpack(">h", r[off:off + 2])[0]
    ml, off = read_uvarint(r, off + 2)
    msg = r[off:off + ml - 1].decode() if ml else None
    off += max(ml - 1, 0)
    bl, off = read_uvarint(r, off)
    data = r[off:off + bl - 1]
    off += bl - 1
    lifetime = struct.unpack(">q", r[off:off + 8])[0]
    ntags, off = read_uvarint(r, off + 8)
    assert ntags == 0 and off == len(r), "v2 response decodes exactly"
    return err, msg, data, lifetime


class Scram:
    """RFC 5802 client; step() takes the server's token (None first)."""

    def __init__(self, hname, user, pw):
        self.h, self.user, self.pw = hname, user, pw
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = "n=%s,r=%s" % (user, self.cnonce)

    def first(self):
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        sf = server_first.decode()
        a = dict(kv.split("=", 1) for kv in sf.split(","))
        assert a["r"].startswith(self.cnonce)
        salted = hashlib.pbkdf2_hmac(self.h, self.pw.encode(), base64.b64decode(a["s"]),
                                     int(a["i"]))
        ck = hmac.new(salted, b"Client Key", self.h).digest()
        sk = hashlib.new(self.h, ck).digest()
        wo = "c=biws,r=" + a["r"]
        am = ",".join([self.bare, sf, wo]).encode()
        proof = bytes(x ^ y for x, y in zip(ck, hmac.new(sk, am, self.h).digest()))
        srv = hmac.new(salted, b"Server Key", self.h).digest()
        self.expect = "v=" + base64.b64encode(hmac.new(srv, am, self.h).digest()).decode()
        return (wo + ",p=" + base64.b64encode(proof).decode()).encode()


def metadata_ok(c):
    r = c.request(3, 1, struct.pack(">i", -1))  # all topics
    return r is not None


def start_server(binary, data, args):
    p = subprocess.Popen([binary, data] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    ports = {}
    for _ in range(2 if "--tls" in args else 1):
        line = p.stdout.readline().decode().split()
        if len(line) != 2:
            print("Bail out! kafka_server did not start")
            sys.exit(1)
        ports[line[0]] = int(line[1])
    return p, ports


def wire_tests(port):
    # ApiVersions is served before authentication and lists 17 and 36.
    c = Conn(port)
    r = c.request(18, 0, b"")
    keys = set()
    n = struct.unpack(">i", r[2:6])[0]
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", r[6 + 6 * i:12 + 6 * i])
        keys.add((k, lo, hi))
    ok((17, 0, 1) in keys and (36, 0, 2) in keys,
       "ApiVersions before authentication lists SaslHandshake 0-1, SaslAuthenticate 0-2")
    ok(not metadata_ok(c) and c.closed(),
       "Metadata before authentication closes the connection unanswered")

    c = Conn(port)
    err, mechs = handshake(c, "GSSAPI")
    ok(err == 33 and mechs == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
       "an unknown mechanism gets 33 UNSUPPORTED_SASL_MECHANISM and the enabled list")

    c = Conn(port)
    r = authenticate(c, b"\0alice\0alice-pw")
    ok(r is not None and r[0] == 34 and c.closed(),
       "SaslAuthenticate without a handshake gets 34 ILLEGAL_SASL_STATE, then closes")

    c = Conn(port)
    handshake(c, "PLAIN")
    r = authenticate(c, b"\0alice\0alice-pw")
    ok(r is not None and r[0] == 0 and metadata_ok(c), "PLAIN v1: authenticated, then served")

    for mech, user, pw in (("PLAIN", "alice", "nope"), ("PLAIN", "nobody", "alice-pw")):
        c = Conn(port)
        handshake(c, mech)
        r = authenticate(c, b"\0" + user.encode() + b"\0" + pw.encode())
        ok(r is not None and r[0] == 58 and r[1] and c.closed(),
           "PLAIN %s: 58 SASL_AUTHENTICATION_FAILED with a message, then closed" %
           ("wrong password" if user == "alice" else "unknown user"))

    for mech, h in (("SCRAM-SHA-256", "sha256"), ("SCRAM-SHA-512", "sha512")):
        c = Conn(port)
        handshake(c, mech)
        s = Scram(h, "alice", "alice-pw")
        e1, _, sf = authenticate(c, s.first())
        e2, _, fin = authenticate(c, s.final(sf))
        ok(e1 == 0 and e2 == 0 and fin.decode() == s.expect and metadata_ok(c),
           "%s: the server's signature verifies and requests are served" % mech)
        c = Conn(port)
        handshake(c, mech)
        s = Scram(h, "alice", "wrong")
        _, _, sf = authenticate(c, s.first())
        r = authenticate(c, s.final(sf))
        ok(r is not None and r[0] == 58 and c.closed(),
           "%s wrong password: 58, then closed" % mech)
    # SaslAuthenticate v2, the flexible one: the same exchange.
    c = Conn(port)
    handshake(c, "SCRAM-SHA-512")
    s = Scram("sha512", "alice", "alice-pw")
    e1, _, sf, _ = authenticate_v2(c, s.first())
    e2, _, fin, life = authenticate_v2(c, s.final(sf))
    ok(e1 == 0 and e2 == 0 and fin.decode() == s.expect and life == 0 and metadata_ok(c),
       "SaslAuthenticate v2 (flexible): SCRAM-SHA-512 authenticates, then served")
    c = Conn(port)
    handshake(c, "PLAIN")
    r = authenticate_v2(c, b"\0alice\0nope")
    ok(r is not None and r[0] == 58 and r[1] and c.closed(),
       "SaslAuthenticate v2 wrong password: 58 with a message, then closed")
    c = Conn(port)
    handshake(c, "SCRAM-SHA-256")
    e1, _, _ = authenticate(c, b"n,a=alice," + Scram("sha256", "alice", "x").bare.encode())
    ok(e1 == 0, "SCRAM with the user's own authorization id is answered a server-first")
    c = Conn(port)
    handshake(c, "SCRAM-SHA-256")
    r = authenticate(c, Scram("sha256", "nobody", "x").first())
    ok(r is not None and r[0] == 58 and c.closed(), "SCRAM unknown user: 58, then closed")

    # ListOffsets v1 of a topic the user has no rule for: 29 per partition;
    # alice (all topics) gets 3 for the same unknown topic.
    def partition_error(user, pw, key, body, err_at):
        c = Conn(port)
        handshake(c, "PLAIN")
        authenticate(c, b"\0" + user + b"\0" + pw)
        r = c.request(key, 1 if key == 2 else 0, body)
        return struct.unpack(">h", r[err_at:err_at + 2])[0]

    def list_offsets(user, pw):
        body = struct.pack(">ii", -1, 1) + kstr(b"hidden") + struct.pack(">iiq", 1, 0, -1)
        # Topics [Name, Partitions [PartitionIndex, ErrorCode, ...]]
        return partition_error(user, pw, 2, body, 4 + 2 + len(b"hidden") + 4 + 4)
    e1, e2 = list_offsets(b"blind", b"blind-pw"), list_offsets(b"alice", b"alice-pw")
    ok(e1 == 29 and e2 == 3,
       "ListOffsets: 29 without any rule on the topic, 3 (unknown) with one (got %d, %d)" %
       (e1, e2))

    # DeleteRecords v0 needs delete on the topic: a reader gets 29.
    def delete_records(user, pw):
        body = struct.pack(">i", 1) + kstr(b"hidden") + struct.pack(">iiqi", 1, 0, -1, 5000)
        # ThrottleTimeMs, Topics [Name, Partitions [PartitionIndex,
        # LowWatermark, ErrorCode]]
        return partition_error(user, pw, 21, body, 4 + 4 + 2 + len(b"hidden") + 4 + 4 + 8)
    e1, e2 = delete_records(b"reader", b"reader-pw"), delete_records(b"alice", b"alice-pw")
    ok(e1 == 29 and e2 == 3,
       "DeleteRecords: 29 with only read on the topic, 3 (unknown) with delete (got %d, %d)" %
       (e1, e2))

    # DeleteGroups v0 needs delete on the group: a reader gets 30.
    def delete_group(user, pw):
        body = struct.pack(">i", 1) + kstr(b"g-none")
        # ThrottleTimeMs, Results [GroupId, ErrorCode]
        return partition_error(user, pw, 42, body, 4 + 4 + 2 + len(b"g-none"))
    e1, e2 = delete_group(b"reader", b"reader-pw"), delete_group(b"alice", b"alice-pw")
    ok(e1 == 30 and e2 == 69,
       "DeleteGroups: 30 with only read on the group, 69 (unknown) with delete (got %d, %d)" %
       (e1, e2))

    # AlterConfigs v0 needs delete on the topic (retention and cleanup.policy
    # delete records): a reader gets 29.
    def alter_configs(user, pw):
        body = (struct.pack(">ib", 1, 2) + kstr(b"hidden") + struct.pack(">i", 1) +
                kstr(b"retention.ms") + kstr(b"1") + b"\0")
        # ThrottleTimeMs, Responses [ErrorCode, ...]
        return partition_error(user, pw, 33, body, 4 + 4)
    e1, e2 = alter_configs(b"reader", b"reader-pw"), alter_configs(b"alice", b"alice-pw")
    ok(e1 == 29 and e2 == 3,
       "AlterConfigs: 29 with only read on the topic, 3 (unknown) with delete (got %d, %d)" %
       (e1, e2))

    # CreatePartitions v0 needs create on the topic: a reader gets 29.
    def create_partitions(user, pw):
        body = (struct.pack(">i", 1) + kstr(b"hidden") + struct.pack(">iiib", 2, -1, 5000, 0))
        # ThrottleTimeMs, Results [Name, ErrorCode, ...]
        return partition_error(user, pw, 37, body, 4 + 4 + 2 + len(b"hidden"))
    e1, e2 = create_partitions(b"reader", b"reader-pw"), create_partitions(b"alice", b"alice-pw")
    ok(e1 == 29 and e2 == 3,
       "CreatePartitions: 29 with only read on the topic, 3 (unknown) with create (got %d, %d)" %
       (e1, e2))

    # Malformed SCRAM messages: 58 and closed, whatever the byte.
    bad_first = [b"", b"n", b"n,,", b"n,,n=alice", b"n,,n=alice,", b"n,,n=,r=abc",
                 b"p=tls-unique,,n=alice,r=abc", b"n,,n=alice,r=", b"n,,r=abc,n=alice",
                 b"n,a=reader,n=alice,r=abc"]
    bad_final = [b"", b"c=biws", b"c=biws,", b"c=biws,r=", b"c=eSws,r=%s,p=AAAA", b"c=biws,r=%s",
                 b"c=biws,r=%s,p=", b"c=biws,r=%s,p=!!!!", b"c=biws,r=x%s,p=" + b"A" * 44]
    good = True
    for tok in bad_first:
        c = Conn(port)
        handshake(c, "SCRAM-SHA-256")
        r = authenticate(c, tok)
        good = good and r is not None and r[0] == 58 and c.closed()
    for tok in bad_final:
        c = Conn(port)
        handshake(c, "SCRAM-SHA-256")
        s = Scram("sha256", "alice", "alice-pw")
        _, _, sf = authenticate(c, s.first())
        nonce = dict(kv.split("=", 1) for kv in sf.decode().split(","))["r"].encode()
        r = authenticate(c, tok.replace(b"%s", nonce))
        good = good and r is not None and r[0] == 58 and c.closed()
    ok(good, "%d malformed SCRAM messages each get 58 and a closed connection" %
       (len(bad_first) + len(bad_final)))

    # SaslHandshake v0: raw tokens, framed by their length only.
    c = Conn(port)
    err, _ = handshake(c, "SCRAM-SHA-512", ver=0)
    s = Scram("sha512", "alice", "alice-pw")
    c.send_frame(s.first())
    sf = c.recv_frame()
    c.send_frame(s.final(sf))
    fin = c.recv_frame()
    ok(err == 0 and fin is not None and fin.decode() == s.expect and metadata_ok(c),
       "SaslHandshake v0 then raw SCRAM tokens authenticate")
    c = Conn(port)
    handshake(c, "PLAIN", ver=0)
    c.send_frame(b"\0alice\0bad")
    ok(c.recv_frame() is None, "raw PLAIN with a wrong password closes the connection")


def client_tests(port, tls_port, cert):
    def conf(user, pw, mech, tls=False):
        d = {"bootstrap.servers": "127.0.0.1:%d" % (tls_port if tls else port),
             "broker.address.family": "v4",
             "security.protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
             "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": pw}
        if tls:
            d["ssl.ca.location"] = cert
        return d

    for mech, tls in (("SCRAM-SHA-256", False), ("SCRAM-SHA-512", True), ("PLAIN", True)):
        topic = "py-%s-%s" % (mech.lower(), "tls" if tls else "plain")
        p = Producer(conf("alice", "alice-pw", mech, tls))
        errs = []
        for i in range(100):
            p.produce(topic, ("v%d" % i).encode(),
                      on_delivery=lambda e, m: errs.append(e) if e else None)
        left = p.flush(30)
        cons = Consumer(dict(conf("alice", "alice-pw", mech, tls), **{
            "group.id": "g-" + topic, "auto.offset.reset": "earliest"}))
        cons.subscribe([topic])
        got = []
        for _ in range(200):
            m = cons.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value().decode())
            if len(got) == 100:
                break
        cons.close()
        ok(left == 0 and not errs and got == ["v%d" % i for i in range(100)],
           "confluent-kafka-python %s%s: 100 records produced and consumed in a group" %
           (mech, " over TLS" if tls else ""))

    # The topic exists (alice creates it); reader may read it, not write.
    p = Producer(conf("alice", "alice-pw", "SCRAM-SHA-256"))
    p.produce("pub-py", b"first")
    p.flush(30)
    errs = []
    p = Producer(dict(conf("reader", "reader-pw", "SCRAM-SHA-512"),
                      **{"message.send.max.retries": 0}))
    p.produce("pub-py", b"x", on_delivery=lambda e, m: errs.append(e))
    p.flush(30)
    ok(len(errs) == 1 and errs[0] is not None and
       errs[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
       "a read-only user's produce fails with TOPIC_AUTHORIZATION_FAILED (29)")
    if errs and errs[0] is not None:
        diag(errs[0])

    # lonely may read topics but join no group.
    errs = []
    cons = Consumer(dict(conf("lonely", "lonely-pw", "SCRAM-SHA-256"), **{
        "group.id": "g-lonely", "auto.offset.reset": "earliest"}))
    cons.subscribe(["pub-py"])
    for _ in range(20):
        m = cons.poll(0.5)
        if m is not None and m.error():
            errs.append(m.error())
            break
    cons.close()
    ok(errs and errs[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED,
       "a user without group access gets GROUP_AUTHORIZATION_FAILED (30) joining a group")
    if errs:
        diag(errs[0])

    errs = []
    p = Producer(dict(conf("alice", "wrong", "SCRAM-SHA-256"),
                      **{"error_cb": lambda e: errs.append(e)}))
    p.poll(3)
    ok(any(e.code() == KafkaError._AUTHENTICATION for e in errs),
       "a wrong password is reported as an authentication error")


def main():
    if len(sys.argv) < 3:
        print("1..0 # SKIP usage: test_security.py KAFKA_SERVER CHRONIK")
        return 0
    server, chronik = sys.argv[1], sys.argv[2]
    if not shutil.which("openssl"):
        print("1..0 # SKIP openssl not installed")
        return 0
    print("1..30", flush=True)
    tmp = tempfile.mkdtemp(prefix="chronik-sec.")
    proc = None
    try:
        users = os.path.join(tmp, "users")
        for user, pw, mech in (("alice", "alice-pw", []),
                               ("reader", "reader-pw", ["--mechanism", "SCRAM-SHA-512"]),
                               ("lonely", "lonely-pw", ["--mechanism", "SCRAM-SHA-256"]),
                               ("blind", "blind-pw", ["--mechanism", "SCRAM-SHA-256"])):
            subprocess.run([chronik, "user", "add", user, "--file", users] + mech,
                           input=pw.encode() + b"\n", check=True)
        with open(users, "a") as f:
            f.write("acl alice all topic *\nacl alice all group *\n"
                    "acl reader read topic *\nacl reader read group *\n"
                    "acl lonely read topic *\nacl blind read group *\n")
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, stderr=subprocess.DEVNULL)
        proc, ports = start_server(server, os.path.join(tmp, "data"),
                                   ["--partitions", "1", "--users", users,
                                    "--tls", "127.0.0.1:0", "--tls-cert", cert,
                                    "--tls-key", key])
        wire_tests(ports["PORT"])
        client_tests(ports["PORT"], ports["TLSPORT"], cert)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = -1
            ok(rc == 0, "the server stops cleanly")
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
