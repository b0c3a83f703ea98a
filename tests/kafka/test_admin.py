#!/usr/bin/python3
"""confluent-kafka-python's AdminClient against a mounted chronikd: topic
configs described and altered (legacy AlterConfigs; the incremental one
when the installed client has it), partitions added, groups listed,
records deleted (a raw DeleteRecords: confluent-kafka-python 1.7 has no
delete_records); every result checked against the mount
(TOPIC/config.json, partition directories, .groups/<group>.json) and
`chronik info`.

Usage: test_admin.py CHRONIKD CHRONIK
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

from kafkatest import diag, exit_status, ok

try:
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource,
                                       NewPartitions, NewTopic)
except ImportError:
    print("1..0 # SKIP confluent-kafka-python not installed")
    sys.exit(0)

if len(sys.argv) < 3 or not os.access(sys.argv[1], os.X_OK):
    print("1..0 # SKIP no chronikd binary given")
    sys.exit(0)
if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
    print("1..0 # SKIP no /dev/fuse or fusermount3 on this machine")
    sys.exit(0)

CHRONIKD, CHRONIK = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="chronik-admin.")
DATA, MNT = os.path.join(tmp, "data"), os.path.join(tmp, "mnt")
os.mkdir(MNT)
s = socket.socket()
s.bind(("127.0.0.1", 0))
PORT = s.getsockname()[1]
s.close()
BROKER = "127.0.0.1:%d" % PORT
daemon = None


def until(cond, seconds=10):
    """Poll cond() until true or seconds pass; its last value."""
    end = time.monotonic() + seconds
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.05)


def serving():
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
        return True
    except OSError:
        return False


def config_json(topic):
    with open(os.path.join(MNT, topic, "config.json")) as f:
        return json.load(f)


def chronik_info():
    out = subprocess.run([CHRONIK, "--data", DATA, "info"], capture_output=True, timeout=30)
    return json.loads(out.stdout.decode()) if out.returncode == 0 else None


def raw_call(key, version, body):
    """One request of a non-flexible version; the response body."""
    c = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    try:
        msg = struct.pack(">hhih", key, version, 1, 2) + b"ta" + body
        c.sendall(struct.pack(">i", len(msg)) + msg)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            k = c.recv(65536)
            if not k:
                raise ConnectionError("closed by chronikd")
            buf += k
        return buf[8:]  # size, correlation id
    finally:
        c.close()


def describe(admin, rtype, name):
    """{name: ConfigEntry} of one resource, or the exception."""
    res = ConfigResource(rtype, name)
    try:
        return admin.describe_configs([res], request_timeout=15)[res].result(timeout=15)
    except KafkaException as e:
        return e


def alter(admin, rtype, name, cfg):
    """None on success, else the KafkaError."""
    res = ConfigResource(rtype, name, set_config=cfg)
    try:
        admin.alter_configs([res], request_timeout=15)[res].result(timeout=15)
        return None
    except KafkaException as e:
        return e.args[0]


def main():
    global daemon
    print("1..38", flush=True)
    log = open(os.path.join(tmp, "chronikd.log"), "w")
    daemon = subprocess.Popen([CHRONIKD, "-f", "--kafka", BROKER, "--set",
                               "default.partitions=1", DATA, MNT],
                              stdout=log, stderr=log)
    if not ok(until(lambda: os.path.ismount(MNT)) and until(serving),
              "chronikd mounts and serves Kafka on " + BROKER):
        return
    admin = AdminClient({"bootstrap.servers": BROKER})
    fs = admin.create_topics([NewTopic("cfg", 2, 1, config={"retention.ms": "1000"})],
                             request_timeout=15)
    fs["cfg"].result(timeout=15)

    d = describe(admin, ConfigResource.Type.TOPIC, "cfg")
    ok(not isinstance(d, Exception) and d["retention.ms"].value == "1000" and
       d["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and
       d["cleanup.policy"].value == "delete" and d["cleanup.policy"].is_default and
       d["segment.bytes"].value == "1073741824" and len(d) == 7,
       "describe_configs: retention.ms 1000 set on the topic, Kafka's defaults for the rest")
    syn = [] if isinstance(d, Exception) else [x.name for x in d["retention.ms"].synonyms.values()]
    ok("log.retention.ms" in syn, "retention.ms lists its broker synonym: %s" % syn)

    err = alter(admin, ConfigResource.Type.TOPIC, "cfg",
                {"cleanup.policy": "compact", "retention.bytes": "4096"})
    ok(err is None, "alter_configs of cfg: %s" % err)
    cj = config_json("cfg")
    ok(cj == {"cleanup.policy": "compact", "retention.bytes": "4096"},
       "the mount's config.json holds what was set (legacy alter replaces): %s" % cj)
    d = describe(admin, ConfigResource.Type.TOPIC, "cfg")
    ok(not isinstance(d, Exception) and d["cleanup.policy"].value == "compact" and
       d["retention.ms"].value == "-1" and d["retention.ms"].is_default,
       "describe_configs shows the change, retention.ms back to its default")

    err = alter(admin, ConfigResource.Type.TOPIC, "cfg", {"no.such.key": "1"})
    ok(err is not None and err.code() == 40 and config_json("cfg") == cj,
       "an unknown key gets INVALID_CONFIG (40) and changes nothing: %s" % err)
    err = alter(admin, ConfigResource.Type.TOPIC, "cfg", {"retention.ms": "soon"})
    ok(err is not None and err.code() == 40 and config_json("cfg") == cj,
       "a bad value gets INVALID_CONFIG (40): %s" % err)
    # The engine's one check (engine_topic_config_check) decides, as for
    # the CLI and config.json: exact cleanup.policy lists, "none" is
    # "uncompressed".
    err = alter(admin, ConfigResource.Type.TOPIC, "cfg", {"cleanup.policy": "delete,delete"})
    ok(err is not None and err.code() == 40 and config_json("cfg") == cj,
       "cleanup.policy delete,delete gets INVALID_CONFIG (40) and changes nothing: %s" % err)
    err = alter(admin, ConfigResource.Type.TOPIC, "cfg",
                {"cleanup.policy": "compact", "retention.bytes": "4096",
                 "compression.type": "none"})
    cj2 = config_json("cfg")
    ok(err is None and cj2.get("compression.type") == "none",
       "compression.type none is accepted (the same as uncompressed): %s %s" % (err, cj2))
    fs = admin.create_topics([NewTopic("badcfg", 1, 1,
                                       config={"cleanup.policy": "compact,,delete"})],
                             request_timeout=15)
    try:
        fs["badcfg"].result(timeout=15)
        err = None
    except KafkaException as e:
        err = e.args[0]
    ok(err is not None and err.code() == 40 and not os.path.exists(os.path.join(MNT, "badcfg")),
       "create_topics with cleanup.policy 'compact,,delete' gets 40, no topic: %s" % err)
    # config.json on the mount: a value out of range fails the close with
    # EINVAL and the config stays.
    try:
        with open(os.path.join(MNT, "cfg", "config.json"), "w") as f:
            f.write('{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "2"}\n')
        werr = 0
    except OSError as e:
        werr = e.errno
    ok(werr == 22 and config_json("cfg") == cj2,
       "config.json with min.cleanable.dirty.ratio 2: EINVAL, the config unchanged (%d, %s)"
       % (werr, config_json("cfg")))
    try:
        with open(os.path.join(MNT, "cfg", "config.json"), "w") as f:
            f.write('{"cleanup.policy": "compact", "retention.bytes": "4096"}\n')
        werr = 0
    except OSError as e:
        werr = e.errno
    cj = config_json("cfg")
    ok(werr == 0 and cj == {"cleanup.policy": "compact", "retention.bytes": "4096"},
       "a valid config.json is applied (%d, %s)" % (werr, cj))
    err = alter(admin, ConfigResource.Type.BROKER, "1", {"num.partitions": "3"})
    ok(err is not None and err.code() == 42, "the broker's configs are read-only: %s" % err)
    d = describe(admin, ConfigResource.Type.BROKER, "1")
    ok(not isinstance(d, Exception) and d["num.partitions"].value == "1" and
       d["num.partitions"].is_read_only and d["broker.id"].value == "1",
       "describe_configs of the broker: num.partitions 1, read-only")
    d = describe(admin, ConfigResource.Type.TOPIC, "nosuch")
    ok(isinstance(d, Exception) and d.args[0].code() == 3,
       "describe_configs of an unknown topic: %s" % d)

    if hasattr(admin, "incremental_alter_configs"):
        diag("incremental_alter_configs present but not exercised here")
    fs = admin.create_partitions([NewPartitions("cfg", 4)], request_timeout=15)
    try:
        fs["cfg"].result(timeout=15)
        err = None
    except KafkaException as e:
        err = e.args[0]
    names = sorted(os.listdir(os.path.join(MNT, "cfg")))
    ok(err is None and names == ["0", "1", "2", "3", "config.json", "search"],
       "create_partitions to 4: the mount shows %s at once (%s)" % (names, err))
    info = chronik_info()
    parts = None
    if info:
        parts = [t["partitions"] for t in info["topics"] if t["name"] == "cfg"]
    ok(parts == [4], "chronik info shows 4 partitions: %s" % parts)
    fs = admin.create_partitions([NewPartitions("cfg", 3)], request_timeout=15)
    try:
        fs["cfg"].result(timeout=15)
        err = None
    except KafkaException as e:
        err = e.args[0]
    ok(err is not None and err.code() == 37, "create_partitions to 3 gets 37: %s" % err)

    p = Producer({"bootstrap.servers": BROKER})
    p.produce("cfg", b"on-three", partition=3)
    left = p.flush(15)
    with open(os.path.join(MNT, "cfg", "3", "data"), "rb") as f:
        data = f.read()
    ok(left == 0 and data == b"on-three\n", "a record produced to partition 3 is in its data file")

    c = Consumer({"bootstrap.servers": BROKER, "group.id": "pg",
                  "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("cfg", 3, 1)], asynchronous=False)
    c.close()
    groups = [g.id for g in admin.list_groups(timeout=15)]
    ok("pg" in groups, "list_groups lists pg: %s" % groups)
    info = chronik_info()
    ok(info is not None and info["groups"].get("pg", {}).get("cfg/3", {}).get("offset") == 1,
       "chronik info shows pg's offset of cfg/3")
    one = admin.list_groups("pg", timeout=15)
    ok(len(one) == 1 and one[0].state == "Empty" and one[0].protocol_type == "consumer",
       "list_groups('pg') describes it: %s" %
       [(g.id, g.state, g.protocol_type) for g in one])

    # Lag: two more records on cfg/3 past pg's committed offset 1.
    p.produce("cfg", b"four", partition=3)
    p.produce("cfg", b"five", partition=3)
    left = p.flush(15)
    with open(os.path.join(MNT, "cfg", "3", "info.json")) as f:
        hw = json.load(f)["next_offset"]
    out = subprocess.run([CHRONIK, "--data", DATA, "groups", "pg", "--json"],
                         capture_output=True, timeout=30)
    lag = json.loads(out.stdout.decode()) if out.returncode == 0 else None
    want = {"group": "pg", "lag": hw - 1, "partitions": [
        {"topic": "cfg", "partition": 3, "committed_offset": 1, "high_watermark": hw,
         "lag": hw - 1}]}
    ok(left == 0 and hw == 3 and lag == want,
       "chronik groups pg: lag %s, the mount's info.json says next offset %d" % (lag, hw))
    # The mount's .groups view: the same JSON, and what the client sees.
    gdir = os.path.join(MNT, ".groups")
    ok(".groups" in os.listdir(MNT) and os.path.isdir(gdir), "the mount root lists .groups")
    ok("pg.json" in os.listdir(gdir), ".groups lists pg.json: %s" % os.listdir(gdir))
    with open(os.path.join(gdir, "pg.json")) as f:
        text = f.read()
    ok(json.loads(text) == lag == want and text.endswith("\n") and
       os.stat(os.path.join(gdir, "pg.json")).st_size == len(text.encode()),
       ".groups/pg.json is chronik groups pg --json: %r" % text)
    c = Consumer({"bootstrap.servers": BROKER, "group.id": "pg",
                  "enable.auto.commit": False})
    committed = c.committed([TopicPartition("cfg", 3)], timeout=15)
    c.close()
    file_parts = json.loads(text)["partitions"]
    ok([(t.topic, t.partition, t.offset) for t in committed] ==
       [(x["topic"], x["partition"], x["committed_offset"]) for x in file_parts],
       "the client's committed offsets match .groups/pg.json: %s" %
       [(t.topic, t.partition, t.offset) for t in committed])
    ok(not os.path.exists(os.path.join(gdir, "nosuch.json")) and
       not os.path.exists(os.path.join(gdir, "pg")), "no file for a group without offsets")
    try:
        os.mkdir(gdir)
        err = 0
    except OSError as e:
        err = e.errno
    ok(err == 17, "mkdir .groups: EEXIST (%d)" % err)
    try:
        with open(os.path.join(gdir, "pg.json"), "w") as f:
            f.write("{}")
        err = 0
    except OSError as e:
        err = e.errno
    ok(err in (13, 30), ".groups/pg.json is read-only (%d)" % err)
    out = subprocess.run([CHRONIK, "--data", DATA, "groups"], capture_output=True, timeout=30)
    ok(out.returncode == 0 and "pg cfg 3 1 3 2\n" in out.stdout.decode(),
       "chronik groups (text): %r" % out.stdout.decode())
    out = subprocess.run([CHRONIK, "--data", DATA, "groups", "nosuch"], capture_output=True,
                         timeout=30)
    ok(out.returncode == 1, "chronik groups nosuch exits 1")
    # DeleteRecords v0 (no client here has it: a raw request) below offset
    # 1 of cfg/3: the mount, info.json and chronik info follow.
    data_path = os.path.join(MNT, "cfg", "3", "data")
    size_before = os.stat(data_path).st_size
    body = (struct.pack(">i", 1) + struct.pack(">h", 3) + b"cfg" +
            struct.pack(">iiqi", 1, 3, 1, 5000))
    r = raw_call(21, 0, body)
    # ThrottleTimeMs, Topics [Name, Partitions [PartitionIndex, LowWatermark, ErrorCode]]
    at = 4 + 4 + 2 + 3 + 4
    index, low, err = struct.unpack(">iqh", r[at:at + 14])
    ok((index, low, err) == (3, 1, 0), "DeleteRecords cfg/3 below 1: low watermark %d, error %d"
       % (low, err))
    with open(data_path, "rb") as f:
        data = f.read()
    ok(data == b"four\nfive\n" and os.stat(data_path).st_size == size_before,
       "the mount's data now starts at four, its size unchanged: %r" % data)
    with open(os.path.join(MNT, "cfg", "3", "info.json")) as f:
        ij = json.load(f)
    ls = ij["log_start_offset"]
    out = subprocess.run([CHRONIK, "--data", DATA, "info", "cfg/3"], capture_output=True,
                         timeout=30)
    ci = json.loads(out.stdout.decode()) if out.returncode == 0 else {}
    cls = ci.get("log_start_offset")
    ok(ls == 1 and cls == 1, "info.json and chronik info say log start 1 (%s, %s)" % (ls, cls))
    ok(ij.get("records") == 2 and ci.get("records") == 2,
       "and records 2, what is left, not the 3 offsets (%s, %s)" %
       (ij.get("records"), ci.get("records")))
    ok(daemon.poll() is None, "chronikd still running")


try:
    main()
finally:
    if daemon:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    if os.path.ismount(MNT):
        subprocess.run(["fusermount3", "-uz", MNT])
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(exit_status())
