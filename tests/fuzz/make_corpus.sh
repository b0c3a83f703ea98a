#!/bin/bash
# make_corpus.sh - (re)build the seed corpora of tests/fuzz/corpus from
# real clients and real engine files.
#
#   tests/fuzz/make_corpus.sh BUILD_DIR [CORPUS...]
#
# CORPUS names the corpora to rewrite (default: every one below); the
# others are left as they are.
#
# Starts BUILD_DIR/tests/kafka/kafka_server behind a recording proxy
# (record_proxy.py, 127.0.0.1 only) and drives it with kcat and
# confluent-kafka-python: metadata, produce with every codec, consume,
# a consumer group with commits, an idempotent producer, topic create and
# delete. Then:
#   corpus/kafka/    every request captured on the wire (the bytes after
#                    the size field), and for every API of the request
#                    table each captured request of that API restamped with
#                    each version the table lists (the body stays as it
#                    was: the fuzzer mutates from there)
#   corpus/frame/,   the server's WAL files and its metadata log, each
#   corpus/recover/, twice: flags byte 0x00 and 0x01 (fix CRCs), see the
#   corpus/meta/     harnesses
#   corpus/batch/    tests/data/*.batch
#   corpus/segment/, a copy of the server's data directory indexed by
#   corpus/registry/ `chronik compact t` and `big` (every WAL file turned
#                    into segments; big's has several index entries): each segment file with flags 0x00, 0x01
#                    (fix CRCs) and 0x02 (disagreeing metadata), each
#                    registry.json after its topic id and partition (the
#                    harness's 8-byte prefix), and one of them turned into
#                    a version 2 registry with a remote segment
# corpus/jsonl and corpus/lines are small hand-written files kept as they are.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
shift
wanted=("$@")
# want NAME: rewrite corpus/NAME this run?
want() {
	[ ${#wanted[@]} -eq 0 ] && return 0
	local w
	for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done
	return 1
}
server=$build/tests/kafka/kafka_server
py=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/chronik-corpus.XXXXXX")
spid= ppid_=
cleanup() {
	[ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null || true
	[ -n "$spid" ] && kill "$spid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

"$server" "$T/data" --partitions 2 >"$T/server.out" 2>"$T/server.err" &
spid=$!
for _ in $(seq 100); do
	port=$(awk '/^PORT /{print $2}' "$T/server.out" 2>/dev/null)
	[ -n "${port:-}" ] && break
	sleep 0.1
done
mkdir -p "$T/req"
$py "$here/record_proxy.py" "$port" "$T/req" >"$T/proxy.out" &
ppid_=$!
for _ in $(seq 100); do
	pport=$(awk '/^PORT /{print $2}' "$T/proxy.out" 2>/dev/null)
	[ -n "${pport:-}" ] && break
	sleep 0.1
done
B=127.0.0.1:$pport

timeout 20 kcat -b "$B" -L >/dev/null
for c in none gzip snappy lz4 zstd; do
	seq 1 50 | sed "s/^/$c-/" | timeout 20 kcat -b "$B" -P -t t -z "$c" -K: -H src=kcat
done
# topic big: enough small gzip batches that its segment has several
# index entries (one per SEGMENT_INDEX_INTERVAL bytes)
seq 1 4000 | sed 's/^/big-/' | timeout 30 kcat -b "$B" -P -t big -p 0 -z gzip \
	-X batch.num.messages=40
timeout 20 kcat -b "$B" -C -t t -o beginning -e -q >/dev/null
timeout 20 kcat -b "$B" -C -t t -o -3 -e -q -f '%k %s %h\n' >/dev/null
timeout 30 kcat -b "$B" -G corpus-group t -o beginning -e -q -X auto.commit.interval.ms=100 >/dev/null || true
timeout 60 $py - "$B" <<'PY'
import sys
from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
b = sys.argv[1]
a = AdminClient({"bootstrap.servers": b})
for f in a.create_topics([NewTopic("made", 3, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": b, "enable.idempotence": True, "acks": "all",
              "compression.type": "lz4", "linger.ms": 5})
for i in range(200):
    p.produce("made", key=str(i % 7).encode(), value=("v%d" % i).encode(),
              headers=[("h", b"x")], partition=i % 3)
p.flush(20)
c = Consumer({"bootstrap.servers": b, "group.id": "corpus-py", "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe(["made"])
got = 0
for _ in range(100):
    m = c.poll(0.5)
    if m is not None and not m.error():
        got += 1
        if got % 50 == 0:
            c.commit(message=m, asynchronous=False)
    if got >= 200:
        break
c.committed([TopicPartition("made", 0)], timeout=10)
c.close()
for f in a.delete_topics(["made"]).values():
    f.result()
PY
kill "$ppid_"; wait "$ppid_" 2>/dev/null || true; ppid_=
kill "$spid"; wait "$spid" 2>/dev/null || true; spid=

# kafka: the captures, then every listed version of each API
out=$here/corpus/kafka
if want kafka; then
rm -rf "$out"; mkdir -p "$out"
cp "$T"/req/* "$out"/
$py - "$out" "$here/../../kafka/handlers_meta.c" <<'PY'
import os, re, sys, hashlib
out, table = sys.argv[1], sys.argv[2]
apis = {}
for m in re.finditer(r"\{ KAPI_\w+, (\d+), (\d+), (-?\d+), \"(\w+)\"", open(table).read()):
    pass
src = open(table).read()
keys = {"PRODUCE": 0, "FETCH": 1, "LIST_OFFSETS": 2, "METADATA": 3, "OFFSET_COMMIT": 8,
        "OFFSET_FETCH": 9, "FIND_COORDINATOR": 10, "JOIN_GROUP": 11, "HEARTBEAT": 12,
        "LEAVE_GROUP": 13, "SYNC_GROUP": 14, "API_VERSIONS": 18, "CREATE_TOPICS": 19,
        "DELETE_TOPICS": 20, "INIT_PRODUCER_ID": 22}
for m in re.finditer(r"\{ KAPI_(\w+), (\d+), (\d+), (-?\d+),", src):
    apis[keys[m.group(1)]] = (int(m.group(2)), int(m.group(3)))
by_key = {}
for f in sorted(os.listdir(out)):
    d = open(os.path.join(out, f), "rb").read()
    if len(d) >= 4:
        by_key.setdefault(int.from_bytes(d[0:2], "big"), []).append(d)
for k, (lo, hi) in apis.items():
    reqs = by_key.get(k, [])
    if not reqs:
        # a bare header: the fuzzer starts from nothing for this API
        reqs = [k.to_bytes(2, "big") + b"\0\0\0\0\0\1\0\6corpus"]
    for d in reqs[:4]:
        for v in range(lo, hi + 1):
            nd = d[:2] + v.to_bytes(2, "big") + d[4:]
            name = "v-%02d-%02d-%s" % (k, v, hashlib.sha1(nd).hexdigest()[:12])
            open(os.path.join(out, name), "wb").write(nd)
PY
fi

# engine files: frame, recover, meta
if want frame || want recover || want meta; then
for h in frame recover meta; do rm -rf "$here/corpus/$h"; mkdir -p "$here/corpus/$h"; done
i=0
for w in "$T"/data/wal/*.wal; do
	for flag in 00 01; do
		{ printf "\\x$flag"; cat "$w"; } >"$here/corpus/frame/wal-$i-$flag"
		{ printf "\\x$flag"; cat "$w"; } >"$here/corpus/recover/wal-$i-$flag"
		{ printf "\\x$(printf %02x $((0x$flag | 4)))"; cat "$w"; } >"$here/corpus/recover/wal-$i-split-$flag"
	done
	i=$((i + 1))
done
for flag in 00 01; do
	{ printf "\\x$flag"; cat "$T/data/meta.log"; } >"$here/corpus/meta/meta-$flag"
done
fi

if want batch; then
rm -rf "$here/corpus/batch"; mkdir -p "$here/corpus/batch"
cp "$here"/../data/*.batch "$here/corpus/batch/"
fi

# segment, registry: the same data indexed into segments
if want segment || want registry; then
cp -a "$T/data" "$T/indexed"
"$build/cli/chronik" --data "$T/indexed" compact t >/dev/null
"$build/cli/chronik" --data "$T/indexed" compact big >/dev/null
for h in segment registry; do rm -rf "$here/corpus/$h"; mkdir -p "$here/corpus/$h"; done
i=0
for s in "$T"/indexed/segments/*/*/*.seg; do
	for flag in 00 01 02; do
		{ printf "\\x$flag"; cat "$s"; } >"$here/corpus/segment/seg-$i-$flag"
	done
	i=$((i + 1))
done
$py - "$here/corpus/registry" "$T"/indexed/segments/*/*/registry.json <<'PY'
import json, os, struct, sys
out = sys.argv[1]
for i, path in enumerate(sys.argv[2:]):
    text = open(path, "rb").read()
    r = json.loads(text)
    prefix = struct.pack("<Ii", r["topic_id"], r["partition"])
    open(os.path.join(out, "reg-%d" % i), "wb").write(prefix + text)
    if r["segments"]:
        r["version"] = 2
        s = r["segments"][0]
        s.update(state="remote", remote_key="chronik/%d/%d/%s" % (r["topic_id"], r["partition"], s["file"]),
                 etag='"0123456789abcdef0123456789abcdef"', crc32c=123456789)
        open(os.path.join(out, "reg-%d-remote" % i), "wb").write(
            prefix + json.dumps(r, indent=2).encode())
PY
fi
ls "$here/corpus" | while read -r d; do echo "$d: $(ls "$here/corpus/$d" | wc -l) files"; done
