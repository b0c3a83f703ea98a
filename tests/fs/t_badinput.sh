#!/bin/bash
# t_badinput.sh - the bad-input sweep of the mount: every file operation on
# every kind of node with flags, offsets and names a log cannot take gets
# its errno (README.md, "Mounting"), appends nothing, and leaves the daemon
# up. The table is badinput.py.
. "$(dirname "$0")/lib.sh"

py=$(command -v python3) || { echo "1..0 # SKIP no python3"; exit 0; }
fs_start --default.partitions=2
mkdir "$MNT/t" && printf 'one\ntwo\n' >>"$MNT/t/0/data" &&
	printf '{"value":"three","key":"k"}\n' >>"$MNT/t/0/records.jsonl"
check "topic t with three records" test "$(wc -l <"$MNT/t/0/data")" -eq 3
check "topic t has partitions 0 and 1" test -d "$MNT/t/1"

timeout 120 "$py" "$(dirname "$0")/badinput.py" "$MNT" "$daemon_pid" >"$T/sweep.out" 2>"$T/sweep.err"
rc=$?
while IFS= read -r line; do
	case "$line" in
	PASS\ *) ok 0 "${line#PASS }" ;;
	FAIL\ *) ok 1 "${line#FAIL }" ;;
	esac
done <"$T/sweep.out"
check "the sweep ran to its end (status $rc)" test "$rc" -eq 0
[ -s "$T/sweep.err" ] && diag_file "$T/sweep.err"
check "the data is what was written" test "$(cat "$MNT/t/0/data")" = "$(printf 'one\ntwo\nthree')"
check "the daemon stops cleanly" daemon_stop TERM
done_testing
