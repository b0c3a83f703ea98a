#!/bin/bash
# The cold tier end to end against s3rver on 127.0.0.1: segments past the
# local retention move to the bucket, every record reads back in order
# through the mount (from remote, local and WAL), retention's local bound
# holds, and a stopped server stops only remote reads.
. "$(dirname "$0")/lib.sh"

s3_start
cold_start --set remote.cache.bytes=1 "${MULTIPART[@]}"
remote_topic t 20000
check "the topic config takes remote.storage.enable" grep -q remote.storage.enable "$MNT/t/config.json"

# 4000 lines of ~100 bytes in 40 writes: about 400 KiB, a dozen segments.
append_noise t 40
check "segments are uploaded and the registry says remote" until_ok 60 remote_at_least 3
check "they went up as multipart uploads, verified" test "$(multipart_done)" -ge 3
check "the bucket holds the uploaded objects" test "$(s3_objects)" -ge "$(remote_in_registry)"
under_local() { [ "$(local_seg_bytes)" -le $((20000 + 40000)) ]; }
check "local segment bytes stay near local.retention.bytes" until_ok 30 under_local
diag "remote segments $(remote_in_registry), objects $(s3_objects), local segment bytes $(local_seg_bytes)"

info_remote=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["remote_segments"])' "$MNT/t/0/info.json")
check "info.json counts the remote segments ($info_remote)" test "$info_remote" = "$(remote_in_registry)"
info_local=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["local_bytes"] + d["remote_bytes"] == d["segment_bytes"] + d["wal_bytes"] and d["remote_bytes"] > 0)' "$MNT/t/0/info.json")
check "info.json's local and remote bytes add up" test "$info_local" = True
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "cat reads every record in order across remote, local and WAL" cmp -s "$T/expect" "$T/got"
# More appends: the WAL part of the read.
seq -f 'tail-%05g' 1 50 >>"$MNT/t/0/data"
seq -f 'tail-%05g' 1 50 >>"$T/expect"
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "and again after more appends" cmp -s "$T/expect" "$T/got"
first=$(head -c 101 "$T/expect" | tail -c 101)
got=$(lim 60 dd if="$MNT/t/0/data" bs=1 skip=0 count=101 status=none)
check "dd at position 0 reads the first record (a remote segment)" test "$got" = "$first"

# The server stopped: appends and local reads go on, remote reads fail EIO.
s3_stop
seq -f 'down-%05g' 1 30 >>"$MNT/t/0/data"
st=$?
check "appends go on with the store down" test "$st" -eq 0
seq -f 'down-%05g' 1 30 >>"$T/expect"
check "the last records read (local) with the store down" \
	test "$(lim 60 tail -n 30 "$MNT/t/0/data" | head -1)" = "down-00001"
# Line 400 is in the second segment; the cache (1 byte) holds only the
# last one fetched (the first, by the dd above).
pos=$(head -n 400 "$T/expect" | wc -c)
lim 60 dd if="$MNT/t/0/data" bs=1 skip="$pos" count=100 of=/dev/null status=none 2>"$T/dd.err"
st=$?
check "a read of a remote segment not cached fails with the store down" test "$st" -ne 0
check "... with EIO" grep -qi "input/output error" "$T/dd.err"
s3_start
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "every record reads back once the store returns" cmp -s "$T/expect" "$T/got"

# Restart (with the Kafka listener): the registry's remote segments come back.
daemon_stop TERM
unmount "$MNT"
KPORT=$(free_port)
cold_start --set remote.cache.bytes=1 --kafka "127.0.0.1:$KPORT"
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "every record reads back after a restart" cmp -s "$T/expect" "$T/got"
if command -v kcat >/dev/null; then
	lim 120 kcat -b "127.0.0.1:$KPORT" -C -t t -p 0 -o beginning -e -q -f '%s\n' >"$T/kgot" 2>"$T/kcat.err"
	check "Kafka Fetch from offset 0 reads every record (remote, local, WAL)" cmp -s "$T/expect" "$T/kgot" ||
		diag_file "$T/kcat.err"
	lim 120 kcat -b "127.0.0.1:$KPORT" -C -t t -p 0 -o 400 -e -q -f '%s\n' >"$T/kgot" 2>"$T/kcat.err"
	check "Kafka Fetch at offset 400 (a remote segment) reads from there" \
		cmp -s "$T/kgot" <(tail -n +401 "$T/expect")
fi
check "no local file of a remote segment is left" \
	test "$(find "$DATA/segments" -name '*.seg' | wc -l)" -le "$(grep -Ec '"state": ?"live"' "$DATA"/segments/*/*/registry.json)"
# Retention governs the whole log: it deletes remote segments' objects too.
before=$(s3_objects)
printf '{"remote.storage.enable": "true", "local.retention.bytes": "20000", "retention.bytes": "150000"}\n' >"$MNT/t/config.json"
fewer() { [ "$(s3_objects)" -le $((before - 3)) ] && [ "$(s3_objects)" -eq "$(remote_in_registry)" ]; }
check "retention deletes remote objects (had $before)" until_ok 60 fewer
diag "objects now $(s3_objects), remote in registry $(remote_in_registry)"
lim 120 cat "$MNT/t/0/data" >"$T/got"
kept=$(wc -l <"$T/got")
check "what retention keeps is the log's tail, in order" \
	cmp -s "$T/got" <(tail -n "$kept" "$T/expect")

daemon_stop TERM
unmount "$MNT"
if [ -n "${3:-}" ]; then
	lim 60 "$3" --data "$DATA" segments t/0 >"$T/segs" 2>&1
	check "chronik segments says where each segment is" \
		test "$(grep -c 'where: remote remote_key: c1/' "$T/segs")" -eq "$(remote_in_registry)"
	check "... and the local ones" grep -q 'where: local' "$T/segs"
	lim 60 "$3" --data "$DATA" verify >"$T/v" 2>&1
	check "chronik verify passes (remote segments left to --remote)" grep -q ': ok$' "$T/v" ||
		diag_file "$T/v"
	vr() { lim 120 "$3" --data "$DATA" verify --remote s3://chronik/c1 \
		--endpoint "http://127.0.0.1:$S3PORT" >"$T/v" 2>&1; }
	vr "$@"
	check "chronik verify --remote passes against the bucket" grep -q ': ok$' "$T/v" ||
		diag_file "$T/v"
	# One byte of one object changed in the store: verify --remote finds it.
	obj=$(find "$S3DIR/chronik" -name '*._S3rver_object' | sort | head -1)
	printf 'Z' | dd of="$obj" bs=1 seek=100 conv=notrunc status=none
	rm -rf "$DATA/cold-cache"
	vr "$@"
	st=$?
	check "chronik verify --remote reports a damaged object" test "$st" -ne 0
	check "... by its key" grep -q 'c1/.*seg' "$T/v" || diag_file "$T/v"
fi
done_testing
