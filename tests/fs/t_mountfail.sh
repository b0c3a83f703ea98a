#!/bin/bash
# Start-up failures exit non-zero with a clear message and leave no mount;
# the background mode reports success only once mounted; shutdown by signal
# or by unmount is clean (status 0, mount gone, lock released).
. "$(dirname "$0")/lib.sh"

mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

timeout 20 "$CHRONIKD" -f --no-kafka "$DATA" "$T/missing" 2>"$T/err"
ok $(($? == 0)) "a missing mount point: non-zero exit"
check "... with a message naming it" grep -q "cannot mount on $T/missing: No such file" "$T/err"
check "... and no mount" sh -c "! grep -q '$T' /proc/mounts"

timeout 20 "$CHRONIKD" --no-kafka "$DATA" "$T/missing" 2>"$T/err"
ok $(($? == 0)) "the same in the background: non-zero exit"

timeout 20 "$CHRONIKD" -f --no-kafka --fsync sometimes "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "a bad --fsync value: non-zero exit"
check "... with a message" grep -q "fsync: bad value 'sometimes'" "$T/err"
timeout 20 "$CHRONIKD" -f --no-kafka --no.such.setting=1 "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "an unknown setting: non-zero exit"

fs_start
mkdir -p "$T/mnt2"
extra_mounts="$T/mnt2"
timeout 20 "$CHRONIKD" -f --no-kafka "$DATA" "$T/mnt2" 2>"$T/err"
ok $(($? == 0)) "a data directory in use: non-zero exit"
check "... with a message saying so" grep -q "is in use" "$T/err"
check "... and no second mount" sh -c "! awk -v m='$T/mnt2' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"
timeout 20 "$CHRONIKD" --no-kafka "$DATA" "$T/mnt2" 2>"$T/err"
ok $(($? == 0)) "the same in the background: non-zero exit"
check "... and no second mount" sh -c "! awk -v m='$T/mnt2' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"

mkdir "$MNT/t"
echo before >>"$MNT/t/0/data"
fusermount3 -u "$MNT"
ok $? "fusermount3 -u unmounts"
wait "$daemon_pid"
ok $? "... and chronikd exits 0"
daemon_pid=

# background mode: the parent exits 0 once mounted; the lock file names the
# daemon's pid
timeout 20 "$CHRONIKD" --no-kafka "$DATA" "$MNT" 2>"$T/err"
ok $? "in the background: exit 0"
check "... and mounted when it returns" mounted "$MNT"
daemon_pid=$(tr -dc '0-9' <"$DATA/LOCK")
check "... the daemon's pid is in DATA/LOCK" kill -0 "${daemon_pid:-0}"
check "data from before is there" test "$(cat "$MNT/t/0/data")" = before
# a partial line in a file still open at shutdown is appended then: a
# holder process writes it and keeps the descriptor open across SIGTERM
# (python: a shell's `printf >&3` dup2()s the descriptor over stdout and
# back, and that close alone would append the line)
python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b"partial")
open(sys.argv[2], "w").write("written\n")
time.sleep(60)' "$MNT/t/0/data" "$T/held" 2>/dev/null &
holder=$!
wait_for test -s "$T/held"
ok $? "a holder wrote a partial line and keeps its descriptor open"
check "... the partial line is not in the file yet" test "$(cat "$MNT/t/0/data")" = before
kill -TERM "$daemon_pid"
for _ in $(seq 150); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$daemon_pid" 2>/dev/null
ok $? "SIGTERM: the background daemon exits"
check "... while the holder still holds the descriptor" kill -0 "$holder"
kill -KILL "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
daemon_pid=
check "... the mount is gone" sh -c "! awk -v m='$MNT' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"
timeout 20 "$CHRONIKD" -f --no-kafka "$DATA" "$T/mnt2" 2>"$T/err" &
daemon_pid=$!
wait_mount "$T/mnt2" "$daemon_pid"
ok $? "... and the lock is released: another chronikd mounts the data"
check "... with the partial line appended at shutdown" test "$(cat "$T/mnt2/t/0/data")" = "$(printf 'before\npartial')"
daemon_stop INT
ok $? "SIGINT: exit 0"
check "... the mount is gone" sh -c "! awk -v m='$T/mnt2' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"

done_testing
