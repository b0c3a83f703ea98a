#!/bin/bash
# kcat against the listener: metadata, produce and consume 10,000 lines with
# every compression codec, and a consumer group that commits and resumes.
. "$(dirname "$0")/lib.sh"

if ! command -v kcat >/dev/null; then
	echo "1..0 # SKIP kcat not installed"
	exit 0
fi

plan 18
server_start --partitions 1

lim 30 kcat -b "$BROKER" -L >"$T/meta" 2>"$T/meta.err"
st=$?
grep -q "broker 1 at 127.0.0.1:$PORT" "$T/meta"
ok $(( st || $? )) "kcat -L lists broker 1 at the bound address"

seq 1 10000 | sed 's/^/line-/' >"$T/lines"
for codec in none gzip snappy lz4 zstd; do
	topic=codec-$codec
	lim 60 kcat -b "$BROKER" -P -t "$topic" -z "$codec" -X acks=all <"$T/lines" 2>"$T/p.err"
	ok $? "kcat -P -z $codec of 10,000 lines" || diag_file "$T/p.err"
	lim 60 kcat -b "$BROKER" -C -t "$topic" -o beginning -e -q >"$T/got" 2>"$T/c.err"
	st=$?
	cmp -s "$T/lines" "$T/got"
	ok $(( st || $? )) "kcat -C -e reads the $codec lines back identical" ||
		{ diag "got $(wc -l <"$T/got") lines"; diag_file "$T/c.err"; }
done

# Offsets: every record numbered 0..9999, in order.
lim 60 kcat -b "$BROKER" -C -t codec-zstd -o beginning -e -q -f '%o\n' >"$T/offs" 2>/dev/null
seq 0 9999 | cmp -s - "$T/offs"
ok $? "offsets are dense from 0 to 9999"

lim 30 kcat -b "$BROKER" -L -t codec-gzip >"$T/meta2" 2>&1
grep -q 'topic "codec-gzip" with 1 partitions' "$T/meta2"
ok $? "metadata names a produced topic"

# Consumer group: consume everything with commits, then a second run of the
# same group sees only what was produced after.
seq 1 100 | sed 's/^/g1-/' >"$T/g1"
seq 1 50 | sed 's/^/g2-/' >"$T/g2"
lim 30 kcat -b "$BROKER" -P -t grp <"$T/g1" 2>/dev/null
group_consume() {
	# -G group consume until the expected count, then exit (kcat -G does
	# not stop at the end by itself; -e works with the balanced consumer).
	lim 60 kcat -b "$BROKER" -G cg1 -X auto.offset.reset=earliest \
		-X enable.auto.commit=true -X auto.commit.interval.ms=100 \
		-e -q -f '%s\n' grp >"$1" 2>"$T/g.err"
}
group_consume "$T/got1"
st=$?
cmp -s "$T/g1" "$T/got1"
ok $(( st || $? )) "kcat -G consumes the 100 records" ||
	{ diag "got $(wc -l <"$T/got1") lines"; diag_file "$T/g.err"; }
lim 30 kcat -b "$BROKER" -P -t grp <"$T/g2" 2>/dev/null
group_consume "$T/got2"
st=$?
cmp -s "$T/g2" "$T/got2"
ok $(( st || $? )) "a second run of the group resumes at the committed offset" ||
	{ diag "got $(wc -l <"$T/got2") lines"; diag_file "$T/g.err"; }

# The committed offset survives a restart.
server_stop
ok $? "server stops cleanly"
server_start --partitions 1
group_consume "$T/got3"
st=$?
[ ! -s "$T/got3" ]
ok $(( st || $? )) "after a restart the group has nothing left to read" ||
	{ diag "got $(wc -l <"$T/got3") lines"; diag_file "$T/g.err"; }

lim 30 kcat -b "$BROKER" -C -t grp -o beginning -e -q >"$T/all" 2>/dev/null
cat "$T/g1" "$T/g2" | cmp -s - "$T/all"
ok $? "the data survives the restart"

done_testing
