#!/usr/bin/python3
"""confluent-kafka-python against the listener: keyed produce, two consumers
of one group splitting the partitions, commits, and committed offsets that
survive a restart of the server.

Usage: test_python.py KAFKA_SERVER_BINARY
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
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError:
    print("1..0 # SKIP confluent_kafka not installed (python3-confluent-kafka)")
    sys.exit(0)


def consumer(broker, name):
    return Consumer({
        "bootstrap.servers": broker,
        "broker.address.family": "v4",
        "group.id": "pyg",
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
    })


def main():
    if len(sys.argv) < 2:
        print("1..0 # SKIP no kafka_server binary given")
        return 0
    print("1..12", flush=True)
    tmp = tempfile.mkdtemp(prefix="chronik-kafka-py.")
    srv = Server(sys.argv[1], os.path.join(tmp, "data"), ["--partitions", "4"])
    try:
        return run(srv)
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(srv):
    broker = srv.start()
    admin = AdminClient({"bootstrap.servers": broker, "broker.address.family": "v4"})
    fs = admin.create_topics([NewTopic("py", num_partitions=4, replication_factor=1)])
    try:
        fs["py"].result(10)
        created = True
    except Exception as e:  # noqa: BLE001 - report any failure
        diag(e)
        created = False
    ok(created, "AdminClient creates topic py with 4 partitions")

    # Two consumers of one group, stable before anything is produced.
    c1, c2 = consumer(broker, "c1"), consumer(broker, "c2")
    c1.subscribe(["py"])
    c2.subscribe(["py"])
    got = {}  # (partition, offset) -> (consumer, key, value)
    deadline = time.time() + 60
    stable = False
    while time.time() < deadline:
        for c in (c1, c2):
            c.poll(0.1)
        a1 = {tp.partition for tp in c1.assignment()}
        a2 = {tp.partition for tp in c2.assignment()}
        if a1 and a2 and not (a1 & a2) and (a1 | a2) == {0, 1, 2, 3}:
            stable = True
            break
    ok(stable, "two consumers of group pyg split the 4 partitions (%s / %s)"
       % (sorted(a1), sorted(a2)))

    # Keyed produce.
    p = Producer({"bootstrap.servers": broker, "broker.address.family": "v4",
                  "acks": "all", "linger.ms": 5})
    delivered = {}
    errors = []

    def on_delivery(err, msg):
        if err:
            errors.append(err)
        else:
            delivered[(msg.partition(), msg.offset())] = (msg.key(), msg.value())

    n = 2000
    for i in range(n):
        p.produce("py", key=b"key-%d" % (i % 37), value=b"value-%d" % i, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(30)
    ok(left == 0 and not errors and len(delivered) == n,
       "%d keyed records delivered (%d errors)" % (len(delivered), len(errors)))
    part_of_key = {}
    same = True
    for (part, _), (k, _) in delivered.items():
        same = same and part_of_key.setdefault(k, part) == part
    ok(same, "each key always lands in the same partition")

    owner = {}
    for c, name in ((c1, "c1"), (c2, "c2")):
        for tp in c.assignment():
            owner[tp.partition] = name
    deadline = time.time() + 60
    dups = 0
    while len(got) < n and time.time() < deadline:
        for c, name in ((c1, "c1"), (c2, "c2")):
            m = c.poll(0.1)
            if m is None or m.error():
                continue
            k = (m.partition(), m.offset())
            if k in got:
                dups += 1
            got[k] = (name, m.key(), m.value())
    ok(len(got) == n and dups == 0, "the group consumed %d records, %d duplicates" % (len(got), dups))
    ok(all(got.get(k, (None,))[1:] == v for k, v in delivered.items()),
       "every record has the key, value, partition and offset it was delivered with")
    ok(all(owner.get(part) == name for (part, _), (name, _, _) in got.items()),
       "each consumer read only its own partitions")

    committed_ok = True
    for c in (c1, c2):
        try:
            c.commit(asynchronous=False)
        except Exception as e:  # noqa: BLE001
            diag(e)
            committed_ok = False
    ok(committed_ok, "both consumers commit synchronously")
    c1.close()
    c2.close()

    expect = {}
    for (part, off) in delivered:
        expect[part] = max(expect.get(part, 0), off + 1)

    ok(srv.stop() == 0, "server stops cleanly")
    broker = srv.start()
    c3 = consumer(broker, "c3")
    tps = c3.committed([TopicPartition("py", i) for i in range(4)], timeout=10)
    have = {tp.partition: tp.offset for tp in tps}
    ok(have == expect, "committed offsets survive the restart (%s)" % have)

    p = Producer({"bootstrap.servers": broker, "broker.address.family": "v4", "acks": "all"})
    for i in range(10):
        p.produce("py", key=b"after-%d" % i, value=b"after-%d" % i)
    p.flush(30)
    c3.subscribe(["py"])
    after = []
    deadline = time.time() + 60
    while len(after) < 10 and time.time() < deadline:
        m = c3.poll(0.2)
        if m is not None and not m.error():
            after.append(m.value())
    # Anything more than the 10 new records would show up now.
    end = time.time() + 1
    while time.time() < end:
        m = c3.poll(0.2)
        if m is not None and not m.error():
            after.append(m.value())
    ok(sorted(after) == sorted(b"after-%d" % i for i in range(10)),
       "a new member of the group resumes at the committed offsets (%d records)" % len(after))
    c3.close()
    ok(srv.stop() == 0, "server stops cleanly again")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
