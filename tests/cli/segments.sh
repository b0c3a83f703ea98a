#!/bin/bash
# The warm tier through the CLI: a produce across many small WAL files is
# indexed into segments; `segments` lists them, `consume` and `info` see
# every record, `dump` reads a segment file (and its key table: none of
# these records has a key), `verify` checks it and finds a
# flipped byte; topic delete removes the topic's segments.
. "$(dirname "$0")/lib.sh"

plan 23

W="--set wal.segment.bytes=8192"
run 0 --data "$D" topic create s
ok $? "create s"
seq -f "line %.0f" 1 20000 >"$T/in"
for i in $(seq 0 39); do
	sed -n "$((i * 500 + 1)),$((i * 500 + 500))p" "$T/in" >"$T/part"
	"$CHRONIK" --data "$D" $W produce s/0 <"$T/part" || break
done
ok $? "40 produces of 500 lines across many small WAL files"
[ "$(ls "$D"/wal/*.wal | wc -l)" -eq 1 ]
ok $? "after a clean close only the active WAL file is left"

run 0 --data "$D" segments s/0
ok $? "segments exits 0"
nseg=$(grep -c '^file: ' "$T/out")
[ "$nseg" -gt 3 ]
ok $? "it lists $nseg segments"
head -n 1 "$T/out" | grep -q 'topic_id: 1 log_start_offset: 0 next_offset: 20000'
ok $? "with the log start and next offset"
grep -q '^file: 00000000000000000000.seg base_offset: 0 ' "$T/out"
ok $? "the first starts at offset 0"

run 0 --data "$D" consume s/0
cmp -s "$T/out" "$T/in"
ok $? "consume reads every record back from the segments"
run 0 --data "$D" info s/0
grep -q "\"segments\": $nseg" "$T/out" && grep -q '"next_offset": 20000' "$T/out"
ok $? "info shows the segments"

seg=$(ls "$D"/segments/*/0/*.seg | head -n 1)
run 0 dump "$seg"
ok $? "dump of a segment file exits 0"
grep -q 'base_offset: 0 .*codec: lz4 .*status: valid' "$T/out" && grep -q '^batches: ' "$T/out"
ok $? "dump prints its lz4 batches"
run 0 dump --records "$seg"
grep -q '"value":"line 1"' "$T/out"
ok $? "dump --records prints the records"
grep -qx 'version: 2 keys: 0' "$T/out"
ok $? "dump says the segment's version and its key table's entries (lines have no key)"
run 0 dump --keys "$seg"
! grep -q '^key: ' "$T/out" && grep -qx 'version: 2 keys: 0' "$T/out"
ok $? "dump --keys lists no entry for a table of none"

run 0 --data "$D" verify
ok $? "verify of the indexed directory exits 0"
size=$(stat -c %s "$seg")
mid=$((size / 3))
byte=$(od -An -tu1 -j "$mid" -N1 "$seg" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte ^ 0x55) & 0xff)))" |
	dd of="$seg" bs=1 seek="$mid" count=1 conv=notrunc status=none
run 1 --data "$D" verify
ok $? "a flipped byte in a segment: verify exits 1"
grep -q '\.seg' "$T/err"
ok $? "and names the segment file"

run 0 --data "$D" topic delete s
[ -z "$(ls "$D"/segments/)" ]
ok $? "topic delete removes its segments"

# Retention through topic alter: the log start moves, positions stay.
run 0 --data "$D" topic create r
for i in $(seq 0 19); do
	sed -n "$((i * 1000 + 1)),$((i * 1000 + 1000))p" "$T/in" | "$CHRONIK" --data "$D" $W produce r/0 || break
done
run 0 --data "$D" topic alter r --config retention.bytes=20000 --config cleanup.policy=delete
ok $? "topic alter sets retention.bytes"
run 0 --data "$D" info
grep -q '"retention.bytes": "20000"' "$T/out"
ok $? "the config shows it"
run 0 --data "$D" $W produce r/0 </dev/null
run 0 --data "$D" segments r/0
start=$(head -n 1 "$T/out" | sed -n 's/.*log_start_offset: \([0-9]*\) .*/\1/p')
[ "$start" -gt 0 ]
ok $? "the next writer's retention pass moved the log start to $start"
run 0 --data "$D" consume r/0
first=$(head -n 1 "$T/out")
[ "$first" = "line $((start + 1))" ] && [ "$(wc -l <"$T/out")" -eq $((20000 - start)) ]
ok $? "consume starts at the log start"
run 0 --data "$D" topic alter r --config retention.bytes=
run 0 --data "$D" info
! grep -q 'retention.bytes' "$T/out"
ok $? "an empty value removes the key"
