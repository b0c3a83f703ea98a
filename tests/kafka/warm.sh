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

plan 26
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
# Every line carries its sequence number (r-000000, r-000001, ...), and the
# same sequence goes on after retention.
mkdir "$MNT/ret"
tail -n +1 -f "$MNT/ret/0/data" >"$T/rtail" 2>/dev/null &
bg+=($!)
seq -f "r-%06.0f" 0 99999 >"$T/rl"
dd if="$T/rl" of="$MNT/ret/0/data" bs=16384 oflag=append conv=notrunc status=none
# The tail has read up to the end before retention runs, so retention
# removes nothing it has not printed: from here on it may print only what
# is appended, with no gap.
until_ok 90 cmp -s "$T/rl" "$T/rtail"
ok $? "tail -f printed all 100,000 lines before retention" ||
	diag "tail has $(wc -l <"$T/rtail") lines"
# A reader that stops inside what retention will remove: an open file that
# has read the first 1,000 lines (9,000 bytes) and reads on after it.
exec 3<"$MNT/ret/0/data"
dd bs=9000 count=1 iflag=fullblock status=none <&3 >"$T/rpart"
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
# Retention off again, so that the log start stays at $ls while what
# follows appends to the topic.
printf '{"retention.bytes":"-1"}' >"$MNT/ret/config.json"
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
seq -f "r-%06.0f" 100000 100099 >>"$MNT/ret/0/data"
seq -f "r-%06.0f" 0 100099 >"$T/rall"
# Every line appended after the tail started, once each, in order: what
# it printed before retention and the 100 appended after it, no gap, no
# duplicate.
until_ok 90 grep -qx r-100099 "$T/rtail"
cmp -s "$T/rall" "$T/rtail"
st=$?
ok $st "tail -f started before retention printed r-000000 to r-100099, each once, in order"
if [ $st -ne 0 ]; then
	diag "tail has $(wc -l <"$T/rtail") lines, $(sort "$T/rtail" | uniq -d | wc -l) repeated," \
		"$(sort "$T/rtail" | uniq | comm -23 "$T/rall" - | wc -l) missing"
	cmp "$T/rall" "$T/rtail" 2>&1 | sed 's/^/# /'
fi
# The paused reader. What it had read stays read; a segment it holds it
# may finish (retention.c, DELETION: a segment goes at its last unref);
# then it continues at the first record kept (README: a read before the
# log start is served from it), and follows what is appended. So it
# prints r-000000 to some r-(K-1), K >= 1000, then (if K < the log start)
# the log start onwards: one gap at most, only of lines retention removed
# before the reader got to them, and no line twice.
cat <&3 >>"$T/rpart"
seq -f "r-%06.0f" 100100 100149 >>"$MNT/ret/0/data"
cat <&3 >>"$T/rpart"
exec 3<&-
# Its gap ("r-K to r-L", or "none"), or "bad line N" at the first line out of place.
gap=$(awk -v ls="$ls" -v last=100149 '
	{ n = substr($0, 3) + 0 }
	NR == 1 { if ($0 != "r-000000") { bad = NR; exit } prev = n; next }
	n == prev + 1 { prev = n; next }
	{ k = prev + 1; gaps++
	  if (gaps > 1 || k < 1000 || k >= ls || n != ls) { bad = NR; exit }
	  prev = n }
	END { if (!bad && prev != last) bad = NR
	      if (bad) print "bad line " bad
	      else if (gaps) printf "r-%06d to r-%06d\n", k, ls - 1
	      else print "none" }' "$T/rpart")
case "$gap" in bad*) st=1 ;; *) st=0 ;; esac
ok $st "a reader stopped at r-001000 reads on (its gap: $gap)," \
	"then from the log start r-$(printf %06d "$ls") to r-100149, each line once" ||
	diag "reader has $(wc -l <"$T/rpart") lines; $gap: $(sed -n "${gap##* }p" "$T/rpart")"

# Kafka: offset 0 is below the log start; with auto.offset.reset=earliest
# kcat goes on at the log start and reads every record kept, once.
lim 60 kcat -b "$BROKER" -C -t ret -o 0 -X auto.offset.reset=earliest -e -q -f '%o %s\n' \
	>"$T/roffs" 2>"$T/rerr"
seq "$ls" 100149 | paste -d ' ' - <(tail -n +$((ls + 1)) "$T/rl"; seq -f "r-%06.0f" 100000 100149) \
	>"$T/roffs.want"
cmp -s "$T/roffs.want" "$T/roffs"
ok $? "a Kafka consumer asking for offset 0 reads offsets $ls to 100149, each once" ||
	{ diag_file "$T/rerr"; diag "first $(head -n 1 "$T/roffs"), $(wc -l <"$T/roffs") records"; }

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
