#!/bin/bash
# Cross-path: the filesystem and Kafka clients on one chronikd see the same
# records. echo into a partition's data file and read it with kcat; produce
# with kcat and read it with cat, tail -f and records.jsonl; 1200 lines per
# codec; headers both ways between records.jsonl and kcat; `chronik consume
# --jsonl` prints byte for byte what records.jsonl shows.
# Usage: cross_path.sh KAFKA_SERVER CHRONIKD CHRONIK
. "$(dirname "$0")/lib.sh"

daemon_prologue "$@"
tail_pid=
daemon_cleanup_extra() { [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null; }

plan 18
daemon_start --set default.partitions=1
ok $? "chronikd mounts and serves Kafka on $BROKER" || diag_file "$T/chronikd.log"

mkdir "$MNT/xp"
ok $? "mkdir creates topic xp"
printf 'one\ntwo\nthree\n' >>"$MNT/xp/0/data"
ok $? "echo >> data appends three lines"
lim 30 kcat -b "$BROKER" -C -t xp -o beginning -e -q >"$T/k1" 2>"$T/k1.err"
printf 'one\ntwo\nthree\n' | cmp -s - "$T/k1"
ok $? "kcat reads the lines written through the filesystem" || diag_file "$T/k1"

printf 'four\nfive\n' | lim 30 kcat -b "$BROKER" -P -t xp -z gzip -X acks=all 2>"$T/p.err"
ok $? "kcat -P -z gzip produces two records" || diag_file "$T/p.err"
printf 'one\ntwo\nthree\nfour\nfive\n' | cmp -s - "$MNT/xp/0/data"
ok $? "cat data shows the Kafka records after the file's" || diag_file "$MNT/xp/0/data"

tail -n +1 -f "$MNT/xp/0/data" >"$T/tail.out" 2>/dev/null &
tail_pid=$!
wait_for grep -qx five "$T/tail.out"
printf 'six\nseven\n' | lim 30 kcat -b "$BROKER" -P -t xp -z snappy 2>/dev/null
wait_for grep -qx seven "$T/tail.out"
st=$?
printf 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n' | cmp -s - "$T/tail.out"
ok $(( st || $? )) "tail -f follows records produced with kcat" || diag_file "$T/tail.out"
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null
tail_pid=

printf 'k1:keyed\n' | lim 30 kcat -b "$BROKER" -P -t xp -K: 2>/dev/null
grep -q '"key": *"k1"' "$MNT/xp/0/records.jsonl" && grep -q '"value": *"keyed"' "$MNT/xp/0/records.jsonl"
ok $? "records.jsonl shows a keyed Kafka record" || tail -n 3 "$MNT/xp/0/records.jsonl" | sed 's/^/# /'

lim 30 kcat -b "$BROKER" -C -t xp -o beginning -e -q -f '%o %s\n' >"$T/k2" 2>/dev/null
[ "$(tail -n 1 "$T/k2")" = "7 keyed" ] && [ "$(wc -l <"$T/k2")" -eq 8 ]
ok $? "offsets run 0..7 across both paths" || diag_file "$T/k2"

# Every codec on a real batch: 1200 lines produced with -z CODEC in large
# batches (librdkafka compresses a whole batch), read back through cat and
# records.jsonl.
for codec in gzip snappy lz4 zstd; do
	mkdir "$MNT/z-$codec"
	seq 1 1200 | sed "s/^/$codec-line-/" >"$T/want-$codec"
	lim 60 kcat -b "$BROKER" -P -t "z-$codec" -z "$codec" -X acks=all -X linger.ms=200 \
		-X batch.num.messages=10000 <"$T/want-$codec" 2>"$T/p-$codec.err"
	st=$?
	cmp -s "$T/want-$codec" "$MNT/z-$codec/0/data"
	st=$(( st || $? ))
	python3 -c 'import json, sys
vals = [json.loads(l)["value"] for l in open(sys.argv[1])]
want = open(sys.argv[2]).read().split("\n")[:-1]
sys.exit(0 if vals == want else 1)' "$MNT/z-$codec/0/records.jsonl" "$T/want-$codec"
	ok $(( st || $? )) "1200 lines produced with -z $codec: cat data and records.jsonl show every value" ||
		{ diag_file "$T/p-$codec.err"; head -n 3 "$MNT/z-$codec/0/records.jsonl" | sed 's/^/# /'; }
done

# Headers, both ways: a line with headers appended to records.jsonl shows up
# in kcat's %h; kcat -H headers and -K keys show up in records.jsonl.
mkdir "$MNT/hx"
printf '%s\n' '{"key":"hk","value":"hv","headers":[{"key":"h1","value":"v1"},{"key":"h2","value":"v2"}]}' \
	>>"$MNT/hx/0/records.jsonl"
lim 30 kcat -b "$BROKER" -C -t hx -o beginning -e -q -f '%k|%h|%s\n' >"$T/h1" 2>/dev/null
[ "$(head -n 1 "$T/h1")" = "hk|h1=v1,h2=v2|hv" ]
ok $? "a record with headers written to records.jsonl reaches kcat with key and headers" ||
	diag_file "$T/h1"
printf 'pk:pv\n' | lim 30 kcat -b "$BROKER" -P -t hx -K: -H ha=1 -H hb=two 2>/dev/null
python3 -c 'import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
r = recs[-1]
sys.exit(0 if len(recs) == 2 and r["key"] == "pk" and r["value"] == "pv" and
         r["headers"] == [{"key": "ha", "value": "1"}, {"key": "hb", "value": "two"}] else 1)' \
	"$MNT/hx/0/records.jsonl"
ok $? "kcat -K: -H headers and key show up in records.jsonl" ||
	sed 's/^/# /' "$MNT/hx/0/records.jsonl"

# One rendering: the CLI, reading the data directory beside the running
# chronikd, prints each partition's records exactly as records.jsonl does,
# including binary keys, values and headers (the _b64 fields) and escapes.
mkdir "$MNT/bj"
printf '%s\n' '{"key_b64":"/wA=","value_b64":"3q2+7w==","headers":[{"key":"b","value_b64":"gA=="},{"key_b64":"/v8=","value":null}]}' \
	'{"key":"caf\u00e9","value":"tab\there \"q\" \\ /slash \u0001","headers":{"h":"v"}}' \
	'{"value":null,"timestamp":1700000000000}' >>"$MNT/bj/0/records.jsonl"
printf 'bk:bv\n' | lim 30 kcat -b "$BROKER" -P -t bj -K: -H 'x=y z' 2>/dev/null
st=0
[ -x "$CHRONIK" ] || { diag "no chronik CLI given"; st=1; }
for t in xp hx bj z-gzip z-snappy z-lz4 z-zstd; do
	[ "$st" -eq 0 ] || break
	lim 30 "$CHRONIK" --data "$DATA" consume "$t/0" --jsonl >"$T/cli-$t" 2>"$T/cli-$t.err" &&
		cat "$MNT/$t/0/records.jsonl" >"$T/fs-$t" && [ -s "$T/fs-$t" ] &&
		cmp -s "$T/fs-$t" "$T/cli-$t"
	st=$?
	if [ "$st" -ne 0 ]; then
		diag "topic $t differs"
		diag_file "$T/cli-$t.err"
		diff "$T/fs-$t" "$T/cli-$t" | sed -n '1,10s/^/# /p'
	fi
done
ok $st "chronik consume --jsonl is byte-identical to cat records.jsonl (plain, headers, binary, and every codec)"
[ "$(wc -l <"$T/fs-bj" 2>/dev/null)" -eq 4 ] && grep -q '"key_b64":"/wA=","value_b64":"3q2+7w==","headers":\[{"key":"b","value_b64":"gA=="},{"key_b64":"/v8=","value":null}\]' "$T/fs-bj"
ok $? "records.jsonl shows the binary record's fields as _b64" || diag_file "$T/fs-bj"

pid_stop "$daemon_pid" 150
st=$?
daemon_pid=
! is_mounted "$MNT"
ok $(( st || $? )) "chronikd stops on SIGTERM and unmounts"
done_testing
