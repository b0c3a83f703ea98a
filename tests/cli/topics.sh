#!/bin/bash
# topic create / list / delete, partitions, config, metadata info.
. "$(dirname "$0")/lib.sh"

plan 33

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

# Config validation (engine_topic_config_check): a bad pair is a usage
# error (exit 2) that names the key, and nothing is created or changed.
run 2 --data "$D" topic create delta --config cleanup.policy=remove
ok $? "create with cleanup.policy=remove exits 2"
grep -q 'cleanup.policy=remove: cleanup.policy must be delete, compact' "$T/err"
ok $? "and says what cleanup.policy takes"
run 0 --data "$D" topic list
printf 'alpha\nbeta\ngamma\n' | cmp -s - "$T/out"
ok $? "and delta was not created"
run 2 --data "$D" topic create delta --config retention.ms=1h
ok $? "create with retention.ms=1h exits 2"
run 2 --data "$D" topic create delta --config no.such.key=1
grep -q 'unknown topic config key' "$T/err"
ok $? "an unknown key exits 2 and says so"
run 0 --data "$D" topic create delta --config compression.type=uncompressed \
	--config cleanup.policy=compact,delete --config min.cleanable.dirty.ratio=0.25
ok $? "uncompressed, compact,delete and a ratio in [0, 1] are accepted"
run 0 --data "$D" info
cfg=$(python3 -c 'import json,sys; print(json.dumps([t["config"] for t in json.load(sys.stdin)["topics"] if t["name"] == "delta"][0], sort_keys=True))' <"$T/out")
[ "$cfg" = '{"cleanup.policy": "compact,delete", "compression.type": "uncompressed", "min.cleanable.dirty.ratio": "0.25"}' ]
ok $? "delta's config: $cfg"
run 2 --data "$D" topic alter delta --config compression.type=brotli
ok $? "alter with compression.type=brotli exits 2"
grep -q 'compression.type must be lz4, zstd, gzip, snappy, none, uncompressed or producer' "$T/err"
ok $? "and lists what compression.type takes"
run 2 --data "$D" topic alter delta --config retention.ms=100 --config min.cleanable.dirty.ratio=1.5
ok $? "alter with one bad pair of two exits 2"
run 0 --data "$D" info
now=$(python3 -c 'import json,sys; print(json.dumps([t["config"] for t in json.load(sys.stdin)["topics"] if t["name"] == "delta"][0], sort_keys=True))' <"$T/out")
[ "$now" = "$cfg" ]
ok $? "and changed nothing: $now"
run 0 --data "$D" topic alter delta --config compression.type=none --config min.cleanable.dirty.ratio=
ok $? "alter to none, and removing a key (empty value), are accepted"
run 0 --data "$D" info
grep -q '"compression.type": *"none"' "$T/out" && ! grep -q 'min.cleanable' "$T/out"
ok $? "and applied"
run 0 --data "$D" topic delete delta
ok $? "delete delta"

done_testing
