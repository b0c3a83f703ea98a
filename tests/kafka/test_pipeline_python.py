#!/usr/bin/python3
"""confluent-kafka-python producers that keep several Produce requests in
flight on their connection (listener.c, PIPELINING), under fsync every: an
idempotent producer with max.in.flight 5 and a plain one with the default
in-flight limit, each sending one message per request (linger.ms 0). Every
delivery report succeeds, the offsets come back dense in produce order, and
a consumer reads each partition in produce order with no duplicates.

Usage: test_pipeline_python.py KAFKA_SERVER_BINARY
"""
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # kafkatest is imported from the source tree: no __pycache__ there
from kafkatest import Server, diag, exit_status, ok  # noqa: E402

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
except ImportError:
    print("1..0 # SKIP confluent_kafka not installed (python3-confluent-kafka)")
    sys.exit(0)

N = 2000


def produce_all(broker, topic, extra):
    """Produce N messages to topic/0; the delivery reports' (value, offset)
    in the order they came, and the errors."""
    conf = {"bootstrap.servers": broker, "broker.address.family": "v4", "linger.ms": 0,
            "acks": "all"}
    conf.update(extra)
    p = Producer(conf)
    reports, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            reports.append((msg.value(), msg.offset()))

    for i in range(N):
        while True:
            try:
                p.produce(topic, value=b"m-%d" % i, partition=0, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(60)
    return reports, errors, left


def consume_all(broker, topic):
    c = Consumer({"bootstrap.servers": broker, "broker.address.family": "v4",
                  "group.id": "pipe-" + topic, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 60
    while len(got) < N and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.append((m.value(), m.offset()))
    c.close()
    return got


def check(broker, topic, extra, what):
    reports, errors, left = produce_all(broker, topic, extra)
    if errors:
        diag("errors: %s" % errors[:5])
    ok(not errors and left == 0 and len(reports) == N,
       "%s: %d of %d delivered, %d errors" % (what, len(reports), N, len(errors)))
    want = [(b"m-%d" % i, i) for i in range(N)]
    ok(reports == want, "%s: delivery reports in produce order, offsets 0..%d dense"
       % (what, N - 1))
    got = consume_all(broker, topic)
    ok(got == want, "%s: consumed %d records in produce order, no duplicates" % (what, len(got)))


def main():
    if len(sys.argv) < 2:
        print("1..0 # SKIP no kafka_server binary given")
        return 0
    print("1..7", flush=True)
    tmp = tempfile.mkdtemp(prefix="chronik-kafka-pipe.")
    srv = Server(sys.argv[1], os.path.join(tmp, "data"), ["--partitions", "1", "--fsync", "every"])
    try:
        broker = srv.start()
        check(broker, "idem", {"enable.idempotence": True,
                               "max.in.flight.requests.per.connection": 5}, "idempotent")
        check(broker, "plain", {}, "plain")
        ok(srv.stop() == 0, "server stops cleanly")
        return exit_status()
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
