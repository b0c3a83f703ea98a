#!/bin/bash
# produce 200,000 lines, consume them back byte for byte; --from, --jsonl,
# a final line without a newline, empty lines, and a produce from an
# empty stdin.
. "$(dirname "$0")/lib.sh"

plan 16

run 0 --data "$D" topic create lines
ok $? "topic create"

seq -f 'line %.0f with some text' 1 200000 >"$T/in"
run 0 --data "$D" produce lines/0 <"$T/in"
ok $? "produce 200000 lines"

run 0 --data "$D" consume lines/0
ok $? "consume"
cmp -s "$T/in" "$T/out"
ok $? "consumed bytes are identical to the produced ones"

run 0 --data "$D" info lines/0
ok $? "info lines/0"
grep -q '"next_offset": *200000' "$T/out"
ok $? "next offset is 200000"

run 0 --data "$D" consume lines/0 --from 199998
ok $? "consume --from 199998"
printf 'line 199999 with some text\nline 200000 with some text\n' | cmp -s - "$T/out"
ok $? "--from starts at that offset"

run 0 --data "$D" consume lines/0 --from 199999 --jsonl
ok $? "consume --jsonl"
grep -Eq '^\{"offset":199999,"timestamp":[0-9]+,"key":null,"value":"line 200000 with some text","headers":\[\]\}$' "$T/out"
ok $? "--jsonl prints one JSON object per record"
[ "$(wc -l <"$T/out")" -eq 1 ]
ok $? "--jsonl prints exactly one line per record"

run 0 --data "$D" topic create edge
printf 'a\n\nb\nno newline at the end' | "$CHRONIK" --data "$D" produce edge/0
ok $? "produce with empty lines and no final newline"
run 0 --data "$D" consume edge/0
printf 'a\n\nb\nno newline at the end\n' | cmp -s - "$T/out"
ok $? "empty lines are records, the final partial line is a record"

run 0 --data "$D" produce edge/0 </dev/null
ok $? "produce from empty stdin"
run 0 --data "$D" consume edge/0 --jsonl
[ "$(wc -l <"$T/out")" -eq 4 ]
ok $? "empty stdin appended nothing"

printf 'x\xff\xfey\n' | "$CHRONIK" --data "$D" produce edge/0 &&
	run 0 --data "$D" consume edge/0 --from 4 --jsonl &&
	grep -q '"value_b64":"eP/+eQ=="' "$T/out"
ok $? "--jsonl writes a non-UTF-8 value as value_b64"

done_testing
