#!/bin/bash
# search/ on a real mount: MNT/<topic>/search/<query> and
# MNT/<topic>/<p>/search/<query> read as records.jsonl lines, over indexed
# segments and the WAL tail; ls of search/ is empty; a bad query fails
# open() with EINVAL and a message in the daemon's log; a line appended a
# moment ago is found; rm -r of the topic removes its indexes; with
# search.index=false (no index builder) the daemon stops cleanly.
. "$(dirname "$0")/../fs/lib.sh"

fs_start --set wal.segment.bytes=65536 --set wal.seal.ms=0 --set default.partitions=2 --fsync never
T0=$MNT/s
check "mkdir s (two partitions)" mkdir "$T0"
check "topic s lists search/" test -d "$T0/search"
check "partition 0 lists search/" test -d "$T0/0/search"
check "ls search/ is empty" test -z "$(ls -A "$T0/search")"
check "ls of a partition shows search" sh -c "ls '$T0/0' | grep -qx search"

# About 300 KiB of lines: several sealed, indexed segments and a tail.
awk -v n=6000 'BEGIN { split("alpha bravo charlie delta echo foxtrot golf hotel india juliet", w, " ");
	srand(7); for (i = 1; i <= n; i++) { l = "line" i; for (k = 0; k < 5; k++) l = l " " w[int(rand() * 10) + 1];
	if (i % 1000 == 0) l = l " rareword"; print l } }' >"$T/lines"
# Three appends: the WAL rotates past wal.segment.bytes between them, and
# the sealed files become indexed segments.
split -l 2000 "$T/lines" "$T/part."
# The clock is let pass a millisecond between them, so that each append's
# records have a later timestamp than the one's before (since:/until:).
check "lines appended to s/0/data" sh -c "for f in '$T'/part.*; do cat \"\$f\" >>'$T0/0/data' || exit 1;
	t=\$(date +%s%3N); while [ \"\$(date +%s%3N)\" -le \"\$t\" ]; do :; done; done"
for _ in $(seq 100); do
	ls "$DATA"/segments/*/0/*.seg.fts >/dev/null 2>&1 && break
	sleep 0.1
done
nfts=$(ls "$DATA"/segments/*/0/*.seg.fts 2>/dev/null | wc -l)
check "segments were indexed ($nfts indexes)" test "$nfts" -ge 1
ib=$(sed -n 's/.*"index_bytes": \([0-9]*\).*/\1/p' "$T0/0/info.json")
check "info.json shows index_bytes ($ib)" test "${ib:-0}" -gt 0
bv=$(sed -n 's/.*"binary_values": \([0-9]*\).*/\1/p' "$T0/0/info.json")
check "info.json shows binary_values, 0 for text lines ($bv)" test "${bv:-x}" = 0

# One word, two words: the JSON lines of records.jsonl that grep -w finds.
for q in rareword "golf hotel" "alpha india"; do
	set -- $q
	if [ $# -eq 1 ]; then
		grep -w -e "$1" "$T0/0/records.jsonl" >"$T/want"
	else
		grep -w -e "$1" "$T0/0/records.jsonl" | grep -w -e "$2" >"$T/want"
	fi
	cat "$T0/0/search/$q" >"$T/got"
	check "s/0/search/$q = grep -w of records.jsonl ($(wc -l <"$T/want") lines)" \
		cmp -s "$T/got" "$T/want"
done
check "topic-wide search finds the same records" \
	sh -c "[ \$(wc -l <'$T0/search/rareword') -eq 6 ]"
check "limit:2" sh -c "[ \$(wc -l <'$T0/0/search/golf limit:2') -eq 2 ]"
cat "$T0/0/search/\"line1000 golf\" OR \"line1000 hotel\"" >"$T/got"
grep -E '"value":"line1000 (golf|hotel)( |")' "$T0/0/records.jsonl" >"$T/want"
check "phrase and OR syntax ($(wc -l <"$T/want") lines)" sh -c "test -s '$T/want' && cmp -s '$T/got' '$T/want'"
n=$(wc -l <"$T0/0/search/line59*")
check "prefix line59* finds 111 lines ($n)" test "$n" -eq 111

# since:/until: in the query, against records.jsonl filtered by timestamp
# (rareword: lines 1000, 2000 in the first append; 3000, 4000; 5000, 6000).
ts_of() { sed -n "s/^{\"offset\":[0-9]*,\"timestamp\":\([0-9]*\),.*\"value\":\"line$1 .*/\1/p" "$T0/0/records.jsonl"; }
in_range() { grep -w -e "$1" "$T0/0/records.jsonl" | awk -v lo="$2" -v hi="$3" '{
	match($0, /"timestamp":[0-9]+/); ts = substr($0, RSTART + 12, RLENGTH - 12) + 0;
	if (ts >= lo && (hi < 0 || ts < hi)) print }'; }
lo=$(ts_of 3000) hi=$(ts_of 5000) first=$(ts_of 1000)
check "the appends' timestamps differ ($first < $lo < $hi)" test "${first:-0}" -lt "${lo:-0}" -a "${lo:-0}" -lt "${hi:-0}"
in_range rareword "$lo" "$hi" >"$T/want"
cat "$T0/0/search/rareword since:$lo until:$hi" >"$T/got"
check "since:$lo until:$hi = those of grep -w in the range (2 of 6)" \
	sh -c "[ \$(wc -l <'$T/want') -eq 2 ] && cmp -s '$T/got' '$T/want'"
in_range rareword "$lo" -1 >"$T/want"
cat "$T0/0/search/rareword since:$lo" >"$T/got"
check "since: alone (4 of 6)" sh -c "[ \$(wc -l <'$T/want') -eq 4 ] && cmp -s '$T/got' '$T/want'"
in_range golf 0 "$hi" >"$T/want"
cat "$T0/0/search/golf until:$hi" >"$T/got"
n=$(grep -cw golf "$T0/0/records.jsonl")
check "until: alone, a common word ($(wc -l <"$T/want") of $n)" \
	sh -c "[ \$(wc -l <'$T/want') -gt 0 ] && [ \$(wc -l <'$T/want') -lt $n ] && cmp -s '$T/got' '$T/want'"
n=$(wc -l <"$T0/search/rareword since:$lo until:$hi")
check "topic-wide since:/until: (2)" test "$n" -eq 2

echo "freshword just now" >>"$T0/1/data"
check "a line appended a moment ago is found" \
	sh -c "grep -q '\"value\":\"freshword just now\"' '$T0/search/freshword'"

expect_errno "a bad query fails open() with EINVAL" "Invalid argument" cat "$T0/search/foo AND ("
check "the daemon logs why" grep -q "s/search/foo AND (: bad query" "$T/chronikd.log"
expect_errno "an unknown column fails with EINVAL" "Invalid argument" cat "$T0/0/search/nosuch:foo"
expect_errno "a query file is read-only" "Permission denied" sh -c "echo x >'$T0/search/alpha'"

check "rm -r s" rm -r "$T0"
check "its indexes are gone" sh -c "! ls '$DATA'/segments/*/*/*.fts 2>/dev/null | grep -q ."

# With search.index=false chronikd has no index builder: it still stops
# cleanly (exit 0, the data directory closed).
daemon_stop
st=$?
check "the daemon stopped (exit $st)" test "$st" -eq 0
unmount "$MNT"
: >"$T/chronikd.log"
fs_start --set search.index=false --fsync never
check "mkdir u with search.index=false" mkdir "$MNT/u"
check "a line appended" sh -c "echo 'unindexed word' >>'$MNT/u/0/data'"
check "search finds it (scanned)" sh -c "grep -q unindexed '$MNT/u/search/word'"
daemon_stop
st=$?
check "with search.index=false it stops cleanly (exit $st, want 0)" test "$st" -eq 0
check "... and closes the data directory" grep -q "closed" "$T/chronikd.log"
done_testing
