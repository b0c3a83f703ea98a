#!/bin/bash
# topic create / list / delete, partitions, config, metadata info.
. "$(dirname "$0")/lib.sh"

plan 19

run 0 --data "$D" topic create alpha
ok $? "create alpha"
run 0 --data "$D" topic create beta --partitions 3 --config retention.ms=60000
ok $? "create beta with 3 partitions and a config"
run 0 --data "$D" topic list
printf 'alpha\nbeta\n' | cmp -s - "$T/out"
ok $? "list shows both, sorted"

echo hello | "$CHRONIK" --data "$D" produce beta/2
ok $? "produce to beta/2"
run 0 --data "$D" consume beta/2
[ "$(cat "$T/out")" = hello ]
ok $? "the last partition holds the record"
run nonzero --data "$D" produce beta/3 </dev/null
ok $? "partition 3 of a 3-partition topic does not exist"

run 0 --data "$D" info
ok $? "info prints the metadata"
grep -q 'beta' "$T/out" && grep -q 'retention.ms' "$T/out" && grep -q '60000' "$T/out"
ok $? "metadata names the topic and its config"

run nonzero --data "$D" topic create alpha
ok $? "creating an existing topic fails"
grep -qi 'exists' "$T/err"
ok $? "and says it exists"

run 0 --data "$D" topic delete alpha
ok $? "delete alpha"
run 0 --data "$D" topic list
[ "$(cat "$T/out")" = beta ]
ok $? "list no longer shows alpha"

run nonzero --data "$D" topic delete alpha
ok $? "deleting it again fails"

run 0 --data "$D" topic create alpha
ok $? "the name can be created again after delete"

# Limits (alpha has 1 partition, beta 3).
run nonzero --data "$D" --set max.topics=2 topic create gamma
ok $? "a third topic past max.topics=2 fails"
grep -q 'Limit on topics or partitions reached' "$T/err"
ok $? "and names the limit"
run nonzero --data "$D" --set max.partitions=6 topic create gamma --partitions 3
ok $? "3 more partitions past max.partitions=6 (4 + 3) fail"
run 0 --data "$D" --set max.partitions=6 topic create gamma --partitions 2
ok $? "2 more (exactly 6) are created"
run 0 --data "$D" topic list
printf 'alpha\nbeta\ngamma\n' | cmp -s - "$T/out"
ok $? "and only that one was created"

done_testing
