#!/bin/bash
# info.json's "records" is what the partition holds now: after the
# daemon's compaction of 100 keys x 100 versions, the 100 newest versions
# and the newest segment's record (which compaction never cleans), not the
# 10001 offsets; after retention, the records past the log start. `wc -l`
# of data agrees. And config.json refuses what the engine's config check
# refuses.
. "$(dirname "$0")/lib.sh"
export LC_ALL=C

fs_start --set wal.segment.bytes=16384 --set wal.seal.ms=200 --set default.partitions=1
mkdir "$MNT/k" "$MNT/r"
printf '{"cleanup.policy":"compact","min.cleanable.dirty.ratio":"0"}' >"$MNT/k/config.json"
check "k is a compact topic" grep -q '"compact"' "$MNT/k/config.json"

# indexed T: no batch of T/0 left in the WAL.
indexed() { grep -q '"batches": 0,' "$MNT/$1/0/info.json"; }
field() { sed -n "s/.*\"$2\": \\([0-9-]*\\).*/\\1/p" "$MNT/$1/0/info.json"; }
wait_for() { # wait_for COMMAND...: up to 60 s
	for _ in $(seq 600); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

for v in $(seq 0 99); do
	awk -v v="$v" 'BEGIN { for (k = 0; k < 100; k++)
		printf "{\"key\":\"key-%03d\",\"value\":\"v%03d-k%03d\"}\n", k, v, k }' \
		>>"$MNT/k/0/records.jsonl"
done
check "10000 records written" test "$(field k next_offset)" -eq 10000
check "and indexed" wait_for indexed k
# One more record, in a segment of its own: the newest, never cleaned.
echo '{"key":"filler","value":"filler"}' >>"$MNT/k/0/records.jsonl"
check "a last record, indexed" wait_for indexed k
compacted() { [ "$(field k records)" -eq 101 ]; }
check "after the daemon's compaction info.json says records 101, not 10001" \
	wait_for compacted
check "next_offset is still 10001" test "$(field k next_offset)" -eq 10001
check "data holds those 101 lines" test "$(wc -l <"$MNT/k/0/data")" -eq 101

# Retention: 5000 lines, then retention.bytes small enough to drop segments.
seq -f "line %05.0f" 0 4999 >"$T/lines"
dd if="$T/lines" of="$MNT/r/0/data" bs=4096 oflag=append conv=notrunc status=none
check "5000 lines indexed" wait_for indexed r
printf '{"retention.bytes":"8192","compression.type":"none"}' >"$MNT/r/config.json"
retained() { [ "$(field r log_start_offset)" -gt 0 ]; }
check "retention moves the log start" wait_for retained
ls=$(field r log_start_offset)
check "records is next_offset - log_start ($(field r records) = 5000 - $ls)" \
	test "$(field r records)" -eq $((5000 - ls))
check "and data holds that many lines" test "$(wc -l <"$MNT/r/0/data")" -eq $((5000 - ls))

# config.json takes only what engine_topic_config_check takes: a bad value
# fails the close with EINVAL and the old config stays.
before=$(cat "$MNT/r/config.json")
bad_close() { # bad_close TEXT: 0 when writing TEXT to r's config.json fails with EINVAL
	python3 - "$MNT/r/config.json" "$1" <<'PY'
import errno, sys
try:
    with open(sys.argv[1], "w") as f:
        f.write(sys.argv[2])
except OSError as e:
    sys.exit(0 if e.errno == errno.EINVAL else 1)
sys.exit(1)
PY
}
check "config.json with compression.type brotli: EINVAL" bad_close '{"compression.type":"brotli"}'
check "config.json with cleanup.policy 'compact,,delete': EINVAL" \
	bad_close '{"cleanup.policy":"compact,,delete"}'
check "config.json with an unknown key: EINVAL" bad_close '{"retention.hours":"1"}'
check "and the old config stays" test "$(cat "$MNT/r/config.json")" = "$before"
printf '{"compression.type":"uncompressed"}' >"$MNT/r/config.json"
check "uncompressed is taken" grep -q '"uncompressed"' "$MNT/r/config.json"
done_testing
