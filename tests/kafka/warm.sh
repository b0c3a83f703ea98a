#!/bin/bash
# The warm tier under a live chronikd (filesystem and Kafka): 1,000,000
# lines appended through the mount across many small WAL files, indexed
# into segments, read back whole (cat, wc -l), at segment boundaries
# (dd skip=), by timestamp (ListOffsets) and through Kafka; a gzip batch
# from kcat stays gzip in its segment; tail -f and a Kafka consumer
# started before a stream of appends
# see every line once, in order, while the indexer seals and indexes under
# them (wal.seal.ms 200); retention on a live topic; rmdir of a topic
# frees its disk.
# Usage: warm.sh KAFKA_SERVER CHRONIKD CHRONIK
. "$(dirname "$0")/lib.sh"

daemon_prologue "$@"

plan 24
daemon_start --fsync never --set default.partitions=1 \
	--set wal.segment.bytes=65536 --set wal.seal.ms=200
ok $? "chronikd mounts and serves Kafka on $BROKER" || diag_file "$T/chronikd.log"

# info.json's wal_bytes: what is not yet indexed.
wal_bytes() { sed -n 's/.*"wal_bytes": \([0-9]*\).*/\1/p' "$MNT/$1/0/info.json"; }
indexed() { [ "$(wal_bytes "$1")" = 0 ]; }

mkdir "$MNT/big"
seq -f "line-%07.0f" 0 999999 >"$T/lines"
dd if="$T/lines" of="$MNT/big/0/data" bs=65536 oflag=append conv=notrunc status=none
ok $? "1,000,000 lines appended through the mount in 64 KiB writes"
until_ok 90 indexed big
ok $? "the indexer turns them all into segments" || diag "wal_bytes $(wal_bytes big)"
lim 60 "$CHRONIK" --data "$DATA" segments big/0 >"$T/segs" 2>"$T/segs.err"
n=$(grep -c '^file: ' "$T/segs")
[ "$n" -gt 10 ]
ok $? "chronik segments lists $n segments beside the daemon" || diag_file "$T/segs.err"

[ "$(wc -l <"$MNT/big/0/data")" -eq 1000000 ]
ok $? "wc -l of data is 1,000,000"
cmp -s "$T/lines" "$MNT/big/0/data"
ok $? "cat data is every line, in order"
bad=0
for pos in $(sed -n 's/.* raw_start: \([0-9]*\) .*/\1/p' "$T/segs" | head -n 40); do
	for at in $((pos > 5 ? pos - 5 : 0)) "$pos" $((pos + 7)); do
		a=$(dd if="$MNT/big/0/data" bs=1 skip="$at" count=30 status=none)
		b=$(dd if="$T/lines" bs=1 skip="$at" count=30 status=none)
		[ "$a" = "$b" ] || bad=$((bad + 1))
	done
done
ok $bad "dd skip= at and around segment boundaries reads the right bytes"
lim 120 kcat -b "$BROKER" -C -t big -o beginning -e -q >"$T/k" 2>"$T/k.err"
cmp -s "$T/lines" "$T/k"
ok $? "a Kafka consumer reads every line back from the segments" || diag_file "$T/k.err"
lim 60 kcat -b "$BROKER" -C -t big -o 999990 -e -q -f '%o %s\n' >"$T/k2" 2>/dev/null
[ "$(head -n 1 "$T/k2")" = "999990 line-0999990" ]
ok $? "and from an offset inside the last segment"

# By timestamp (Kafka ListOffsets, the segments' timestamp indexes): for a
# record's timestamp T the broker names the first offset whose timestamp
# is >= T. Asked at segment base offsets and just after them.
lim 120 kcat -b "$BROKER" -C -t big -o beginning -e -q -f '%o %T\n' >"$T/ts" 2>/dev/null
bad=0
asked=0
for base in $(sed -n 's/^file: \([0-9]*\)\.seg .*/\1/p' "$T/segs" | sed 's/^0*\([0-9]\)/\1/' | awk 'NR % 4 == 2' | head -n 8); do
	for at in "$base" $((base + 1)); do
		ts=$(sed -n "$((at + 1))s/^[0-9]* //p" "$T/ts")
		want=$(awk -v t="$ts" '$2 >= t { print $1; exit }' "$T/ts")
		got=$(lim 30 kcat -b "$BROKER" -C -t big -o "s@$ts" -c 1 -q -f '%o\n' 2>/dev/null)
		asked=$((asked + 1))
		[ -n "$ts" ] && [ "$got" = "$want" ] ||
			{ bad=$((bad + 1)); diag "offset $at: timestamp $ts, broker $got, expected $want"; }
	done
done
[ "$(wc -l <"$T/ts")" -eq 1000000 ] && [ "$asked" -ge 8 ]
ok $((bad || $?)) "ListOffsets by timestamp at $asked segment boundaries names the first record at or after it"

# A producer's gzip batch is kept byte for byte (its codec with it).
seq -f "gz-%.0f" 1 5000 | lim 30 kcat -b "$BROKER" -P -t gz -z gzip -X acks=all 2>/dev/null
until_ok 90 indexed gz
lim 60 "$CHRONIK" --data "$DATA" segments gz/0 >"$T/gsegs" 2>/dev/null
seg=$(sed -n 's/^file: \([^ ]*\) .*/\1/p' "$T/gsegs" | head -n 1)
tid=$(sed -n 's/^topic_id: \([0-9]*\) .*/\1/p' "$T/gsegs")
lim 60 "$CHRONIK" dump "$DATA/segments/$tid/0/$seg" >"$T/gdump" 2>"$T/gdump.err"
grep -q 'codec: gzip' "$T/gdump" && ! grep -q 'codec: lz4' "$T/gdump"
ok $? "kcat -z gzip batches stay gzip in the segment" ||
	{ diag_file "$T/gsegs"; diag_file "$T/gdump"; diag_file "$T/gdump.err"; }
lim 60 kcat -b "$BROKER" -C -t gz -o beginning -e -q >"$T/gk" 2>/dev/null
seq -f "gz-%.0f" 1 5000 | cmp -s - "$T/gk"
ok $? "and read back identical"

# Followers across boundaries while the indexer runs.
mkdir "$MNT/f"
tail -n +1 -f "$MNT/f/0/data" >"$T/tail.out" 2>/dev/null &
bg+=($!)
lim 120 kcat -b "$BROKER" -C -t f -o beginning -c 20000 -q >"$T/kf" 2>/dev/null &
kpid=$!
bg+=($kpid)
for i in $(seq 0 39); do
	seq -f "f-%05.0f" $((i * 500)) $((i * 500 + 499)) >>"$MNT/f/0/data"
	sleep 0.05
done
seq -f "f-%05.0f" 0 19999 >"$T/fl"
until_ok 90 cmp -s "$T/fl" "$T/tail.out"
ok $? "tail -f saw every line once, in order, across segment/WAL boundaries" ||
	diag "tail has $(wc -l <"$T/tail.out") lines"
wait "$kpid"
cmp -s "$T/fl" "$T/kf"
ok $? "a Kafka consumer started before the appends saw every offset once" ||
	diag "kcat has $(wc -l <"$T/kf") lines"
lim 60 "$CHRONIK" --data "$DATA" segments f/0 >"$T/fsegs" 2>/dev/null
[ "$(grep -c '^file: ' "$T/fsegs")" -gt 2 ]
ok $? "and the indexer did run meanwhile ($(grep -c '^file: ' "$T/fsegs") segments)"

# Retention on a live topic (config.json written through the mount). data
# keeps its size, so cmp -s (which compares sizes first) reads it through cat.
mkdir "$MNT/ret"
tail -n +1 -f "$MNT/ret/0/data" >"$T/rtail" 2>/dev/null &
bg+=($!)
seq -f "r-%06.0f" 0 99999 >"$T/rl"
dd if="$T/rl" of="$MNT/ret/0/data" bs=16384 oflag=append conv=notrunc status=none
size_before=$(stat -c %s "$MNT/ret/0/data")
printf '{"retention.bytes":"100000"}' >"$MNT/ret/config.json"
ok $? "retention.bytes=100000 written to config.json"
log_start() { sed -n 's/.*"log_start_offset": \([0-9]*\).*/\1/p' "$MNT/ret/0/info.json"; }
moved() { indexed ret && [ "$(log_start)" -gt 0 ]; }
until_ok 90 moved
st=$?
# Settled: the same log start across a retention period (1 s).
ls=$(log_start)
for _ in $(seq 20); do
	sleep 1.2
	[ "$(log_start)" = "$ls" ] && break
	ls=$(log_start)
done
ok $st "retention moved the log start to $ls"
[ "$(stat -c %s "$MNT/ret/0/data")" -eq "$size_before" ]
ok $? "data keeps its size ($size_before)"
tail -n +$((ls + 1)) "$T/rl" >"$T/rkept"
cat "$MNT/ret/0/data" | cmp -s "$T/rkept" - && [ "$(wc -l <"$MNT/ret/0/data")" -eq $((100000 - ls)) ]
st=$?
ok $st "cat and wc -l see exactly the records kept"
if [ $st -ne 0 ]; then
	diag "log start $ls, $(wc -l <"$MNT/ret/0/data") lines"
	cmp "$T/rkept" "$MNT/ret/0/data" 2>&1 | sed 's/^/# /'
	tr -d '\n' <"$MNT/ret/0/info.json" | sed 's/^/# /'
	echo
fi
at=$(((ls + 10) * 9))
[ "$(dd if="$MNT/ret/0/data" bs=1 skip="$at" count=9 status=none)" = "r-$(printf %06d $((ls + 10)))" ]
ok $? "dd skip= at a kept record's old position reads it"
seq -f "s-%.0f" 1 100 >>"$MNT/ret/0/data"
until_ok 90 grep -qx s-100 "$T/rtail"
ok $? "tail -f started before retention keeps following"
lim 60 kcat -b "$BROKER" -C -t ret -o 0 -X auto.offset.reset=earliest -e -q -f '%o\n' \
	>"$T/roffs" 2>"$T/rerr"
[ "$(head -n 1 "$T/roffs")" -ge "$ls" ]
ok $? "a Kafka consumer asking for offset 0 is reset to the log start" ||
	{ diag_file "$T/rerr"; diag "first $(head -n 1 "$T/roffs")"; }

# Topic delete frees its space: its segments go at once (its WAL frames
# were all indexed already), and the data directory falls to about what
# the other topics need.
big_tid=$(sed -n 's/^topic_id: \([0-9]*\) .*/\1/p' "$T/segs")
big_du=$(du -sb "$DATA/segments/$big_tid" | cut -f1)
before=$(du -sb "$DATA" | cut -f1)
rmdir "$MNT/big"
st=$?
until_ok 90 test ! -e "$DATA/segments/$big_tid"
ok $((st || $?)) "rmdir big removes its segments ($big_du bytes)"
after=$(du -sb "$DATA" | cut -f1)
[ "$after" -le $((before - big_du + 65536)) ] && [ "$after" -lt $((before / 2)) ]
ok $? "the data directory fell from $before to $after bytes"
