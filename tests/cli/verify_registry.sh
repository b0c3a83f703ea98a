#!/bin/bash
# verify checks the registry against the segment files and the index
# against the batches: each field of a registry entry edited in a copy of
# the data directory, and an index entry's raw position patched with its
# CRCs fixed (so only the meaning is wrong), make `chronik verify` exit 1
# and name what is wrong.
. "$(dirname "$0")/lib.sh"

plan 23

# compression.type none keeps each produce's batch as it came: about 6 KiB
# each (more than the index interval), so every batch has an index entry
# and a segment of 64 KiB has several.
W="--set wal.segment.bytes=65536"
run 0 --data "$D" topic create r --config compression.type=none
ok $? "create r"
seq -f "line %.0f" 1 20000 >"$T/in"
for i in $(seq 0 39); do
	sed -n "$((i * 500 + 1)),$((i * 500 + 500))p" "$T/in" >"$T/part"
	"$CHRONIK" --data "$D" $W produce r/0 <"$T/part" || break
done
ok $? "40 produces of 500 lines"
reg=$(ls "$D"/segments/*/0/registry.json)
nseg=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["segments"]))' "$reg")
[ "$nseg" -ge 3 ]
ok $? "$nseg segments"
run 0 --data "$D" verify
ok $? "verify of the clean directory exits 0"

# One field of the second segment's registry entry, changed in a copy; each
# change keeps the registry loadable (ranges ordered and disjoint).
for f in base_offset:1 last_offset:-1 raw_start:1 raw_end:-1 records:1 \
	min_timestamp:-1 max_timestamp:1 bytes:1; do
	field=${f%%:*} delta=${f#*:}
	rm -rf "$T/copy" && cp -a "$D" "$T/copy"
	python3 - "$T/copy/${reg#"$D"/}" "$field" "$delta" <<'PY'
import json, sys
path, field, delta = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(path))
s = r["segments"][1]
s[field] += delta
if field == "base_offset":
    # The file is named by its base offset: move it to the new name so
    # that it is the contents that disagree, not the name.
    import os
    d = os.path.dirname(path)
    new = "%020d.seg" % s["base_offset"]
    os.rename(os.path.join(d, s["file"]), os.path.join(d, new))
    s["file"] = new
open(path, "w").write(json.dumps(r))
PY
	run 1 --data "$T/copy" verify
	ok $? "verify exits 1 when the registry's $field is off by $delta"
	grep -q "registry says $field " "$T/err"
	ok $? "and says the registry's $field disagrees with the file"
done

# The second index entry of the first segment: raw position one further,
# index and trailer CRCs recomputed so that the file stays valid by rules
# 1-3 (either trailer layout) and only the raw positions the batches give can tell.
rm -rf "$T/copy" && cp -a "$D" "$T/copy"
seg=$(ls "$T"/copy/segments/*/0/00000000000000000000.seg)
python3 - "$seg" <<'PY'
import struct, sys
def crc32c(data, crc=0):
    tab = crc32c.tab
    crc ^= 0xffffffff
    for b in data:
        crc = tab[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff
crc32c.tab = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    crc32c.tab.append(c)
b = bytearray(open(sys.argv[1], "rb").read())
version, = struct.unpack_from("<I", b, 8)
tsize = 64 if version == 1 else 80  # trailer (wal/segment.h); its CRC last
t = len(b) - tsize
assert struct.unpack_from("<I", b, t + tsize - 4)[0] == crc32c(b[t:t + tsize - 4]), "crc32c"
data_end, entries = struct.unpack_from("<QI", b, t + 8)
assert entries >= 3, entries
e = data_end + 32
raw, = struct.unpack_from("<Q", b, e + 8)
struct.pack_into("<Q", b, e + 8, raw + 1)
struct.pack_into("<I", b, t + 56, crc32c(b[data_end:data_end + 32 * entries]))
struct.pack_into("<I", b, t + tsize - 4, crc32c(b[t:t + tsize - 4]))
open(sys.argv[1], "wb").write(b)
PY
ok $? "patched the raw position of index entry 1 and its CRCs"
run 1 --data "$T/copy" verify
ok $? "verify exits 1 on an index raw position the batches do not give"
grep -q "index entry 1: raw position" "$T/err"
ok $? "and names the index entry"
