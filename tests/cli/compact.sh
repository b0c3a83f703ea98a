#!/bin/bash
# chronik compact: on a topic whose config names the shipped value.prefix
# filter, the records whose value starts with the prefix go from every
# segment but the newest; the others keep their offsets and raw positions
# (info's raw size is unchanged, its records count what is left); verify is clean; a data directory a
# writer holds is refused.
. "$(dirname "$0")/lib.sh"

plan 10

W="--set wal.segment.bytes=8192"
run 0 --data "$D" topic create c --config compaction.filter=value.prefix \
	--config compaction.drop.value.prefix=debug
ok $? "create c with the value.prefix filter"
for i in $(seq 1 4000); do
	if [ $((i % 4)) -eq 0 ]; then echo "info $i"; else echo "debug $i"; fi
done >"$T/in"
for i in $(seq 0 7); do
	sed -n "$((i * 500 + 1)),$((i * 500 + 500))p" "$T/in" | "$CHRONIK" --data "$D" $W produce c/0 || break
done
ok $? "8 produces of 500 lines"
run 0 --data "$D" info c/0
size=$(sed -n 's/.*"raw_size": \([0-9]*\).*/\1/p' "$T/out")
run 0 --data "$D" compact c
ok $? "compact exits 0"
grep -q '^c/0: segments [0-9]* -> 1, records [0-9]* -> [0-9]*, bytes' "$T/out"
ok $? "and says what it did: $(cat "$T/out")"
run 0 --data "$D" consume c/0
! grep -q '^debug' <(head -n 500 "$T/out") && [ "$(grep -c '^info' "$T/out")" -eq 1000 ]
ok $? "the debug lines of the cleaned segments are gone, every info line is there"
tail -n 1 "$T/out" | grep -qx 'info 4000'
ok $? "the newest segment is kept as it is"
kept=$(wc -l <"$T/out")
run 0 --data "$D" info c/0
[ "$(sed -n 's/.*"raw_size": \([0-9]*\).*/\1/p' "$T/out")" = "$size" ]
ok $? "the raw size (positions) is unchanged"
grep -q "\"records\": $kept," "$T/out"
ok $? "info's records are the $kept records left, not the 4000 offsets"
run 0 --data "$D" verify
ok $? "verify is clean"

# A writer holds the directory: compact is refused.
mkfifo "$T/fifo"
exec 7<>"$T/fifo"
"$CHRONIK" --data "$D" produce c/0 <"$T/fifo" 7>&- &
producer=$!
bg_pids+=("$producer")
printf 'x\n' >&7
for _ in $(seq 100); do
	run 0 --data "$D" --set wal.seal.ms=0 info c/0 && grep -q '"next_offset": 4001' "$T/out" && break
	sleep 0.1
done
run 1 --data "$D" compact c
grep -q locked "$T/err"
ok $? "compact beside a writer exits 1: the directory is locked"
exec 7>&-
wait "$producer"
