#!/bin/bash
# The raw view read from segments of every compression.type (none, lz4,
# zstd, gzip, snappy): cat, and dd skip= at each batch boundary - 1, + 0
# and + 1 (the boundaries as `chronik dump` lists them in the segment
# files), byte for byte against what was written.
. "$(dirname "$0")/lib.sh"

CHRONIK=${3:-}
if [ ! -x "$CHRONIK" ]; then
	echo "1..0 # SKIP no chronik binary given"
	exit 0
fi
export LC_ALL=C

# Small WAL files, sealed soon: everything written ends up in segments.
fs_start --set wal.segment.bytes=1048576 --set wal.seal.ms=200
REF=$T/ref
# Lines of 0 to 2999 bytes, about 2 MB.
awk 'BEGIN { for (i = 0; i < 1500; i++) { n = (i * 7919) % 3000; s = sprintf("%d:", i);
	while (length(s) < n) s = s "abcdefghijklmnopqrstuvwxyz"; print substr(s, 1, n) } }' >"$REF"
size=$(stat -c %s "$REF")
# starts: line k's raw position on line k + 1.
awk '{ print s; s += length($0) + 1 }' "$REF" >"$T/starts"

codecs="none lz4 zstd gzip snappy"
for c in $codecs; do
	mkdir "$MNT/$c"
	printf '{"compression.type":"%s"}' "$c" >"$MNT/$c/config.json"
	# Writes of 30,000 bytes: one batch each (lz4 and the others merge
	# them up to 64 KiB); lines cut by a write wait for the next.
	dd if="$REF" of="$MNT/$c/0/data" bs=30000 oflag=append conv=notrunc status=none
done

# Until every partition is indexed: no batch left in the WAL.
indexed() {
	local c
	for c in $codecs; do
		grep -q '"batches": 0,' "$MNT/$c/0/info.json" || return 1
	done
}
for _ in $(seq 600); do
	indexed && break
	sleep 0.1
done
check "every topic is indexed" indexed

# bounds C: the raw positions of the batches in C's segments, one a line
# (the segments' dump goes to dump.C).
bounds() {
	local id f
	id=$("$CHRONIK" --data "$DATA" segments "$1/0" | sed -n 's/^topic_id: \([0-9]*\) .*/\1/p')
	[ -n "$id" ] || return 1
	for f in "$DATA/segments/$id/0/"*.seg; do
		"$CHRONIK" dump "$f"
	done | tee "$T/dump.$1" |
		sed -n 's/^position: [0-9]* base_offset: \([0-9]*\) .*/\1/p' |
		awk 'NR == FNR { start[NR - 1] = $1; next } { print start[$1] }' "$T/starts" -
}

# Read bytes [at, at + 4096) of data and of the reference; 0 when equal.
same_at() {
	cmp -s <(dd if="$1" bs=4096 skip="$2" iflag=skip_bytes count=1 status=none) \
		<(dd if="$REF" bs=4096 skip="$2" iflag=skip_bytes count=1 status=none)
}

for c in $codecs; do
	D=$MNT/$c/0/data
	check "$c: cat reads back byte for byte" cmp -s "$D" "$REF"
	bounds "$c" >"$T/bounds.$c"
	n=$(wc -l <"$T/bounds.$c")
	check "$c: the segments hold many batches ($n)" test "$n" -ge 30
	check "$c: its segments' batches are $c, every one" \
		test "$(grep -c "codec: $c " "$T/dump.$c")" = "$n"
	bad=0
	while read -r b; do
		for d in -1 0 1; do
			at=$((b + d))
			[ "$at" -ge 0 ] && [ "$at" -lt "$size" ] || continue
			same_at "$D" "$at" || {
				bad=$((bad + 1))
				diag "$c: dd skip=$at differs"
			}
		done
	done <"$T/bounds.$c"
	ok $bad "$c: dd skip= at each batch boundary - 1, + 0, + 1"
done
done_testing
