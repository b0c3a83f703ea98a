#!/bin/bash
# verify on a clean directory, dump of a WAL file, and a corrupt byte in
# the middle of the WAL: verify exits 1 and other commands fail clearly.
. "$(dirname "$0")/lib.sh"

plan 18

run 0 --data "$D" topic create v --partitions 2
ok $? "create v"
# From regular files, so that each produce is exactly one batch.
for i in 1 2 3; do
	seq -f "batch $i record %.0f" 1 2000 >"$T/in$i"
	"$CHRONIK" --data "$D" produce v/0 <"$T/in$i" || break
done
ok $? "three produces"
echo other | "$CHRONIK" --data "$D" produce v/1
run 0 --data "$D" verify
ok $? "verify of a clean directory exits 0"

wal=$(ls "$D"/wal/*.wal 2>/dev/null | head -n 1)
[ -n "$wal" ] && [ -s "$wal" ]
ok $? "the WAL file exists"

run 0 dump "$wal"
ok $? "dump exits 0"
[ "$(grep -c 'version: 2 .*partition: 0 .*status: valid' "$T/out")" -ge 3 ]
ok $? "dump prints one line per frame (at least the three batches)"
grep -q 'base_offset: 0 last_offset: 1999 count: 2000' "$T/out"
ok $? "dump shows the first batch's offsets and count"
run 0 dump --records "$wal"
grep -q '"value":"batch 3 record 2000"' "$T/out"
ok $? "dump --records prints the records"

# Flip one byte in the middle of the file: inside the second batch, with
# valid frames after it, so it is corruption before the tail.
size=$(stat -c %s "$wal")
mid=$((size / 2))
byte=$(od -An -tu1 -j "$mid" -N1 "$wal" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte ^ 0x55) & 0xff)))" |
	dd of="$wal" bs=1 seek="$mid" count=1 conv=notrunc status=none
now=$(od -An -tu1 -j "$mid" -N1 "$wal" | tr -d ' ')
[ "$now" -ne "$byte" ] && [ "$(stat -c %s "$wal")" -eq "$size" ]
ok $? "corrupted byte $mid of $size"

run 1 --data "$D" verify
ok $? "verify of the corrupt directory exits 1"
grep -qi 'corrupt\|invalid\|crc' "$T/err"
ok $? "and says what is wrong"
run 1 --data "$D" consume v/0
ok $? "consume of the corrupt directory exits 1"
[ -s "$T/err" ]
ok $? "with a message"
run 1 dump "$wal"
grep -q 'status: invalid' "$T/out"
ok $? "dump stops at the invalid frame and says so"

# --repair cuts the log at the damage: what came before it is kept.
run 0 --data "$D" --repair verify
ok $? "verify --repair cuts the damage and then finds the log clean"
run 0 --data "$D" verify
ok $? "verify is clean after the repair"
run 0 --data "$D" consume v/0
head -n 1 "$T/out" | grep -qx 'batch 1 record 1'
ok $? "the records before the damage are still there"
[ "$(stat -c %s "$wal")" -lt "$mid" ]
ok $? "the WAL was cut before the damaged byte"

done_testing
