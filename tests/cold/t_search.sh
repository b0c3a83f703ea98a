#!/bin/bash
# chronik search beside the daemon over a topic whose older segments are
# held only in the object store. Without --remote a query that needs
# such a segment fails, naming the option; with --remote (and
# --endpoint, as chronikd's settings) it fetches what it reads into a
# private cache under TMPDIR, removed at exit, never DATA/cold-cache, and
# its offsets for a word are the ones grep -w finds among the appended
# lines (record i is line i + 1): in remote segments, local ones and the
# WAL tail alike.
. "$(dirname "$0")/lib.sh"

CHRONIK=$3
s3_start
cold_start --set remote.cache.bytes=1
remote_topic ts 20000

# 3000 records of ~100 bytes in 30 writes: about a dozen 32 KiB segments.
# "wombat" in a few records, "wombats" (another token) beside them.
rare="150 151 900 1700 2990"
for b in $(seq 0 29); do
	awk -v b="$b" -v rare=" $rare " 'BEGIN { srand(b + 1)
		for (i = b * 100; i < b * 100 + 100; i++) {
			s = sprintf("ts-%05d-", i)
			for (j = 0; j < 10; j++) s = s sprintf("%08x", int(rand() * 4294967296))
			if (index(rare, " " i " ")) s = s " wombat"
			else if (index(rare, " " (i - 1) " ")) s = s " wombats"
			print s } }' >"$T/chunk"
	cat "$T/chunk" >>"$MNT/ts/0/data"
	cat "$T/chunk" >>"$T/lines"
done
want=$(grep -nw wombat "$T/lines" | cut -d: -f1 | awk '{ print $1 - 1 }' | xargs)
check "grep -w finds the word in records $want" test "$want" = "$rare"

check "the first records holding the word are in remote segments" until_ok 60 remote_at 150 151 900 1700

# A fresh start with the daemon's cache emptied: whatever lands in it
# from now on would be the CLI's doing.
daemon_stop TERM
unmount "$MNT"
rm -rf "$DATA/cold-cache"
cold_start --set remote.cache.bytes=1
lim 60 "$CHRONIK" --data "$DATA" segments ts/0 >"$T/segs" 2>&1
diag "segments: $(grep -c 'where: remote' "$T/segs") remote, $(grep -c 'where: local' "$T/segs") local"
check "remote segments beside the daemon" grep -q 'where: remote' "$T/segs"

offsets() { grep -o '"offset":[0-9]*' "$1" | cut -d: -f2 | xargs; }
mkdir "$T/tmp"

lim 60 "$CHRONIK" --data "$DATA" search ts/0 wombat --jsonl >"$T/got" 2>"$T/err"
st=$?
check "without --remote: the query fails (exit $st)" test "$st" -eq 1
check "... naming the option" grep -q -- '--remote s3://BUCKET' "$T/err"
diag_file "$T/err"

S=(--remote s3://chronik/c1 --endpoint "http://127.0.0.1:$S3PORT")
TMPDIR=$T/tmp lim 120 "$CHRONIK" --data "$DATA" search ts/0 wombat --jsonl "${S[@]}" >"$T/got" 2>"$T/err"
st=$?
check "with --remote: exit 0 ($st)" test "$st" -eq 0
[ "$st" -eq 0 ] || diag_file "$T/err"
check "the offsets are grep's ($(offsets "$T/got"))" test "$(offsets "$T/got")" = "$want"
check "... the values too" cmp -s <(grep -w wombat "$T/lines") \
	<(sed 's/.*"value":"\([^"]*\)".*/\1/' "$T/got")
TMPDIR=$T/tmp lim 120 "$CHRONIK" --data "$DATA" search ts "wombat OR wombats" "${S[@]}" >"$T/got2" 2>"$T/err"
if ! cmp -s <(grep -wE 'wombat|wombats' "$T/lines") "$T/got2"; then
	diag_file "$T/err"
	diff <(grep -wE 'wombat|wombats' "$T/lines") "$T/got2" | head -8 >"$T/diff"
	diag_file "$T/diff"
fi
check "topic-wide, an OR: grep's lines" cmp -s <(grep -wE 'wombat|wombats' "$T/lines") "$T/got2"
check "the private cache is gone at exit" test -z "$(ls -A "$T/tmp")"
check "DATA/cold-cache holds no file the CLI fetched" \
	test "$(find "$DATA/cold-cache" -type f 2>/dev/null | wc -l)" -eq 0

# A store that does not answer: the query fails, and still leaves no cache.
TMPDIR=$T/tmp lim 120 "$CHRONIK" --data "$DATA" search ts/0 wombat --remote s3://chronik/c1 \
	--endpoint "http://127.0.0.1:$(free_port)" >/dev/null 2>"$T/err"
st=$?
check "with a store that is not there: exit 1 ($st)" test "$st" -eq 1
check "... and no cache left" test -z "$(ls -A "$T/tmp")"

daemon_stop TERM
unmount "$MNT"
done_testing
