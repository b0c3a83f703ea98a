#!/bin/bash
# Lookups that land in remote segments not in the cache: Kafka ListOffsets
# by timestamp (kcat -o s@TS) and full-text search (MNT/ts/0/search/WORD)
# fetch the segments from the store
# and answer exactly as from local ones. Records are appended through
# records.jsonl with explicit timestamps, one distinct timestamp per record
# (record i at BASE + 10 i), and a rare word in a few records of the first
# segments.
. "$(dirname "$0")/lib.sh"

s3_start
cold_start --set remote.cache.bytes=1
remote_topic ts 20000

# 3000 records of ~100 bytes in 30 writes: about a dozen 32 KiB segments.
# An hour ago, so that retention (7 days) keeps them.
base=$(( $(date +%s) * 1000 - 3600000 ))
rare="150 151 900 1700" # the records holding the word "wombat"
for b in $(seq 0 29); do
	awk -v b="$b" -v base="$base" -v rare=" $rare " 'BEGIN { srand(b + 1)
		for (i = b * 100; i < b * 100 + 100; i++) {
			s = sprintf("ts-%05d-", i)
			for (j = 0; j < 10; j++) s = s sprintf("%08x", int(rand() * 4294967296))
			# "wombats" (another token) in their neighbours: a
			# search matching by substring would find them too.
			if (index(rare, " " i " ")) s = s " wombat"
			else if (index(rare, " " (i - 1) " ")) s = s " wombats"
			printf "{\"timestamp\":%.0f,\"value\":\"%s\"}\n", base + 10 * i, s } }' >"$T/chunk"
	cat "$T/chunk" >>"$MNT/ts/0/records.jsonl"
done
# The uploads go on one segment after another: wait for the ones the
# lookups below land in (offsets 700, 1200 and the rare word's records).
check "segments are uploaded, up to the last record looked up" until_ok 60 remote_at 700 1200 $rare

# where OFFSET: local or remote, the segment holding OFFSET (by chronik
# segments beside the daemon), empty when none does.
where() {
	awk -v o="$1" '$1 == "file:" && $4 <= o && o <= $6 { for (i = 1; i < NF; i++) if ($i == "where:") print $(i + 1) }' "$T/segs"
}

# A fresh start with the cache emptied: every remote read goes to the store.
daemon_stop TERM
unmount "$MNT"
rm -rf "$DATA/cold-cache"
KPORT=$(free_port)
cold_start --set remote.cache.bytes=1 --set log.level=debug --kafka "127.0.0.1:$KPORT"
lim 60 "$3" --data "$DATA" segments ts/0 >"$T/segs" 2>&1
diag "segments: $(grep -c 'where: remote' "$T/segs") remote, $(grep -c 'where: local' "$T/segs") local"
fetched() { grep -c 'fetched bytes \[' "$T/chronikd.log"; }

# ListOffsets by time: the first offset whose timestamp is at or after TS.
if command -v kcat >/dev/null; then
	for k in 700 1200; do
		check "offset $k lies in a remote segment" test "$(where "$k")" = remote
		# Its own timestamp, then one between it and the record before
		# (the first lookup fetches the segment; the cache holds it).
		before=$(fetched)
		for ts in $((base + 10 * k)) $((base + 10 * k - 5)); do
			got=$(lim 30 kcat -b "127.0.0.1:$KPORT" -C -t ts -p 0 -o "s@$ts" -c 1 -q -f '%o %T\n' 2>"$T/kcat.err")
			check "ListOffsets at timestamp $ts answers offset $k (got: $got)" \
				test "$got" = "$k $((base + 10 * k))"
			[ "$got" = "$k $((base + 10 * k))" ] || diag_file "$T/kcat.err"
		done
		check "... fetched from the store" test "$(fetched)" -gt "$before"
	done
fi

# Search: exactly the records holding the word, in offset order.
for o in $rare; do
	check "record $o (the word) lies in a remote segment" test "$(where "$o")" = remote
done
: >"$T/want"
for o in $rare; do
	printf 'ts-%05d-\n' "$o" >>"$T/want"
done
before=$(fetched)
lim 60 cat "$MNT/ts/0/search/wombat" >"$T/found" 2>"$T/search.err"
check "the mount's search finds exactly the records holding the word" \
	cmp -s "$T/want" <(sed 's/.*"value":"\(ts-[0-9]*-\).*/\1/' "$T/found")
check "... at their offsets" test "$(grep -o '"offset":[0-9]*' "$T/found" | cut -d: -f2 | xargs)" = "$rare"
check "... fetched from the store" test "$(fetched)" -gt "$before"
# chronik search beside the daemon reads remote segments with --remote:
# cold-search.

daemon_stop TERM
unmount "$MNT"
done_testing
