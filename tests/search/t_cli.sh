#!/bin/bash
# chronik search TOPIC[/PARTITION] QUERY [--since] [--until] [--limit]
# [--jsonl]; verify checks every segment's index (a missing one is a note,
# a damaged one a problem); info shows index_bytes and binary_values.
. "$(dirname "$0")/../cli/lib.sh"

C() { "$CHRONIK" --data "$D" "$@"; }
check() { local desc=$1; shift; if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi; }

C topic create s --partitions 2 >/dev/null
awk 'BEGIN { for (i = 1; i <= 4000; i++) print "row" i " " (i % 3 ? "common" : "tertius") (i % 500 ? "" : " uncommon") }' >"$T/lines"
# Each produce's records share the clock's time at their append; the clock
# is let pass a millisecond between produces, so the three chunks of s/0
# have distinct timestamps and a time range can cut between them.
for k in 0 1 2; do
	sed -n "$((k * 1000 + 1)),$((k * 1000 + 1000))p" "$T/lines" | C --set wal.segment.bytes=16384 produce s/0
	t=$(date +%s%3N)
	while [ "$(date +%s%3N)" -le "$t" ]; do :; done
done
tail -n 1000 "$T/lines" | C --set wal.segment.bytes=32768 produce s/1
# 7 values that are not text (a control byte, invalid UTF-8), then filler
# batches that push them out of the WAL into segments: info counts them.
{ for i in 1 2 3 4; do printf 'bin\001ary %d\n' "$i"; done
  for i in 1 2 3; do printf 'bad\377utf8 %d\n' "$i"; done; } | C --set wal.segment.bytes=16384 produce s/1
for k in 1 2; do
	awk 'BEGIN { for (i = 1; i <= 2000; i++) print "filler" i }' | C --set wal.segment.bytes=16384 produce s/1
done
nseg=$(C segments s/0 | grep -c '\.seg')
check "partition 0 has segments ($nseg)" test "$nseg" -ge 2

C search s/0 uncommon >"$T/got"
head -n 3000 "$T/lines" | grep -w uncommon >"$T/want"
check "search s/0 uncommon = grep -w ($(wc -l <"$T/want") lines)" cmp -s "$T/got" "$T/want"
n=$(C search s "tertius uncommon" | wc -l)
check "topic-wide two-word AND ($n)" test "$n" -eq "$(grep -w tertius "$T/lines" | grep -cw uncommon)"
n=$(C search s common --limit 5 | wc -l)
check "--limit 5" test "$n" -eq 5
n=$(C search s common --until 1 | wc -l)
check "--until 1 excludes everything" test "$n" -eq 0
# --since/--until against the timestamps of the hits (uncommon: rows 500,
# 1000 in chunk 0; 1500, 2000 in chunk 1; 2500, 3000 in chunk 2).
C search s/0 uncommon --jsonl >"$T/all"
ts_of() { sed -n "s/^{\"offset\":[0-9]*,\"timestamp\":\([0-9]*\),.*\"value\":\"row$1 .*/\1/p" "$T/all"; }
lo=$(ts_of 1500) hi=$(ts_of 2500) first=$(ts_of 500)
check "the chunks' timestamps differ ($first < $lo < $hi)" test "${first:-0}" -lt "${lo:-0}" -a "${lo:-0}" -lt "${hi:-0}"
C search s/0 uncommon --since "$lo" --until "$hi" >"$T/got"
sed -n 1001,2000p "$T/lines" | grep -w uncommon >"$T/want"
check "--since --until: the 2 of 6 hits in chunk 1" sh -c "[ \$(wc -l <'$T/want') -eq 2 ] && cmp -s '$T/got' '$T/want'"
C search s/0 uncommon --since "$lo" >"$T/got"
sed -n 1001,3000p "$T/lines" | grep -w uncommon >"$T/want"
check "--since alone: the 4 hits from chunk 1 on" sh -c "[ \$(wc -l <'$T/want') -eq 4 ] && cmp -s '$T/got' '$T/want'"
C search s/0 uncommon --until "$lo" >"$T/got"
head -n 1000 "$T/lines" | grep -w uncommon >"$T/want"
check "--until alone: the 2 hits of chunk 0" sh -c "[ \$(wc -l <'$T/want') -eq 2 ] && cmp -s '$T/got' '$T/want'"
C search s/1 uncommon --jsonl >"$T/got"
check "--jsonl prints records.jsonl lines" \
	grep -q '^{"offset":[0-9]*,"timestamp":[0-9]*,"key":null,"value":"row3500 common uncommon","headers":\[\]}$' "$T/got"
C search s "foo AND (" >/dev/null 2>"$T/err"
check "a bad query is a usage error (exit 2)" test $? -eq 2
check "... saying why" grep -q "bad query" "$T/err"

check "verify: ok with every index" sh -c "'$CHRONIK' --data '$D' verify >/dev/null 2>&1"
ib=$(C info s/0 | sed -n 's/.*"index_bytes": \([0-9]*\).*/\1/p')
check "info shows index_bytes ($ib)" test "${ib:-0}" -gt 0
bv=$(C info s/1 | sed -n 's/.*"binary_values": \([0-9]*\).*/\1/p')
check "info s/1 counts the 7 binary values ($bv)" test "${bv:-x}" = 7
bv=$(C info s/0 | sed -n 's/.*"binary_values": \([0-9]*\).*/\1/p')
check "info s/0: none ($bv)" test "${bv:-x}" = 0
f=$(ls "$D"/segments/*/0/*.seg.fts | head -n 1)
# A damaged leaf of the index's b-tree (its header and meta intact):
# queries would silently miss records; verify's integrity-check finds it.
cp "$f" "$T/fts.good"
/usr/bin/python3 - "$f" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE records_data SET block = zeroblob(length(block)) WHERE id = (SELECT max(id) FROM records_data)")
db.commit()
PY
C verify >/dev/null 2>"$T/err"
check "verify: a damaged index leaf is a problem" test $? -eq 1
check "... found by the integrity-check" grep -q "seg.fts: integrity-check" "$T/err"
cp "$T/fts.good" "$f"
check "verify: ok again once the index is whole" sh -c "'$CHRONIK' --data '$D' verify >/dev/null 2>&1"
mv "$f" "$f.away"
C verify >"$T/out" 2>"$T/err"
check "verify: a missing index is no problem (exit 0)" test $? -eq 0
check "... but a note" grep -qx "verify: note: 1 segment not indexed yet (searched by scanning; chronikd's index builder builds it)" "$T/out"
check "... and nothing on stderr" test ! -s "$T/err"
C search s/0 uncommon >"$T/got"
head -n 3000 "$T/lines" | grep -w uncommon >"$T/want"
check "search without that index still = grep -w (the segment is scanned)" cmp -s "$T/got" "$T/want"
printf 'garbage' >"$f"
C search s/0 uncommon >"$T/got"
check "... and with a damaged one" cmp -s "$T/got" "$T/want"
C verify >/dev/null 2>"$T/err"
check "verify: an index file that is not an index is a problem" test $? -eq 1
check "... named" grep -q "seg.fts: unreadable" "$T/err"
done_testing
