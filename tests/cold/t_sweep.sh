#!/bin/bash
# The orphan sweep: an object under the prefix of the tier's key shape that
# no registry names (as a crash between a registry save and a delete
# leaves one) is deleted once older than remote.storage.orphan.age.ms; a
# younger one, the registered objects and other keys in the bucket stay.
. "$(dirname "$0")/lib.sh"

s3_start
cold_start --set remote.storage.sweep.ms=200 --set remote.storage.orphan.age.ms=10000
remote_topic t 1
for b in $(seq 1 10); do
	seq -f "b$b-%06g-$(printf '%0100d' 0)" 1 200 >>"$MNT/t/0/data"
done
check "segments are uploaded" until_ok 60 remote_at_least 3
s3put() { # KEY: a small object, as any S3 client puts it
	printf 'x' | lim 30 curl -sSf -X PUT --data-binary @- -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "http://127.0.0.1:$S3PORT/chronik/$1"
}
s3has() { [ -f "$S3DIR/chronik/$1._S3rver_object" ]; }
check "an orphan is put under the prefix" s3put c1/1/0/99999999999999999999.seg
check "a key of another shape is put beside it" s3put c1/notes.txt
check "... and one outside the prefix" s3put other/1/0/00000000000000000000.seg
check "the orphan is still there while younger than the age" s3has c1/1/0/99999999999999999999.seg
gone() { ! s3has c1/1/0/99999999999999999999.seg; }
check "the sweep deletes the orphan once older than the age" until_ok 60 gone
logged() { grep -q "99999999999999999999.seg: orphan deleted" "$T/chronikd.log"; }
# (the store answers the DELETE before the daemon logs it)
check "... and logs it" until_ok 30 logged
check "the other key under the prefix stays" s3has c1/notes.txt
check "the key outside the prefix stays" s3has other/1/0/00000000000000000000.seg
registered_present() { # every remote_key the registry names is in the bucket
	python3 - "$S3DIR/chronik" "$DATA"/segments/*/*/registry.json <<'PY'
import json, os, sys
keys = [s["remote_key"] for f in sys.argv[2:] for s in json.load(open(f))["segments"]
        if s.get("state") == "remote"]
missing = [k for k in keys if not os.path.exists(os.path.join(sys.argv[1], k + "._S3rver_object"))]
print("registered %d, missing %s" % (len(keys), missing))
sys.exit(1 if missing or not keys else 0)
PY
}
registered_present >"$T/reg" 2>&1
check "every object a registry names stays" test $? -eq 0
diag "$(cat "$T/reg")"
lim 60 cat "$MNT/t/0/data" >"$T/got"
check "every record still reads back" test "$(wc -l <"$T/got")" -eq 2000
daemon_stop TERM
unmount "$MNT"
done_testing
