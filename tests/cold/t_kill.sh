#!/bin/bash
# kill -9 during uploads, 20 times: after each restart every record
# appended before the kill reads back exactly once, in order (a segment is
# local or remote-and-registered, never neither, never both).
. "$(dirname "$0")/lib.sh"

s3_start
cold_start --set remote.cache.bytes=1 "${MULTIPART[@]}"
remote_topic t 1
: >"$T/expect"
bad=0
for cycle in $(seq 1 20); do
	awk -v b="$cycle" 'BEGIN { srand(b); for (i = 0; i < 300; i++) {
		s = sprintf("c%d-%05d-", b, i)
		for (j = 0; j < 10; j++) s = s sprintf("%08x", int(rand() * 4294967296))
		print s } }' >"$T/chunk"
	if cat "$T/chunk" >>"$MNT/t/0/data"; then
		cat "$T/chunk" >>"$T/expect"
	else
		bad=1
		diag "cycle $cycle: append failed"
	fi
	# Let the indexer seal and the upload thread start on something,
	# then kill wherever it is.
	until_ok 2 test "$(s3_objects)" -ge "$cycle" || true
	daemon_stop KILL
	unmount "$MNT"
	cold_start --set remote.cache.bytes=1 "${MULTIPART[@]}"
	lim 120 cat "$MNT/t/0/data" >"$T/got"
	if ! cmp -s "$T/expect" "$T/got"; then
		bad=1
		diag "cycle $cycle: read back differs ($(wc -l <"$T/got") lines, want $(wc -l <"$T/expect"))"
		break
	fi
done
ok "$bad" "20 kill -9 cycles during uploads: every record once, in order"
check "uploads went on across the kills" until_ok 60 remote_at_least 10
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "the whole log reads back at the end" cmp -s "$T/expect" "$T/got"
diag "remote segments $(remote_in_registry), objects $(s3_objects)"
done_testing
