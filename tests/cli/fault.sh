#!/bin/bash
# Faults injected into chronik by the faultfs shim, configured by its
# environment variables (tests/lib/faultfs.c): a failed WAL fdatasync or a
# full disk fails the produce with one clear line, stores nothing of it,
# and leaves a data directory that verifies clean. The shim's LD_PRELOAD
# value comes in CHRONIK_FAULTFS (meson's faultfs_preload).
. "$(dirname "$0")/lib.sh"

if [ -z "${CHRONIK_FAULTFS:-}" ]; then
	echo "1..0 # SKIP CHRONIK_FAULTFS (the faultfs shim) not given"
	exit 0
fi

plan 10

# faulty ENV... -- ARGS...: run chronik under the shim with ENV set.
faulty() {
	local envs=()
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	env LD_PRELOAD="$CHRONIK_FAULTFS" "${envs[@]}" timeout -k 5 120 "$CHRONIK" "$@" \
		<"$T/in" >"$T/out" 2>"$T/err"
}

run 0 --data "$D" topic create t
ok $? "create t"
echo a >"$T/in"
run 0 --data "$D" produce t/0 <"$T/in"
ok $? "produce a"

echo x >"$T/in"
faulty FAULTFS_SYNC_NTH=1 FAULTFS_SYNC_PATH='*.wal' -- --data "$D" produce t/0
st=$?
[ $st -eq 1 ] && grep -q 'Input/output error' "$T/err"
ok $? "an open whose sync of the active WAL file fails exits 1 with EIO (status $st)" ||
	diag_file "$T/err"

# The open's own sync of the active file is the first; the append's the second.
echo b >"$T/in"
faulty FAULTFS_SYNC_NTH=2 FAULTFS_SYNC_PATH='*.wal' -- --data "$D" produce t/0
st=$?
[ $st -eq 1 ] && grep -q 'Input/output error' "$T/err"
ok $? "produce b whose WAL fdatasync fails exits 1 with EIO (status $st)" || diag_file "$T/err"

echo c >"$T/in"
faulty FAULTFS_WRITE_NTH=1 FAULTFS_WRITE_ERRNO=ENOSPC FAULTFS_WRITE_PATH='*.wal' -- \
	--data "$D" produce t/0
st=$?
[ $st -eq 1 ] && grep -q 'No space left on device' "$T/err"
ok $? "produce c on a full disk exits 1 with ENOSPC (status $st)" || diag_file "$T/err"

echo d >"$T/in"
faulty FAULTFS_SYNC_NTH=2 FAULTFS_SYNC_PATH='*.wal' -- --fsync never --data "$D" produce t/0
st=$?
[ $st -eq 1 ] && grep -q 'Input/output error' "$T/err"
ok $? "under --fsync never, produce d whose final sync fails exits 1 (status $st)" ||
	diag_file "$T/err"

faulty FAULTFS_SYNC_NTH=1 FAULTFS_SYNC_PATH='*.nothing' -- --data "$D" topic list
ok $? "a pattern that matches no file injects nothing"

run 0 --data "$D" consume t/0
ok $? "consume"
[ "$(cat "$T/out")" = "a" ]
ok $? "only a is stored: x, b and c failed, d was written but its sync failed, so the WAL is cut at the sync point before it" ||
	diag_file "$T/out"
run 0 --data "$D" verify
ok $? "verify is clean"
