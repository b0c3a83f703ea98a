#!/bin/bash
# The object store stopped mid-run: appends, local reads and Kafka Fetch of
# local data go on; a Kafka Fetch at an old offset (a remote segment not
# cached) answers KAFKA_STORAGE_ERROR (56, retriable) for the partition,
# and the same Fetch reads the records once the store is back. Then the
# store hangs (SIGSTOP: it accepts connections and never answers, the
# slowest a store can be): the same holds, the remote read failing after
# remote.storage.timeout.ms, and it recovers when the store answers again.
. "$(dirname "$0")/lib.sh"

s3_start
KPORT=$(free_port)
cold_start --set remote.cache.bytes=1 --set remote.storage.timeout.ms=3000 --kafka "127.0.0.1:$KPORT"
remote_topic t 20000
append_noise t 30
check "segments are uploaded" until_ok 60 remote_at_least 3
kf() { lim 60 python3 "$here/kfetch.py" "127.0.0.1:$KPORT" t 0 "$1"; }

s3_stop
seq -f 'down-%05g' 1 30 >>"$MNT/t/0/data"
st=$?
check "appends go on with the store down" test "$st" -eq 0
seq -f 'down-%05g' 1 30 >>"$T/expect"
check "local reads go on" test "$(lim 60 tail -n 1 "$MNT/t/0/data")" = "down-00030"
n=$(wc -l <"$T/expect")
r=$(kf $((n - 30)))
diag "Fetch at offset $((n - 30)) (the WAL): $r"
check "a Kafka Fetch of local data works" grep -Eq '^error=0 records=[1-9]' <<<"$r"
r=$(kf 0)
diag "Fetch at offset 0 (a remote segment): $r"
check "a Kafka Fetch at an old offset gets KAFKA_STORAGE_ERROR (56)" grep -q '^error=56 ' <<<"$r"
check "the daemon is still up" kill -0 "$daemon_pid"

s3_start # on the same port
r=$(kf 0)
diag "Fetch at offset 0, the store back: $r"
check "the same Fetch reads records once the store is back" grep -Eq '^error=0 records=[1-9]' <<<"$r"

kill -STOP "$s3_pid"
seq -f 'hung-%05g' 1 30 >>"$MNT/t/0/data"
st=$?
check "appends go on with the store hung" test "$st" -eq 0
seq -f 'hung-%05g' 1 30 >>"$T/expect"
check "local reads go on with the store hung" test "$(lim 60 tail -n 1 "$MNT/t/0/data")" = "hung-00030"
check "the mount answers (ls) with the store hung" lim 20 ls "$MNT/t"
# The last remote segment: the Fetch at offset 0 above cached the first.
last=$(python3 -c 'import json, glob, sys
segs = [s for f in glob.glob(sys.argv[1] + "/segments/*/*/registry.json")
        for s in json.load(open(f))["segments"] if s["state"] == "remote"]
print(max(s["base_offset"] for s in segs))' "$DATA")
r=$(kf "$last")
diag "Fetch at offset $last (the last remote segment), the store hung: $r"
check "a Fetch at an old offset gets 56 after the timeout" grep -q '^error=56 ' <<<"$r"
kill -CONT "$s3_pid"
r=$(kf "$last")
diag "Fetch at offset $last, the store answering again: $r"
check "and reads records once it answers again" grep -Eq '^error=0 records=[1-9]' <<<"$r"
lim 120 cat "$MNT/t/0/data" >"$T/got"
check "every record reads back in order" cmp -s "$T/expect" "$T/got"
daemon_stop TERM
unmount "$MNT"
done_testing
