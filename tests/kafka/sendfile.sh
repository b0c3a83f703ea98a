#!/bin/bash
# Zero-copy Fetch end to end: kcat and confluent-kafka-python consume
# every record once, over Fetch responses sent with sendfile(2) from
# segments and the WAL while the indexer seals and indexes under them
# (wal.segment.bytes 256 KiB, wal.seal.ms 200), and a server with
# --no-sendfile (the copy path) over the same data directory reads the
# same records at the same offsets.
. "$(dirname "$0")/lib.sh"

if ! command -v kcat >/dev/null; then
	echo "1..0 # SKIP kcat not installed"
	exit 0
fi

plan 9
server_start --partitions 2 --set wal.segment.bytes=262144 --set wal.seal.ms=200

pad=$(printf '%060d' 0 | tr 0 x)
seq 1 200000 | sed "s/^/rec-/; s/\$/-$pad/" >"$T/lines1"
seq 200001 250000 | sed "s/^/rec-/; s/\$/-$pad/" >"$T/lines2"
cat "$T/lines1" "$T/lines2" | sort >"$T/want"
lim 120 kcat -b "$BROKER" -P -t sf -X acks=all <"$T/lines1" 2>"$T/p.err"
ok $? "kcat -P of 200,000 records" || diag_file "$T/p.err"
sleep 1 # the indexer turns the sealed WAL files into segments meanwhile
lim 120 kcat -b "$BROKER" -P -t sf -X acks=all <"$T/lines2" 2>"$T/p.err"
ok $? "kcat -P of 50,000 more" || diag_file "$T/p.err"

nseg=$(find "$T/data/segments" -name '*.seg' 2>/dev/null | wc -l)
ok $(( nseg == 0 )) "segments were written under the producer ($nseg)"
lim 120 kcat -b "$BROKER" -C -t sf -o beginning -e -q -f '%p %o %s\n' >"$T/on" 2>"$T/c.err"
st=$?
cut -d' ' -f3 "$T/on" | sort | cmp -s - "$T/want"
ok $(( st || $? )) "kcat -C reads every record once (sendfile)" ||
	{ diag "got $(wc -l <"$T/on") lines"; diag_file "$T/c.err"; }
# Offsets dense per partition.
bad=$(sort -k1,1n -k2,2n "$T/on" | awk '{ if (($1 in n) && $2 != n[$1] + 1) b++; n[$1] = $2 }
	END { print b + 0 }')
ok $(( bad != 0 )) "offsets dense in each partition"

if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null; then
	lim 120 /usr/bin/python3 - "$BROKER" >"$T/py" 2>"$T/py.err" <<'PY'
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "broker.address.family": "v4",
              "group.id": "sf", "enable.auto.commit": False})
c.assign([TopicPartition("sf", p, 0) for p in (0, 1)])
n = 0
idle = 0
out = sys.stdout
while n < 250000 and idle < 100:
    msgs = c.consume(10000, 0.1)
    idle = idle + 1 if not msgs else 0
    for m in msgs:
        if m.error():
            sys.stderr.write(str(m.error()) + "\n")
            continue
        out.write(m.value().decode() + "\n")
        n += 1
c.close()
PY
	st=$?
	sort "$T/py" | cmp -s - "$T/want"
	ok $(( st || $? )) "confluent-kafka-python reads every record once (sendfile)" ||
		{ diag "got $(wc -l <"$T/py") lines"; diag_file "$T/py.err"; }
else
	ok 0 "# SKIP confluent-kafka-python not installed (python3-confluent-kafka)"
fi

server_stop
ok $? "server stops cleanly"
server_start --partitions 2 --no-sendfile
lim 120 kcat -b "$BROKER" -C -t sf -o beginning -e -q -f '%p %o %s\n' >"$T/off" 2>"$T/c.err"
st=$?
ok $st "kcat -C over the copy path (--no-sendfile)" || diag_file "$T/c.err"
sort "$T/on" | cmp -s - <(sort "$T/off")
ok $? "the same records at the same offsets as over sendfile"

done_testing
