#!/bin/bash
# Ranged reads, index first: a read of one record of a large remote
# segment fetches its header, its index (with the trailer) and the spans
# it reads (plus read-ahead), far fewer bytes than the segment; then every
# record still reads back in order through cat, dd skip= and Kafka.
. "$(dirname "$0")/lib.sh"

s3_start
KPORT=$(free_port)
# 8 MiB WAL files: one sealed file makes one segment of several MiB (a
# sequential read asks the segment for up to 1 MiB at a time, so a smaller
# one would be read nearly whole by one record's read).
cold_start --set wal.segment.bytes=8388608 --set wal.seal.ms=600000 --set log.level=debug --kafka "127.0.0.1:$KPORT"
remote_topic t 1
# 120000 lines of ~100 bytes (hex noise: lz4 leaves it about half as big).
awk 'BEGIN { srand(7); for (i = 0; i < 120000; i++) {
	s = sprintf("line-%06d-", i)
	for (j = 0; j < 11; j++) s = s sprintf("%08x", int(rand() * 4294967296))
	print s } }' >"$T/expect"
# In appends of 200 lines: batches (the index's spans) stay small.
split -l 200 "$T/expect" "$T/part."
for f in "$T"/part.*; do
	cat "$f" >>"$MNT/t/0/data"
done
check "the first segment is uploaded" until_ok 120 remote_at_least 1
# The biggest remote segment and its size.
seg_bytes=$(grep -o 'uploaded as [^ ]* ([0-9]* bytes)' "$T/chronikd.log" |
	sed 's/.*(\([0-9]*\) bytes)/\1/' | sort -n | tail -1)
diag "largest uploaded segment: $seg_bytes bytes"
check "it is a large segment (over 1 MiB)" test "${seg_bytes:-0}" -gt 1048576
fetched() { # bytes GET since the daemon started
	grep -o 'fetched bytes \[[0-9]*, [0-9]*)' "$T/chronikd.log" |
		sed 's/.*\[\([0-9]*\), \([0-9]*\))/\1 \2/' | awk '{s += $2 - $1} END {print s + 0}'
}
before=$(fetched)
# Line 1000: the first segment, far from its end.
pos=$(head -n 1000 "$T/expect" | wc -c)
want=$(sed -n 1001p "$T/expect")
got=$(lim 60 dd if="$MNT/t/0/data" bs=1 skip="$pos" count=${#want} status=none)
check "dd skip= reads one record of the remote segment" test "$got" = "$want"
one=$(( $(fetched) - before ))
diag "that read fetched $one bytes"
check "... fetching some bytes" test "$one" -gt 0
check "... and far fewer than the segment's $seg_bytes" test "$one" -lt $((seg_bytes / 4))
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "cat reads every record in order" cmp -s "$T/expect" "$T/got"
pos=$(head -n 30000 "$T/expect" | wc -c)
lim 60 dd if="$MNT/t/0/data" bs=4096 iflag=skip_bytes skip="$pos" status=none >"$T/got"
check "dd skip= to line 30000 reads from there to the end" cmp -s "$T/got" <(tail -n +30001 "$T/expect")
if command -v kcat >/dev/null; then
	lim 120 kcat -b "127.0.0.1:$KPORT" -C -t t -p 0 -o 1000 -e -q -f '%s\n' >"$T/kgot" 2>"$T/kcat.err"
	check "Kafka Fetch at offset 1000 reads every record from there" \
		cmp -s "$T/kgot" <(tail -n +1001 "$T/expect") || diag_file "$T/kcat.err"
fi
daemon_stop TERM
unmount "$MNT"
done_testing
