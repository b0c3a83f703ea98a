#!/bin/bash
# kill -9 of chronikd while a writer appends (fsync every): after unmount
# and restart, every line whose write() returned is there, none is torn.
. "$(dirname "$0")/lib.sh"

fs_start --fsync every
mkdir "$MNT/t"
D=$MNT/t/0/data
"$FS_WRITER" "$D" W 1000000 "$T/acked" 2>"$T/writer.err" &
wp=$!
wait_for sh -c "test \"\$(wc -l <'$T/acked' 2>/dev/null || echo 0)\" -ge 300"
ok $? "the writer got 300 lines acknowledged"
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null
daemon_pid=
# the writer must stop by itself: a write() failing makes it exit 1 with a
# message. Killed here after 10 s, it would exit 137 and fail this.
for _ in $(seq 100); do kill -0 "$wp" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$wp" 2>/dev/null
wait "$wp"
wst=$?
ok $((wst != 1)) "the writer's write() failed once the daemon died (exit $wst, want 1)"
check "... with the failed write's error in writer.err" grep -q "^fs_writer: line [0-9]*: " "$T/writer.err"
diag "writer: $(cat "$T/writer.err")"
unmount "$MNT"
check "the mount is gone after fusermount3 -u / -uz" sh -c "! awk -v m='$MNT' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"

acked=$(wc -l <"$T/acked")
fs_start
awk -f "$(dirname "$0")/check_lines.awk" "$D" >"$T/check.out"
ok $? "after restart: every line intact, in order, no gap"
sed 's/^/# /' "$T/check.out"
have=$(awk '$1 == "W" { print $2 }' "$T/check.out")
diag "acknowledged $acked lines, recovered ${have:-0}"
check "every acknowledged line survived" test "${have:-0}" -ge "$acked"
check "st_size matches the recovered lines" test "$(stat -c %s "$D")" = "$(cat "$D" | wc -c)"
echo after >>"$D"
check "appends work after recovery" test "$(tail -n 1 "$D")" = after

done_testing
