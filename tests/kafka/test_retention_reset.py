#!/usr/bin/python3
"""Kafka consumers below the log start after retention (confluent-kafka-python,
librdkafka): a Fetch below the log start gets 1 OFFSET_OUT_OF_RANGE (Kafka's
FetchResponse, with LogStartOffset from v5); a group whose committed offset
retention removed resets as Kafka's consumers do: auto.offset.reset=earliest
goes on at the log start and reads every record kept once, latest goes to
the end and reads only what is produced after, error reports the reset.

5,000 records (values rr-NNNNNN, offset NNNNNN, padded to 108 bytes; the
topic's compression.type uncompressed, so that the sizes retention counts
are the records') go to one partition in batches of 100, in 64 KiB WAL
files sealed every 200 ms; groups commit offset 0; then
retention.bytes=100000 moves the log start, the test waits until `chronik
info` shows it settled with nothing left in the WAL, and turns retention
off again so that it stays there.

Usage: test_retention_reset.py KAFKA_SERVER CHRONIK
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # kafkatest is imported from the source tree: no __pycache__ there
from kafkatest import Server, exit_status, ok  # noqa: E402

try:
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
except ImportError:
    print("1..0 # SKIP confluent_kafka not installed (python3-confluent-kafka)")
    sys.exit(0)

TOPIC = "rr"
N = 5000
RETENTION_BYTES = 100000
KERR_NONE, KERR_OFFSET_OUT_OF_RANGE = 0, 1


def value(i):
    return (b"rr-%06d" % i).ljust(108, b".")


def until(cond, seconds):
    """Poll cond() every 0.1 s until true or seconds pass; its last value."""
    end = time.monotonic() + seconds
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


def fetch_v5(port, offset):
    """A raw Fetch v5 of TOPIC/0 at offset (MaxWaitMs 0):
    (ErrorCode, HighWatermark, LogStartOffset) of the partition."""
    t = TOPIC.encode()
    body = struct.pack(">iiiib", -1, 0, 0, 1 << 20, 0)  # ReplicaId .. IsolationLevel
    body += struct.pack(">ih", 1, len(t)) + t
    body += struct.pack(">iiqqi", 1, 0, offset, -1, 1 << 20)  # Partition, FetchOffset,
    # LogStartOffset (a follower's; -1), PartitionMaxBytes
    client = b"rr-raw"
    msg = struct.pack(">hhih", 1, 5, 7, len(client)) + client + body
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        c.sendall(struct.pack(">i", len(msg)) + msg)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            k = c.recv(1 << 16)
            if not k:
                raise ConnectionError("closed by the server")
            buf += k
    finally:
        c.close()
    r = buf[8:]  # size, CorrelationId
    # ThrottleTimeMs, Responses count, Topic, PartitionResponses count,
    # Partition, then ErrorCode, HighWatermark, LastStableOffset, LogStartOffset.
    at = 4 + 4 + 2 + len(t) + 4 + 4
    err, hw, _lso, log_start = struct.unpack(">hqqq", r[at:at + 26])
    return err, hw, log_start


def chronik_info(chronik, data):
    """`chronik info TOPIC/0` beside the server (it takes no lock), or None."""
    out = subprocess.run([chronik, "--data", data, "info", TOPIC + "/0"],
                         capture_output=True, timeout=30)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.decode())


def set_retention(admin, retention_bytes):
    """Legacy AlterConfigs replaces the topic's config: say all of it."""
    res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, set_config={
        "compression.type": "uncompressed", "retention.bytes": str(retention_bytes)})
    try:
        admin.alter_configs([res], request_timeout=15)[res].result(timeout=15)
        return None
    except KafkaException as e:
        return e.args[0]


def consumer(broker, group, reset):
    return Consumer({
        "bootstrap.servers": broker,
        "broker.address.family": "v4",
        "group.id": group,
        "auto.offset.reset": reset,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "session.timeout.ms": 6000,
    })


def read_to_eof(c, seconds=60):
    """Poll c until it reports the end of the partition: (offsets, values of
    the records received, the end offset reported, other errors)."""
    offsets, values, errors = [], [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                return offsets, values, m.offset(), errors
            errors.append(m.error())
            continue
        offsets.append(m.offset())
        values.append(m.value())
    return offsets, values, None, errors


def commit_zero(broker, group):
    """Commit offset 0 of TOPIC/0 for group; the committed offset read back."""
    c = consumer(broker, group, "earliest")
    try:
        c.commit(offsets=[TopicPartition(TOPIC, 0, 0)], asynchronous=False)
        return c.committed([TopicPartition(TOPIC, 0)], timeout=15)[0].offset
    finally:
        c.close()


def main():
    if len(sys.argv) < 3 or not os.access(sys.argv[1], os.X_OK) or \
            not os.access(sys.argv[2], os.X_OK):
        print("1..0 # SKIP no kafka_server or chronik binary given")
        return 0
    print("1..16", flush=True)
    tmp = tempfile.mkdtemp(prefix="chronik-kafka-rr.")
    data = os.path.join(tmp, "data")
    srv = Server(sys.argv[1], data, ["--partitions", "1", "--fsync", "never",
                                     "--set", "wal.segment.bytes=65536",
                                     "--set", "wal.seal.ms=200"])
    try:
        run(srv, sys.argv[2], data)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_status()


def run(srv, chronik, data):
    broker = srv.start()
    admin = AdminClient({"bootstrap.servers": broker, "broker.address.family": "v4"})
    fs = admin.create_topics([NewTopic(TOPIC, 1, 1, config={"compression.type": "uncompressed"})],
                             request_timeout=15)
    fs[TOPIC].result(timeout=15)

    p = Producer({"bootstrap.servers": broker, "broker.address.family": "v4",
                  "acks": "all", "linger.ms": 5, "compression.type": "none",
                  # batches of about 12 KB: retention deletes whole segments,
                  # and a segment holds whole batches
                  "batch.num.messages": 100})
    delivered = []

    def on_delivery(err, msg):
        delivered.append(None if err else msg.offset())

    for i in range(N):
        p.produce(TOPIC, value(i), partition=0, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(30)
    ok(left == 0 and sorted(delivered) == list(range(N)),
       "%d records produced at offsets 0 to %d" % (len(delivered), N - 1))
    err, hw, log_start = fetch_v5(srv.port, 0)
    ok((err, hw, log_start) == (KERR_NONE, N, 0),
       "before retention a Fetch at 0 is served: error %d, high watermark %d, log start %d"
       % (err, hw, log_start))
    committed = [commit_zero(broker, g) for g in ("early", "late", "strict")]
    ok(committed == [0, 0, 0], "groups early, late, strict commit offset 0: %s" % committed)

    err = set_retention(admin, RETENTION_BYTES)
    ok(err is None, "alter_configs sets retention.bytes=%d (%s)" % (RETENTION_BYTES, err))

    def moved():
        info = chronik_info(chronik, data)
        return info is not None and info["wal_bytes"] == 0 and info["log_start_offset"] > 0

    st = until(moved, 90)
    # Settled: the same log start across a retention period (1 s).
    ls = (chronik_info(chronik, data) or {}).get("log_start_offset", -1)
    for _ in range(20):
        time.sleep(1.2)
        now = (chronik_info(chronik, data) or {}).get("log_start_offset", -1)
        if now == ls:
            break
        ls = now
    err = set_retention(admin, -1)
    if not ok(st and 0 < ls < N and err is None,
              "retention moved the log start to %d; retention off again (%s)" % (ls, err)):
        print("Bail out! nothing below the log start to test", flush=True)
        return

    wc = consumer(broker, "watermarks", "earliest")
    low, high = wc.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=15)
    wc.close()
    ok((low, high) == (ls, N), "ListOffsets: earliest %d, latest %d" % (low, high))

    got = [fetch_v5(srv.port, o) for o in (0, ls - 1, ls)]
    want = [(KERR_OFFSET_OUT_OF_RANGE, N, ls), (KERR_OFFSET_OUT_OF_RANGE, N, ls),
            (KERR_NONE, N, ls)]
    ok(got == want, "Fetch at 0 and at %d: 1 OFFSET_OUT_OF_RANGE with LogStartOffset %d; "
       "at %d served: %s" % (ls - 1, ls, ls, got))

    # earliest: on at the log start, every record kept once, in order.
    c = consumer(broker, "early", "earliest")
    c.subscribe([TOPIC])
    offsets, values, eof, errors = read_to_eof(c)
    c.close()
    ok(offsets == list(range(ls, N)) and eof == N and not errors,
       "group early (committed 0, earliest) reads offsets %s to %s, %d records, then the end "
       "at %s (%s)" % (offsets[:1], offsets[-1:], len(offsets), eof, errors))
    ok(values == [value(i) for i in range(ls, N)], "with the values produced at those offsets")

    # latest: to the end, nothing kept is read, the next record is.
    c = consumer(broker, "late", "latest")
    c.subscribe([TOPIC])
    offsets, _, eof, errors = read_to_eof(c)
    ok(offsets == [] and eof == N and not errors,
       "group late (committed 0, latest) reads nothing and is at the end, %s (%s, %s)"
       % (eof, offsets[:3], errors))
    p.produce(TOPIC, value(N), partition=0)
    left = p.flush(30)
    offsets, values, eof, errors = read_to_eof(c)
    c.close()
    ok(left == 0 and offsets == [N] and values == [value(N)] and eof == N + 1,
       "then it reads the one record produced after, offset %s (%s)" % (offsets, errors))

    # A position asked for below the log start (assign), not committed.
    c = consumer(broker, "assigned", "earliest")
    c.assign([TopicPartition(TOPIC, 0, 1)])
    offsets, _, eof, errors = read_to_eof(c)
    c.close()
    ok(offsets == list(range(ls, N + 1)) and eof == N + 1 and not errors,
       "assign at offset 1 with earliest reads offsets %s to %s, %d records"
       % (offsets[:1], offsets[-1:], len(offsets)))
    c = consumer(broker, "assigned-late", "latest")
    c.assign([TopicPartition(TOPIC, 0, ls - 1)])
    offsets, _, eof, errors = read_to_eof(c)
    c.close()
    ok(offsets == [] and eof == N + 1 and not errors,
       "assign at offset %d with latest reads nothing and is at the end, %s" % (ls - 1, eof))

    # error: the reset is reported, nothing is read.
    c = consumer(broker, "strict", "error")
    c.subscribe([TOPIC])
    offsets, errors = [], []
    end = time.monotonic() + 60
    while not errors and time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and m.error():
            errors.append(m.error())
        elif m is not None:
            offsets.append(m.offset())
    c.close()
    codes = [e.code() for e in errors]
    ok(offsets == [] and KafkaError._AUTO_OFFSET_RESET in codes,
       "group strict (committed 0, auto.offset.reset=error) gets the reset error, reads "
       "nothing: %s" % [str(e) for e in errors[:2]])

    # The committed offsets stay where they were: nothing here commits.
    committed = [commit_read(broker, g) for g in ("early", "late")]
    ok(committed == [0, 0], "the groups' committed offsets are unchanged: %s" % committed)
    ok(srv.alive(), "the server is still running")


def commit_read(broker, group):
    c = consumer(broker, group, "earliest")
    try:
        return c.committed([TopicPartition(TOPIC, 0)], timeout=15)[0].offset
    finally:
        c.close()


sys.exit(main())
