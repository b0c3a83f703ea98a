#!/usr/bin/env python3
"""Every request and response version the listener advertises, held against
Kafka's message JSON definitions (kschema.py, tests/kafka/messages/).

For each API key in the ApiVersions answer and each version in its range,
the request is encoded by kschema from the definition, sent to a
kafka_server, and the response decoded by kschema: it must decode exactly
(no byte short, none left over), with the response header the definition
implies (v1, with tagged fields, for flexible versions; v0 for ApiVersions
always), and carry the values the request implies (the records produced
come back from Fetch, the offsets committed from OffsetFetch, ...).

Usage: test_versions.py KAFKA_SERVER
"""
import os
import socket
import struct
import sys
import tempfile
import time

from kafkatest import Server, diag, exit_status, ok
import kschema

if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
    print("1..0 # SKIP no kafka_server binary given")
    sys.exit(0)

# ---- a RecordBatch v2 (DefaultRecordBatch.java), CRC32C in Python -------

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _CRC_TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(out, n):
    kschema.uvarint(out, (n << 1) ^ (n >> 63))


def record_batch(values, ts=1700000000000):
    recs = bytearray()
    for i, v in enumerate(values):
        body = bytearray()
        body.append(0)  # attributes
        varint(body, 0)  # timestamp delta
        varint(body, i)  # offset delta
        varint(body, -1)  # null key
        varint(body, len(v))
        body += v
        varint(body, 0)  # headers
        varint(recs, len(body))
        recs += body
    n = len(values)
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, ts, ts, -1, -1, -1, n) + bytes(recs)
    head = struct.pack(">qiib", 0, 4 + 1 + 4 + len(after_crc), 0, 2)
    return head + struct.pack(">I", crc32c(after_crc)) + after_crc


# ---- the connection ---------------------------------------------------------


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.corr = 0

    def recv_exact(self, n):
        b = bytearray()
        while len(b) < n:
            k = self.s.recv(n - len(b))
            if not k:
                raise ConnectionError("closed by the server")
            b += k
        return bytes(b)

    def call(self, key, v, body):
        """Send request (key, v) with body (a dict); the decoded response."""
        req, resp = APIS[key]
        self.corr += 1
        hdr = struct.pack(">hhi", key, v, self.corr) + struct.pack(">h", 4) + b"vtst"
        flex = req.flexible(v)
        if flex:
            hdr += b"\x00"  # request header v2: no tagged fields
        msg = hdr + req.encode(body, v)
        self.s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", self.recv_exact(4))[0]
        buf = self.recv_exact(size)
        corr = struct.unpack(">i", buf[:4])[0]
        if corr != self.corr:
            raise ValueError("correlation id %d, sent %d" % (corr, self.corr))
        pos = 4
        if resp.flexible(v) and key != 18:  # response header v1
            r = kschema.Reader(buf, pos)
            for _ in range(r.uvarint()):
                r.uvarint()
                r.take(r.uvarint())
            pos = r.pos
        return resp.decode(buf, v, pos)


APIS = kschema.by_key()
TOPIC = "vt"


def try_call(c, key, v, body, what):
    """c.call, or None with a failed test line when it raises."""
    try:
        return c.call(key, v, body)
    except (ValueError, ConnectionError, OSError, KeyError) as e:
        ok(False, "%s: %s" % (what, e))
        return None


def join(c, group, jv):
    """Join group alone with JoinGroup version jv: (member_id, generation)."""
    body = {"GroupId": group, "SessionTimeoutMs": 30000, "RebalanceTimeoutMs": 10000,
            "MemberId": "", "GroupInstanceId": None, "ProtocolType": "consumer",
            "Protocols": [{"Name": "range", "Metadata": b"m"}], "Reason": None}
    r = c.call(11, jv, body)
    if r["ErrorCode"] == 79:  # MEMBER_ID_REQUIRED (v4+)
        body["MemberId"] = r["MemberId"]
        r = c.call(11, jv, body)
    if r["ErrorCode"] != 0:
        raise ValueError("JoinGroup v%d: error %d" % (jv, r["ErrorCode"]))
    return r["MemberId"], r["GenerationId"], r


def main():
    tmp = tempfile.mkdtemp(prefix="chronik-versions.")
    srv = Server(sys.argv[1], os.path.join(tmp, "data"))
    srv.start()
    try:
        run(srv.port)
    finally:
        srv.stop()
    print("1..%d" % __import__("kafkatest").n_test)
    return exit_status()


def run(port):
    c = Conn(port)
    av = c.call(18, 3, {"ClientSoftwareName": "vt", "ClientSoftwareVersion": "1"})
    ok(av["ErrorCode"] == 0, "ApiVersions v3 answers")
    table = {a["ApiKey"]: (a["MinVersion"], a["MaxVersion"]) for a in av["ApiKeys"]}
    for key, (lo, hi) in sorted(table.items()):
        have = key in APIS
        ok(have, "api %d has a definition here" % key)
        if not have:
            continue
        req, resp = APIS[key]
        vlo, vhi = req.valid
        ok(vlo <= lo and hi <= vhi and resp.valid[1] >= hi,
           "%s %d-%d within Kafka's %d-%d" % (req.name[:-7], lo, hi, vlo, vhi))

    # README's Kafka table lists exactly these keys and versions.
    readme = os.path.join(kschema.HERE, "..", "..", "README.md")
    rows = {}
    for line in open(readme):
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].isdigit():
            lo_s, _, hi_s = cells[2].partition("-")
            rows[int(cells[1])] = (int(lo_s), int(hi_s or lo_s), cells[3])
    want = {}
    for key, (lo, hi) in table.items():
        req = APIS[key][0] if key in APIS else None
        flex = "-"
        if req:
            for v in range(lo, hi + 1):
                if req.flexible(v):
                    flex = str(v)
                    break
        want[key] = (lo, hi, flex)
    ok(rows == want, "README's Kafka table matches ApiVersions (%s)" %
       ", ".join("%d: %s vs %s" % (k, rows.get(k), want.get(k))
                 for k in sorted(set(rows) | set(want)) if rows.get(k) != want.get(k)))

    def versions(key):
        lo, hi = table[key]
        return range(lo, hi + 1)

    # ApiVersions, every version.
    for v in versions(18):
        r = try_call(c, 18, v, {"ClientSoftwareName": "vt", "ClientSoftwareVersion": "1"},
                     "ApiVersions v%d" % v)
        if r:
            ok(r["ErrorCode"] == 0 and len(r["ApiKeys"]) == len(table),
               "ApiVersions v%d lists %d apis" % (v, len(table)))

    # CreateTopics, every version: topic ct<v>; the topic for the rest.
    def create_body(name, parts, configs=()):
        return {"Topics": [{"Name": name, "NumPartitions": parts, "ReplicationFactor": -1,
                            "Assignments": [], "Configs": [{"Name": k, "Value": val}
                                                            for k, val in configs]}],
                "timeoutMs": 5000, "validateOnly": False}
    lo, hi = table[19]
    r = c.call(19, hi, create_body(TOPIC, 2))
    ok(r["Topics"][0]["ErrorCode"] == 0, "CreateTopics v%d creates %s" % (hi, TOPIC))
    for v in versions(19):
        r = try_call(c, 19, v, create_body("ct%d" % v, 1, [("retention.ms", "60000")]),
                     "CreateTopics v%d" % v)
        if r:
            t = r["Topics"][0]
            ok(t["Name"] == "ct%d" % v and t["ErrorCode"] == 0,
               "CreateTopics v%d: ct%d created (error %d)" % (v, v, t["ErrorCode"]))

    for v in versions(19):
        r = try_call(c, 19, v, create_body("bad%d" % v, 1, [("no.such.config", "1")]),
                     "CreateTopics v%d unknown config" % v)
        ok(r is not None and r["Topics"][0]["ErrorCode"] == 40,
           "CreateTopics v%d: an unknown config key gets 40 INVALID_CONFIG" % v)
        r = try_call(c, 19, v, create_body("bad%d" % v, 1, [("retention.ms", "soon")]),
                     "CreateTopics v%d bad value" % v)
        ok(r is not None and r["Topics"][0]["ErrorCode"] == 40,
           "CreateTopics v%d: a bad value gets 40 INVALID_CONFIG" % v)
    r = c.call(3, table[3][1], {"Topics": [{"Name": "bad0"}], "AllowAutoTopicCreation": False})
    ok(r["Topics"][0]["ErrorCode"] == 3, "a topic refused for its config was not created")

    # Metadata, every version.
    topic_id = None
    for v in versions(3):
        body = {"Topics": [{"Name": TOPIC, "TopicId": bytes(16)}],
                "AllowAutoTopicCreation": False}
        r = try_call(c, 3, v, body, "Metadata v%d" % v)
        if not r:
            continue
        t = r["Topics"][0]
        good = (t["ErrorCode"] == 0 and t["Name"] == TOPIC and len(t["Partitions"]) == 2
                and len(r["Brokers"]) == 1 and r["Brokers"][0]["Port"] == port)
        if v >= 10:
            good = good and t["TopicId"] != bytes(16)
            if topic_id is None:
                topic_id = t["TopicId"]
            good = good and t["TopicId"] == topic_id
        ok(good, "Metadata v%d: %s with 2 partitions on port %d" % (v, TOPIC, port))
        if v >= 10:
            r = try_call(c, 3, v, {"Topics": [{"Name": None, "TopicId": topic_id}],
                                   "AllowAutoTopicCreation": False},
                         "Metadata v%d by id" % v)
            ok(r is not None and r["Topics"][0]["Name"] == TOPIC
               and r["Topics"][0]["ErrorCode"] == 0, "Metadata v%d finds the topic by id" % v)
            r = try_call(c, 3, v, {"Topics": [{"Name": None, "TopicId": b"\x01" * 16}],
                                   "AllowAutoTopicCreation": False},
                         "Metadata v%d unknown id" % v)
            ok(r is not None and r["Topics"][0]["ErrorCode"] == 100,
               "Metadata v%d: an unknown id gets 100 UNKNOWN_TOPIC_ID" % v)

    # Produce, every version: one batch of one record "p<v>" to partition 0.
    produced = []
    for v in versions(0):
        body = {"TransactionalId": None, "Acks": -1, "TimeoutMs": 5000,
                "TopicData": [{"Name": TOPIC, "PartitionData": [
                    {"Index": 0, "Records": record_batch([b"p%d" % v])}]}]}
        r = try_call(c, 0, v, body, "Produce v%d" % v)
        if not r:
            continue
        p = r["Responses"][0]["PartitionResponses"][0]
        if v < 3:
            ok(p["ErrorCode"] == 43, "Produce v%d: 43 UNSUPPORTED_FOR_MESSAGE_FORMAT" % v)
        else:
            ok(p["ErrorCode"] == 0 and p["BaseOffset"] == len(produced),
               "Produce v%d: stored at offset %d (error %d, base %d)"
               % (v, len(produced), p["ErrorCode"], p["BaseOffset"]))
            produced.append(b"p%d" % v)

    # Fetch, every version: every record produced comes back.
    for v in versions(1):
        body = {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 0, "MaxBytes": 1 << 20,
                "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
                "Topics": [{"Topic": TOPIC, "TopicId": topic_id, "Partitions": [
                    {"Partition": 0, "CurrentLeaderEpoch": -1, "FetchOffset": 0,
                     "LastFetchedEpoch": -1, "LogStartOffset": -1,
                     "PartitionMaxBytes": 1 << 20}]}],
                "ForgottenTopicsData": [], "RackId": ""}
        r = try_call(c, 1, v, body, "Fetch v%d" % v)
        if not r:
            continue
        p = r["Responses"][0]["Partitions"][0]
        recs = p["Records"] or b""
        found = [x for x in produced if x in recs]
        ok(p["ErrorCode"] == 0 and p["HighWatermark"] == len(produced) and found == produced,
           "Fetch v%d: high watermark %d and the %d records" % (v, len(produced), len(produced)))
        if v >= 13:
            ok(r["Responses"][0]["TopicId"] == topic_id, "Fetch v%d answers by topic id" % v)
            body["Topics"][0]["TopicId"] = b"\x02" * 16
            r = try_call(c, 1, v, body, "Fetch v%d unknown id" % v)
            ok(r is not None and r["Responses"][0]["Partitions"][0]["ErrorCode"] == 100,
               "Fetch v%d: an unknown topic id gets 100 UNKNOWN_TOPIC_ID" % v)

    # ListOffsets, every version: latest, earliest, and (v7) max timestamp.
    for v in versions(2):
        def lo_call(ts):
            body = {"ReplicaId": -1, "IsolationLevel": 0, "Topics": [{"Name": TOPIC, "Partitions": [
                {"PartitionIndex": 0, "CurrentLeaderEpoch": -1, "Timestamp": ts,
                 "MaxNumOffsets": 1}]}]}
            r = try_call(c, 2, v, body, "ListOffsets v%d ts %d" % (v, ts))
            return r and r["Topics"][0]["Partitions"][0]
        p = lo_call(-1)
        ok(p is not None and p["ErrorCode"] == 0 and p["Offset"] == len(produced),
           "ListOffsets v%d: latest = %d" % (v, len(produced)))
        p = lo_call(-2)
        ok(p is not None and p["ErrorCode"] == 0 and p["Offset"] == 0,
           "ListOffsets v%d: earliest = 0" % v)
        if v >= 7:
            p = lo_call(-3)
            ok(p is not None and p["ErrorCode"] == 0 and p["Offset"] == 0
               and p["Timestamp"] == 1700000000000,
               "ListOffsets v%d: max timestamp at offset 0" % v)

    # FindCoordinator, every version.
    for v in versions(10):
        r = try_call(c, 10, v, {"Key": "g", "KeyType": 0, "CoordinatorKeys": ["g"]},
                     "FindCoordinator v%d" % v)
        if not r:
            continue
        co = r["Coordinators"][0] if v >= 4 else r
        ok(co["ErrorCode"] == 0 and co["Port"] == port, "FindCoordinator v%d: this broker" % v)

    # The group APIs: each version of each, on a group joined for it.
    jhi = table[11][1]
    for v in versions(11):
        try:
            m, gen, r = join(c, "gj%d" % v, v)
            ok(r["Leader"] == m and len(r["Members"]) == 1 and r["ProtocolName"] == "range",
               "JoinGroup v%d: leader of a one-member group" % v)
        except (ValueError, ConnectionError, OSError) as e:
            ok(False, "JoinGroup v%d: %s" % (v, e))
            c = Conn(port)
    for v in versions(14):
        try:
            m, gen, _ = join(c, "gs%d" % v, jhi)
        except (ValueError, ConnectionError, OSError) as e:
            ok(False, "join for SyncGroup v%d: %s" % (v, e))
            c = Conn(port)
            continue
        r = try_call(c, 14, v, {"GroupId": "gs%d" % v, "GenerationId": gen, "MemberId": m,
                                "GroupInstanceId": None, "ProtocolType": "consumer",
                                "ProtocolName": "range",
                                "Assignments": [{"MemberId": m, "Assignment": b"asg"}]},
                     "SyncGroup v%d" % v)
        ok(r is not None and r["ErrorCode"] == 0 and r["Assignment"] == b"asg",
           "SyncGroup v%d: the leader's assignment" % v)
        if r is None:
            c = Conn(port)
            continue
        hv = min(v, table[12][1])
        r = try_call(c, 12, hv, {"GroupId": "gs%d" % v, "GenerationId": gen, "MemberId": m,
                                 "GroupInstanceId": None}, "Heartbeat v%d" % hv)
        ok(r is not None and r["ErrorCode"] == 0, "Heartbeat v%d: stable member" % hv)
    for v in versions(12):
        try:
            m, gen, _ = join(c, "gh%d" % v, jhi)
            c.call(14, table[14][1], {"GroupId": "gh%d" % v, "GenerationId": gen, "MemberId": m,
                                      "ProtocolType": "consumer", "ProtocolName": "range",
                                      "GroupInstanceId": None,
                                      "Assignments": [{"MemberId": m, "Assignment": b""}]})
        except (ValueError, ConnectionError, OSError) as e:
            ok(False, "group for Heartbeat v%d: %s" % (v, e))
            c = Conn(port)
            continue
        r = try_call(c, 12, v, {"GroupId": "gh%d" % v, "GenerationId": gen, "MemberId": m,
                                "GroupInstanceId": None}, "Heartbeat v%d" % v)
        ok(r is not None and r["ErrorCode"] == 0, "Heartbeat v%d answers 0" % v)
        r = try_call(c, 12, v, {"GroupId": "gh%d" % v, "GenerationId": gen + 5, "MemberId": m,
                                "GroupInstanceId": None}, "Heartbeat v%d" % v)
        ok(r is not None and r["ErrorCode"] == 22, "Heartbeat v%d: old generation gets 22" % v)
    for v in versions(13):
        try:
            m, gen, _ = join(c, "gl%d" % v, jhi)
        except (ValueError, ConnectionError, OSError) as e:
            ok(False, "group for LeaveGroup v%d: %s" % (v, e))
            c = Conn(port)
            continue
        r = try_call(c, 13, v, {"GroupId": "gl%d" % v, "MemberId": m,
                                "Members": [{"MemberId": m, "GroupInstanceId": None,
                                             "Reason": None}]}, "LeaveGroup v%d" % v)
        good = r is not None and r["ErrorCode"] == 0
        if good and v >= 3:
            good = len(r["Members"]) == 1 and r["Members"][0]["ErrorCode"] == 0
        ok(good, "LeaveGroup v%d: the member left" % v)

    # OffsetCommit then OffsetFetch, every version (a group without members
    # commits with generation -1, as the admin tools do).
    for v in versions(8):
        g = "oc%d" % v
        r = try_call(c, 8, v, {"GroupId": g, "GenerationIdOrMemberEpoch": -1, "MemberId": "",
                               "GroupInstanceId": None, "RetentionTimeMs": -1,
                               "Topics": [{"Name": TOPIC, "Partitions": [
                                   {"PartitionIndex": 0, "CommittedOffset": 1 + v,
                                    "CommittedLeaderEpoch": -1, "CommitTimestamp": -1,
                                    "CommittedMetadata": "md"}]}]},
                     "OffsetCommit v%d" % v)
        ok(r is not None and r["Topics"][0]["Partitions"][0]["ErrorCode"] == 0,
           "OffsetCommit v%d commits" % v)
    fv_hi = table[9][1]
    for v in versions(9):
        g = "oc%d" % min(v, table[8][1])
        want = 1 + min(v, table[8][1])
        body = {"GroupId": g, "Topics": [{"Name": TOPIC, "PartitionIndexes": [0]}],
                "Groups": [{"GroupId": g, "MemberId": None, "MemberEpoch": -1,
                            "Topics": [{"Name": TOPIC, "PartitionIndexes": [0]}]}],
                "RequireStable": False}
        r = try_call(c, 9, v, body, "OffsetFetch v%d" % v)
        if not r:
            continue
        topics = r["Groups"][0]["Topics"] if v >= 8 else r["Topics"]
        p = topics[0]["Partitions"][0]
        ok(p["ErrorCode"] == 0 and p["CommittedOffset"] == want and p["Metadata"] == "md",
           "OffsetFetch v%d: offset %d back (got %d)" % (v, want, p["CommittedOffset"]))
        if v >= 2 and v < 8:
            body["Topics"] = None  # every committed partition
            r = try_call(c, 9, v, body, "OffsetFetch v%d all" % v)
            ok(r is not None and [(t["Name"], [(q["PartitionIndex"], q["CommittedOffset"])
                                               for q in t["Partitions"]]) for t in r["Topics"]]
               == [(TOPIC, [(0, want)])], "OffsetFetch v%d, null topics: %s 0 at %d"
               % (v, TOPIC, want))
    del fv_hi

    # The admin group APIs.
    for v in versions(16):
        r = try_call(c, 16, v, {"StatesFilter": [], "TypesFilter": []}, "ListGroups v%d" % v)
        ok(r is not None and r["ErrorCode"] == 0 and
           any(g["GroupId"] == "oc0" for g in r["Groups"]), "ListGroups v%d lists oc0" % v)
        if v >= 4:
            r = try_call(c, 16, v, {"StatesFilter": ["stable"]}, "ListGroups v%d Stable" % v)
            ok(r is not None and r["ErrorCode"] == 0 and
               not any(g["GroupId"] == "oc0" for g in r["Groups"]) and
               all(g["GroupState"] == "Stable" for g in r["Groups"]),
               "ListGroups v%d: the state filter leaves out the Empty oc0" % v)
    for v in versions(15):
        r = try_call(c, 15, v, {"Groups": ["oc0"], "IncludeAuthorizedOperations": False},
                     "DescribeGroups v%d" % v)
        ok(r is not None and r["Groups"][0]["ErrorCode"] == 0 and
           r["Groups"][0]["GroupState"] == "Empty", "DescribeGroups v%d: oc0 Empty" % v)
    for v in versions(47):
        r = try_call(c, 47, v, {"GroupId": "oc1", "Topics": [
            {"Name": TOPIC, "Partitions": [{"PartitionIndex": 0}]}]}, "OffsetDelete v%d" % v)
        ok(r is not None and r["ErrorCode"] == 0 and
           r["Topics"][0]["Partitions"][0]["ErrorCode"] == 0, "OffsetDelete v%d" % v)
    for v in versions(42):
        r = try_call(c, 42, v, {"GroupsNames": ["oc%d" % (2 + v)]}, "DeleteGroups v%d" % v)
        ok(r is not None and r["Results"][0]["ErrorCode"] == 0,
           "DeleteGroups v%d deletes oc%d" % (v, 2 + v))

    # Configs and partitions.
    for v in versions(32):
        r = try_call(c, 32, v, {"Resources": [{"ResourceType": 2, "ResourceName": TOPIC,
                                               "ConfigurationKeys": ["retention.ms"]}],
                                "IncludeSynonyms": False, "IncludeDocumentation": False},
                     "DescribeConfigs v%d" % v)
        ok(r is not None and r["Results"][0]["ErrorCode"] == 0 and
           r["Results"][0]["Configs"][0]["Name"] == "retention.ms",
           "DescribeConfigs v%d: retention.ms" % v)
        if r is not None and v >= 3:
            ok(r["Results"][0]["Configs"][0]["ConfigType"] == 5,
               "DescribeConfigs v%d: retention.ms is a LONG (5)" % v)
    for v in versions(33):
        r = try_call(c, 33, v, {"Resources": [{"ResourceType": 2, "ResourceName": "ct0",
                                               "Configs": [{"Name": "retention.ms",
                                                            "Value": "120000"}]}],
                                "ValidateOnly": False}, "AlterConfigs v%d" % v)
        ok(r is not None and r["Responses"][0]["ErrorCode"] == 0, "AlterConfigs v%d" % v)
    for v in versions(44):
        r = try_call(c, 44, v, {"Resources": [{"ResourceType": 2, "ResourceName": "ct0",
                                               "Configs": [{"Name": "retention.ms",
                                                            "ConfigOperation": 0,
                                                            "Value": "18000%d" % v}]}],
                                "ValidateOnly": False}, "IncrementalAlterConfigs v%d" % v)
        ok(r is not None and r["Responses"][0]["ErrorCode"] == 0,
           "IncrementalAlterConfigs v%d" % v)
        d = c.call(32, table[32][1], {"Resources": [{"ResourceType": 2, "ResourceName": "ct0",
                                                     "ConfigurationKeys": ["retention.ms"]}]})
        ok(d["Results"][0]["Configs"][0]["Value"] == "18000%d" % v,
           "IncrementalAlterConfigs v%d: retention.ms is now 18000%d" % (v, v))
    for v in versions(37):
        r = try_call(c, 37, v, {"Topics": [{"Name": "ct0", "Count": 2 + v,
                                            "Assignments": None}],
                                "TimeoutMs": 5000, "ValidateOnly": False},
                     "CreatePartitions v%d" % v)
        ok(r is not None and r["Results"][0]["ErrorCode"] == 0,
           "CreatePartitions v%d: ct0 to %d partitions" % (v, 2 + v))
    for v in versions(22):
        r = try_call(c, 22, v, {"TransactionalId": None, "TransactionTimeoutMs": 60000,
                                "ProducerId": -1, "ProducerEpoch": -1}, "InitProducerId v%d" % v)
        ok(r is not None and r["ErrorCode"] == 0 and r["ProducerId"] >= 0,
           "InitProducerId v%d: a producer id" % v)

    # DescribeCluster, every version (flexible from v0).
    for v in versions(60):
        r = try_call(c, 60, v, {"IncludeClusterAuthorizedOperations": False, "EndpointType": 1},
                     "DescribeCluster v%d" % v)
        ok(r is not None and r["ErrorCode"] == 0 and r["ClusterId"] == "chronik" and
           [(b["BrokerId"], b["Port"]) for b in r["Brokers"]] == [(1, port)] and
           r["ControllerId"] == 1, "DescribeCluster v%d: one broker, node 1, port %d" % (v, port))
        if v >= 1:
            r = try_call(c, 60, v, {"EndpointType": 2}, "DescribeCluster v%d controllers" % v)
            ok(r is not None and r["ErrorCode"] == 114,
               "DescribeCluster v%d: controllers get 114 MISMATCHED_ENDPOINT_TYPE" % v)

    # DeleteRecords, every version: topic dr<v> with 3 records.
    for v in versions(21):
        name = "dr%d" % v
        c.call(19, table[19][1], create_body(name, 1))
        c.call(0, table[0][1], {"TransactionalId": None, "Acks": -1, "TimeoutMs": 5000,
                                "TopicData": [{"Name": name, "PartitionData": [
                                    {"Index": 0, "Records": record_batch([b"a", b"b", b"c"])}]}]})

        def dr_call(topic, offset, what):
            r = try_call(c, 21, v, {"Topics": [{"Name": topic, "Partitions": [
                {"PartitionIndex": 0, "Offset": offset}]}], "TimeoutMs": 5000},
                "DeleteRecords v%d %s" % (v, what))
            return r and r["Topics"][0]["Partitions"][0]
        p = dr_call(name, 2, "below 2")
        ok(p is not None and p["ErrorCode"] == 0 and p["LowWatermark"] == 2,
           "DeleteRecords v%d: low watermark 2 (%s)" % (v, p))
        r = c.call(2, table[2][1], {"ReplicaId": -1, "IsolationLevel": 0, "Topics": [
            {"Name": name, "Partitions": [{"PartitionIndex": 0, "CurrentLeaderEpoch": -1,
                                           "Timestamp": -2, "MaxNumOffsets": 1}]}]})
        ok(r["Topics"][0]["Partitions"][0]["Offset"] == 2,
           "DeleteRecords v%d: ListOffsets earliest is 2" % v)
        fr = c.call(1, table[1][1], {
            "ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 0, "MaxBytes": 1 << 20,
            "IsolationLevel": 0, "SessionId": 0, "SessionEpoch": -1,
            "Topics": [{"Topic": name, "TopicId": c.call(3, table[3][1], {
                "Topics": [{"Name": name}], "AllowAutoTopicCreation": False})[
                    "Topics"][0]["TopicId"], "Partitions": [
                {"Partition": 0, "CurrentLeaderEpoch": -1, "FetchOffset": 0,
                 "LastFetchedEpoch": -1, "LogStartOffset": -1, "PartitionMaxBytes": 1 << 20}]}],
            "ForgottenTopicsData": [], "RackId": ""})
        fp = fr["Responses"][0]["Partitions"][0]
        ok(fp["ErrorCode"] == 1 and fp["LogStartOffset"] == 2,
           "DeleteRecords v%d: Fetch from 0 gets 1 OFFSET_OUT_OF_RANGE, log start 2" % v)
        p = dr_call(name, 4, "above the high watermark")
        ok(p is not None and p["ErrorCode"] == 1 and p["LowWatermark"] == -1,
           "DeleteRecords v%d: above the high watermark gets 1 OFFSET_OUT_OF_RANGE" % v)
        p = dr_call(name, 1, "below the log start")
        ok(p is not None and p["ErrorCode"] == 0 and p["LowWatermark"] == 2,
           "DeleteRecords v%d: below the log start changes nothing" % v)
        p = dr_call("no-such-topic", 0, "unknown topic")
        ok(p is not None and p["ErrorCode"] == 3,
           "DeleteRecords v%d: an unknown topic gets 3" % v)
        p = dr_call(name, -1, "to the high watermark")
        ok(p is not None and p["ErrorCode"] == 0 and p["LowWatermark"] == 3,
           "DeleteRecords v%d: -1 deletes up to the high watermark" % v)

    # DeleteTopics v6+ by id: a topic made for it, then its id again.
    for v in versions(20):
        if v < 6:
            continue
        c.call(19, table[19][1], create_body("byid%d" % v, 1))
        md = c.call(3, table[3][1], {"Topics": [{"Name": "byid%d" % v}],
                                     "AllowAutoTopicCreation": False})
        tid = md["Topics"][0]["TopicId"]
        r = try_call(c, 20, v, {"Topics": [{"Name": None, "TopicId": tid}], "TimeoutMs": 5000},
                     "DeleteTopics v%d by id" % v)
        ok(r is not None and r["Responses"][0]["ErrorCode"] == 0 and
           r["Responses"][0]["Name"] == "byid%d" % v, "DeleteTopics v%d deletes by id" % v)
        r = try_call(c, 20, v, {"Topics": [{"Name": None, "TopicId": tid}], "TimeoutMs": 5000},
                     "DeleteTopics v%d by id again" % v)
        ok(r is not None and r["Responses"][0]["ErrorCode"] == 100,
           "DeleteTopics v%d: the id is gone (100 UNKNOWN_TOPIC_ID)" % v)

    # DeleteTopics last, every version: ct<v> (v6+ by name, null id).
    for v in versions(20):
        name = "ct%d" % v
        r = try_call(c, 20, v, {"TopicNames": [name], "Topics": [
            {"Name": name, "TopicId": bytes(16)}], "TimeoutMs": 5000}, "DeleteTopics v%d" % v)
        ok(r is not None and r["Responses"][0]["ErrorCode"] == 0,
           "DeleteTopics v%d deletes %s" % (v, name))


if __name__ == "__main__":
    sys.exit(main())
