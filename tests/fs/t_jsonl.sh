#!/bin/bash
# records.jsonl round trip (keys, headers, timestamps, null, binary), invalid
# JSON refused whole; config.json and info.json.
. "$(dirname "$0")/lib.sh"

fs_start
mkdir "$MNT/j"
P=$MNT/j/0

python3 - "$P" >"$T/py.out" 2>&1 <<'PY'
import base64, errno, json, os, sys
p = sys.argv[1]
J, D = p + "/records.jsonl", p + "/data"
n = 0
def ok(cond, desc):
    global n
    n += 1
    print(("ok " if cond else "not ok ") + str(n) + " - " + desc)
def append(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)
def read(path):
    with open(path, "rb") as f:
        return f.read()

binval = bytes(range(256))
lines = [
    {"key": "k1", "value": "hello", "timestamp": 1700000000123,
     "headers": [{"key": "h1", "value": "v1"}, {"key": "h1", "value": "v2"}, {"key": "h2", "value": None}]},
    {"value": "no key"},
    {"key": None, "value": None},
    {"key_b64": base64.b64encode(b"\xff\xfe").decode(), "value_b64": base64.b64encode(binval).decode()},
    {"value": "tab\tquote\"backslash\\ newline\n unicode \u00e9\u4e2d\U0001F600 nul\u0000end"},
    {"value": {"nested": [1, 2]}, "headers": {"a": "b"}},
]
data = "".join(json.dumps(l) + "\n" for l in lines).encode()
w = append(J, data)
ok(w == len(data), "one write of 6 JSON lines")
info = json.loads(read(p + "/info.json"))
ok(info["next_offset"] == 6 and info["batches"] == 1, "6 records in one batch")

raw = read(J)
ok(os.stat(J).st_size == len(raw), "st_size of records.jsonl equals the bytes read")
recs = [json.loads(l) for l in raw.decode().splitlines()]
ok(len(recs) == 6, "6 lines read back")
r = recs[0]
ok(r["offset"] == 0 and r["timestamp"] == 1700000000123 and r["key"] == "k1" and r["value"] == "hello",
   "offset, timestamp, key, value")
ok(r["headers"] == [{"key": "h1", "value": "v1"}, {"key": "h1", "value": "v2"}, {"key": "h2", "value": None}],
   "headers in order, repeated keys kept, null header value")
ok(recs[1]["key"] is None and recs[1]["value"] == "no key" and recs[1]["timestamp"] > 1600000000000,
   "absent key is null, absent timestamp is now")
ok(recs[2]["key"] is None and recs[2]["value"] is None, "null key and null value")
ok("key" not in recs[3] and base64.b64decode(recs[3]["key_b64"]) == b"\xff\xfe"
   and base64.b64decode(recs[3]["value_b64"]) == binval, "binary key and value come back as *_b64")
ok(recs[4]["value"] == lines[4]["value"], "escapes, non-ASCII and NUL round-trip")
ok(recs[5]["value"] == '{"nested":[1,2]}' and recs[5]["headers"] == [{"key": "a", "value": "b"}],
   "a JSON value is stored as its text; headers as an object")
ok([x["offset"] for x in recs] == list(range(6)), "offsets 0..5")

d = read(D)
ok(d.split(b"\n")[:3] == [b"hello", b"no key", b""] and binval + b"\n" in d,
   "the data view has the same values")

# invalid lines fail the whole write, nothing appended
size = os.stat(J).st_size
for bad, what in [(b'{"value":"ok"}\n{"value":\n', "a truncated line"),
                  (b'{"value":"ok"}\nnot json\n', "a line that is not JSON"),
                  (b'{"value":"ok"}\n[1,2]\n', "a line that is not an object"),
                  (b'{"valu":"typo"}\n', "an unknown field"),
                  (b'{"value_b64":"!!!"}\n', "bad base64"),
                  (b'{"key":"a","key_b64":"YQ=="}\n', "key and key_b64 together"),
                  (b'{"timestamp":"soon"}\n', "a timestamp that is not an integer")]:
    try:
        append(J, bad)
        ok(False, what + " is refused")
    except OSError as e:
        ok(e.errno == errno.EINVAL, what + " is refused with EINVAL")
ok(os.stat(J).st_size == size and json.loads(read(p + "/info.json"))["next_offset"] == 6,
   "nothing was appended by the refused writes")

# a line split over two writes, and a blank line
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
os.write(fd, b'{"value":"spl')
os.write(fd, b'it"}\n\n   \n{"value":"last"}')
os.close(fd)
recs = [json.loads(l) for l in read(J).decode().splitlines()]
ok([x["value"] for x in recs[6:]] == ["split", "last"], "a line split over writes; blank lines skipped; close appends the rest")

# reads at any position of records.jsonl
raw = read(J)
good = True
with open(J, "rb") as f:
    for pos in range(0, len(raw), 37):
        f.seek(pos)
        if f.read(50) != raw[pos:pos + 50]:
            good = False
ok(good, "reads at every 37th byte position match")

# config.json
C = os.path.dirname(p) + "/config.json"
ok(json.loads(read(C)) == {}, "config.json of a new topic is {}")
with open(C, "w") as f:
    f.write('{"retention.ms": "60000", "cleanup.policy": "compact"}\n')
cfg = json.loads(read(C))
ok(cfg.get("retention.ms") in ("60000", 60000) and cfg.get("cleanup.policy") == "compact",
   "writing config.json changes the config")
try:
    with open(C, "w") as f:
        f.write('{"retention.ms": ')
        f.write('oops}\n')
    ok(False, "invalid JSON in config.json is refused")
except OSError as e:
    ok(e.errno == errno.EINVAL, "invalid JSON in config.json is refused with EINVAL")
ok(json.loads(read(C)) == cfg, "the config is unchanged after the refused write")
ok(os.stat(C).st_size == len(read(C)), "st_size of config.json is true")

info = json.loads(read(p + "/info.json"))
ok(info["log_start_offset"] == 0 and info["next_offset"] == 8 and info["raw_size"] == os.stat(D).st_size
   and info["wal_bytes"] > 0, "info.json: offsets, raw size, WAL bytes")

# a bad line that began in an earlier write: that write fails, the partial
# line is dropped with it, and the descriptor goes on working
base = json.loads(read(p + "/info.json"))["next_offset"]
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
ok(os.write(fd, b'{"value":"good"}\n{"valu') == 23, "a line and a partial one")
try:
    os.write(fd, b'e":1,"bogus":2}\n')
    ok(False, "the partial line completed into an invalid one is refused")
except OSError as e:
    ok(e.errno == errno.EINVAL, "the partial line completed into an invalid one is refused with EINVAL")
try:
    ok(os.write(fd, b'{"value":"third"}\n') == 18, "a valid line on the same descriptor after that")
except OSError as e:
    ok(False, "a valid line on the same descriptor after that (%s)" % e)
try:
    os.close(fd)
    ok(True, "close() of that descriptor succeeds")
except OSError as e:
    ok(False, "close() of that descriptor succeeds (%s)" % e)
recs = [json.loads(l) for l in read(J).decode().splitlines()]
ok([x["value"] for x in recs[base:]] == ["good", "third"], "good and third are in, nothing else")

# a bad line wholly inside a write keeps the partial line from before it
base = len(recs)
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
os.write(fd, b'{"value":"a')
try:
    os.write(fd, b'b"}\nnot json\n')
    ok(False, "a write whose second line is invalid is refused")
except OSError as e:
    ok(e.errno == errno.EINVAL, "a write whose second line is invalid is refused with EINVAL")
os.write(fd, b'c"}\n')
os.close(fd)
recs = [json.loads(l) for l in read(J).decode().splitlines()]
ok([x["value"] for x in recs[base:]] == ["ac"], "... the partial line from before it was kept")

# an invalid partial line at close: close() fails, the line is dropped
base = len(recs)
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
os.write(fd, b'{"value":"ok"}\n{"nope')
try:
    os.close(fd)
    ok(False, "close() with an invalid partial line fails")
except OSError as e:
    ok(e.errno == errno.EINVAL, "close() with an invalid partial line fails with EINVAL")
recs = [json.loads(l) for l in read(J).decode().splitlines()]
ok([x["value"] for x in recs[base:]] == ["ok"], "... and only the complete line is in")

# a partial line longer than 64 MiB: EFBIG (or a short write, for the part
# that fit), the line is dropped, the descriptor goes on working
base = len(recs)
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
big = b'{"value":"' + b"x" * (65 << 20)
try:
    w = os.write(fd, big)
    ok(w < len(big), "a 65 MiB partial line is not taken whole (wrote %d)" % w)
except OSError as e:
    ok(e.errno == errno.EFBIG, "a 65 MiB partial line fails with EFBIG")
ok(os.write(fd, b'{"value":"after big"}\n') == 22, "a line after it on the same descriptor")
os.close(fd)
recs = [json.loads(l) for l in read(J).decode().splitlines()]
ok([x["value"] for x in recs[base:]] == ["after big"], "... and only that line is in")

# writes above 1 MiB: the kernel sends them as 1 MiB requests (from a
# page-aligned buffer, exactly 1 MiB each), and each request is judged on
# its own. Up to 1 MiB a write is all or nothing:
import mmap
def aligned(data):
    m = mmap.mmap(-1, len(data))
    m.write(data)
    return m
def jsonl_count():
    return json.loads(read(p + "/info.json"))["next_offset"]
MIB = 1 << 20
def valid_lines(total): # lines "big-<i>-<y * (i % 97)>" until total bytes or more
    out, size, i = [], 0, 0
    while size < total:
        out.append(b'{"value":"big-%d-%s"}\n' % (i, b"y" * (i % 97)))
        size += len(out[-1])
        i += 1
    return b"".join(out)
bad_line = b'{"value":"the last line is bad"\n'
one = valid_lines(MIB)
one = one[:one.rindex(b"\n", 0, MIB - len(bad_line)) + 1]
one += b" " * (MIB - len(bad_line) - len(one)) + bad_line
ok(len(one) == MIB, "a 1 MiB write ending in an invalid line")
before = jsonl_count()
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
try:
    os.write(fd, aligned(one))
    ok(False, "... is refused")
except OSError as e:
    ok(e.errno == errno.EINVAL, "... is refused with EINVAL")
os.close(fd)
ok(jsonl_count() == before, "... and appends nothing")
# 2 MiB of valid lines ending in an invalid line: the first 1 MiB request
# is appended (its lines up to the one cut at 1 MiB; that one is kept in
# the open file), write(2) returns 1 MiB; the rest fails with EINVAL.
two = valid_lines(2 * MIB - len(bad_line))[:2 * MIB - len(bad_line)]
two = two[:two.rindex(b"\n") + 1]
two += b" " * (2 * MIB - len(bad_line) - len(two)) + bad_line
ok(len(two) == 2 * MIB and two[MIB - 1:MIB] != b"\n", "a 2 MiB write ending in an invalid line, a line cut at 1 MiB")
in_first = two[:MIB].count(b"\n")
before = jsonl_count()
fd = os.open(J, os.O_WRONLY | os.O_APPEND)
buf = aligned(two)
try:
    w = os.write(fd, buf)
    ok(w == MIB, "... write(2) returns 1 MiB, a short write (%d)" % w)
except OSError as e:
    ok(False, "... write(2) returns 1 MiB, a short write (%s)" % e)
ok(jsonl_count() == before + in_first,
   "... the %d lines wholly in the first 1 MiB are appended (%d)" % (in_first, jsonl_count() - before))
try:
    os.write(fd, aligned(two[MIB:]))
    ok(False, "writing the rest again is refused")
except OSError as e:
    ok(e.errno == errno.EINVAL, "writing the rest again is refused with EINVAL")
ok(jsonl_count() == before + in_first, "... and appends nothing")
try:
    os.close(fd)
    ok(False, "close() with the line cut at 1 MiB still held fails")
except OSError as e:
    ok(e.errno == errno.EINVAL, "close() with the line cut at 1 MiB still held fails with EINVAL (it is not JSON alone)")
ok(jsonl_count() == before + in_first, "... and appends nothing")
vals = [json.loads(l)["value"] for l in read(J).decode().splitlines()[before:]]
ok(vals == ["big-%d-%s" % (i, "y" * (i % 97)) for i in range(in_first)], "the appended lines are the first ones, intact")

# config.json: what is written replaces the whole config
with open(C, "w") as f:
    f.write('{"cleanup.policy": "delete"}\n')
ok(json.loads(read(C)) == {"cleanup.policy": "delete"}, "writing config.json replaces the whole config")
cfg = json.loads(read(C))
size = os.stat(C).st_size
try:
    os.truncate(C, 3)
    ok(False, "truncate(2) of config.json by path is refused")
except OSError as e:
    ok(e.errno == errno.EPERM, "truncate(2) of config.json by path is refused with EPERM")
try:
    os.truncate(C, size)
    ok(True, "truncate(2) of config.json to its own size succeeds")
except OSError as e:
    ok(False, "truncate(2) of config.json to its own size succeeds (%s)" % e)
ok(json.loads(read(C)) == cfg, "... and the config is unchanged")
mtime = os.stat(C).st_mtime_ns
fd = os.open(C, os.O_RDWR)
try:
    os.ftruncate(fd, size + 10)
    ok(False, "ftruncate() growing config.json is refused")
except OSError as e:
    ok(e.errno == errno.EINVAL, "ftruncate() growing config.json is refused with EINVAL")
os.close(fd)
ok(json.loads(read(C)) == cfg and os.stat(C).st_mtime_ns == mtime,
   "... and the close applies nothing (config and mtime unchanged)")
print("1.." + str(n))
PY
cat "$T/py.out"
! grep -q "^not ok\|Traceback" "$T/py.out"
