#!/bin/bash
# Followers across segment/WAL boundaries while the indexer and background
# compaction run under them. One chronikd, small WAL files (16 KiB) sealed
# every 200 ms, so the indexer turns the WAL into segments over and over;
# a topic with cleanup.policy=compact and min.cleanable.dirty.ratio=0.01, so
# every indexer pass that leaves two or more segments compacts them.
#
# The stream. Records are numbered 0, 1, 2, ... in the order they are
# appended (one appender at a time, so record i gets offset i); each
# record's value is "v-<i>" (7 digits). They come in rounds of 400, each
# round from kcat (keyed, acks=all) and every fifth round also 20 lines by
# `echo >> data` (keyless). Keys:
#   - record i with i % 4 != 3: key "u-<i>", a key nobody else uses, so
#     compaction must keep it ("the followed records");
#   - record i with i % 4 == 3: key "k-<i % 32>", one of 8 keys that every
#     round rewrites, so compaction drops all but each key's newest version
#     in the cleaned segments ("the thinned records");
#   - filesystem lines: no key; compaction keeps a record without a key.
#
# What "every offset once" means here. A follower started from the start
# before the first append, reading while the indexer and compaction run:
#   1. sees every followed record and every keyless line exactly once;
#   2. sees every record at most once and in increasing order: the records
#      it sees, mapped to their numbers, strictly increase (a duplicated
#      batch at a segment/WAL boundary, or a re-read after a swap, breaks
#      it; so does a reordering);
#   3. misses only thinned records, i.e. offsets that compaction removed
#      (the Kafka consumer's offsets must equal the record numbers, and a
#      gap in them may hold only numbers i with i % 4 == 3);
#   4. sees the newest version of each thinned key (compaction keeps it).
# Both a Kafka consumer (kcat: librdkafka) and `tail -f data` follow, one
# of each from before the first append and one of each started halfway
# (reading from the start through compacted segments, then catching up); the
# test then checks that compaction really ran meanwhile (compacted
# segments, "gen" above 0, are listed) and that the thinned records were
# thinned (a consumer from the beginning afterwards reads fewer records than
# were appended, and still every followed one).
# Usage: follow_compact.sh KAFKA_SERVER CHRONIKD CHRONIK
. "$(dirname "$0")/lib.sh"

daemon_prologue "$@"

ROUNDS=30
PER=400
FS_LINES=20

plan 12
daemon_start --fsync never --set default.partitions=1 \
	--set wal.segment.bytes=16384 --set wal.seal.ms=200
ok $? "chronikd mounts and serves Kafka on $BROKER" || diag_file "$T/chronikd.log"

mkdir "$MNT/fc" &&
	printf '{"cleanup.policy":"compact","min.cleanable.dirty.ratio":"0.01","delete.retention.ms":"86400000"}' \
		>"$MNT/fc/config.json"
ok $? "topic fc with cleanup.policy=compact, min.cleanable.dirty.ratio=0.01"


tail -n +1 -f "$MNT/fc/0/data" >"$T/tail.out" 2>/dev/null &
bg+=($!)
lim 300 kcat -b "$BROKER" -C -t fc -o beginning -u -q -f '%o %k %s\n' >"$T/kc.out" 2>"$T/kc.err" &
bg+=($!)

# The appender; $T/expect lists "number key value" of every record appended
# (key "-" for a filesystem line).
: >"$T/expect"
i=0
prod_rc=0
for r in $(seq 1 "$ROUNDS"); do
	: >"$T/round"
	for _ in $(seq "$PER"); do
		if [ $((i % 4)) -eq 3 ]; then k="k-$((i % 32))"; else k="u-$i"; fi
		v=$(printf 'v-%07d' "$i")
		echo "$k:$v" >>"$T/round"
		echo "$i $k $v" >>"$T/expect"
		i=$((i + 1))
	done
	lim 30 kcat -b "$BROKER" -P -t fc -K: -z none -X acks=all -X linger.ms=5 \
		<"$T/round" 2>>"$T/prod.err" || prod_rc=1
	if [ $((r % 5)) -eq 0 ]; then
		: >"$T/round"
		for _ in $(seq "$FS_LINES"); do
			v=$(printf 'v-%07d' "$i")
			echo "$v" >>"$T/round"
			echo "$i - $v" >>"$T/expect"
			i=$((i + 1))
		done
		cat "$T/round" >>"$MNT/fc/0/data" || prod_rc=1
	fi
	# Late followers, from the beginning, halfway: they read through
	# compacted segments, then indexed ones, then the WAL, while the
	# appends and compaction go on.
	if [ "$r" -eq $((ROUNDS / 2)) ]; then
		tail -n +1 -f "$MNT/fc/0/data" >"$T/tail2.out" 2>/dev/null &
		bg+=($!)
		lim 300 kcat -b "$BROKER" -C -t fc -o beginning -u -q -f '%o %k %s\n' \
			>"$T/kc2.out" 2>/dev/null &
		bg+=($!)
	fi
	sleep 0.15
done
TOTAL=$i
ok $prod_rc "$TOTAL records appended in $ROUNDS rounds (kcat -K, echo >> data)" ||
	diag_file "$T/prod.err"

# Every follower must reach the last record (never thinned: a filesystem
# line, the last of round $ROUNDS).
last=$(printf 'v-%07d' $((TOTAL - 1)))
until_ok 90 grep -q -- "$last\$" "$T/kc.out"
st1=$?
until_ok 90 grep -qx -- "$last" "$T/tail.out"
st2=$?
until_ok 90 grep -q -- "$last\$" "$T/kc2.out"
st3=$?
until_ok 90 grep -qx -- "$last" "$T/tail2.out"
st4=$?
ok $((st1 || st2 || st3 || st4)) "all four followers reached record $((TOTAL - 1))" ||
	diag "kcat has $(wc -l <"$T/kc.out") lines, tail $(wc -l <"$T/tail.out"), late kcat $(wc -l <"$T/kc2.out"), late tail $(wc -l <"$T/tail2.out")"

# check KIND FILE: the rules of the header. FILE lines are "offset key
# value" (kcat) or "value" (tail). Prints a diagnostic and fails on the
# first broken rule.
check() {
	awk -v kind="$1" '
	FNR == NR { key[$1] = $2; val[$1] = $3; n = $1 + 1; next }
	{
		if (kind == "kafka") { off = $1; k = ($2 == "" ? "-" : $2); v = $NF }
		else { v = $0; off = -1; k = "" }
		if (v !~ /^v-[0-9]+$/) { print "# line " FNR ": not a record: " $0; bad = 1; exit }
		num = substr(v, 3) + 0
		if (kind == "kafka") {
			if (off != num) { print "# line " FNR ": offset " off " holds record " num; bad = 1; exit }
			if (NF == 2) k = "-"
			if (k != key[num]) { print "# offset " off ": key " k ", appended " key[num]; bad = 1; exit }
		}
		if (num <= prev && FNR > 1) { print "# line " FNR ": record " num " after " prev " (duplicate or reordered)"; bad = 1; exit }
		for (j = (FNR > 1 ? prev + 1 : 0); j < num; j++)
			if (key[j] !~ /^k-/) { print "# record " j " (key " key[j] ") missing before " num; bad = 1; exit }
		seen[num] = 1
		prev = num
	}
	END {
		if (bad) exit 1
		if (prev != n - 1) { print "# ends at " prev ", " n - 1 " appended"; exit 1 }
		# The newest version of each thinned key.
		for (j = n - 1; j >= 0; j--)
			if (key[j] ~ /^k-/ && !(key[j] in newest)) {
				newest[key[j]] = j
				if (!(j in seen)) { print "# newest " key[j] " (record " j ") not seen"; exit 1 }
			}
	}' "$T/expect" "$2"
}

check kafka "$T/kc.out" >"$T/kc.check"
ok $? "the Kafka consumer saw every followed record once, in order, with its offset; gaps only at thinned keys" ||
	diag_file "$T/kc.check"
check tail "$T/tail.out" >"$T/tail.check"
ok $? "tail -f saw every followed record once, in order; gaps only at thinned keys" ||
	diag_file "$T/tail.check"
check kafka "$T/kc2.out" >"$T/kc2.check"
ok $? "so did a Kafka consumer started halfway from the beginning ($(wc -l <"$T/kc2.out") records)" ||
	diag_file "$T/kc2.check"
check tail "$T/tail2.out" >"$T/tail2.check"
ok $? "and a tail -f started halfway ($(wc -l <"$T/tail2.out") records)" ||
	diag_file "$T/tail2.check"

# Compaction did run meanwhile, and did thin: compacted segments are
# listed (their files are named <base>.g<gen>.seg, registry.h).
until_ok 90 test "$(sed -n 's/.*"wal_bytes": \([0-9]*\).*/\1/p' "$MNT/fc/0/info.json")" = 0
lim 60 "$CHRONIK" --data "$DATA" segments fc/0 >"$T/segs" 2>"$T/segs.err"
nseg=$(grep -c '^file: ' "$T/segs")
ngen=$(grep -c '^file: [0-9]*\.g[0-9]*\.seg' "$T/segs")
[ "$nseg" -gt 1 ] && [ "$ngen" -gt 0 ]
ok $? "the indexer and compaction ran: $nseg segments, $ngen of them compacted" ||
	{ diag_file "$T/segs"; diag_file "$T/segs.err"; }
lim 60 kcat -b "$BROKER" -C -t fc -o beginning -e -q -f '%o %k %s\n' >"$T/after.out" 2>/dev/null
check kafka "$T/after.out" >"$T/after.check"
ok $? "a consumer from the beginning afterwards: every followed record, gaps only at thinned keys" ||
	diag_file "$T/after.check"
kept=$(wc -l <"$T/after.out")
[ "$kept" -lt "$TOTAL" ]
ok $? "compaction thinned the rewritten keys ($kept of $TOTAL records left)"
followed=$(awk '$2 !~ /^k-/' "$T/expect" | wc -l)
[ "$(awk '$2 !~ /^k-/' "$T/after.out" | wc -l)" -eq "$followed" ]
ok $? "and kept all $followed followed records"
