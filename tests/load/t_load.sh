#!/bin/bash
# t_load.sh - many concurrent clients on one chronikd, checked (suite load).
#
#   tests/load/t_load.sh CHRONIKD CHRONIK_LOAD [CONNS READERS WRITERS SECONDS]
#
# Starts chronikd (fsync every, Kafka on a free 127.0.0.1 port, 8
# partitions per topic) with its open-file soft limit lowered to 1024 (it
# must raise it to the hard limit itself), then runs chronik-load
# (bench/load.c, which says what it checks): CONNS Kafka connections, half
# producers and half consumers, for SECONDS; then READERS `tail -f`
# readers and WRITERS writers on one partition's data file for SECONDS.
# Default 200 connections, 16 readers, 4 writers, 20 s (the meson test);
# bench/load runs 1,000 / 64 / 16 for 10 minutes. The TAP points are
# correctness only; chronik-load's counts (and chronikd's RSS samples) are
# printed as diagnostics ("# kafka KEY VALUE", "# fs KEY VALUE").
# CHRONIK_LOAD_DAEMON_ARGS: more chronikd arguments (split on spaces).
set -u
if [ $# -lt 2 ] || [ ! -x "$2" ]; then
	echo "1..0 # SKIP chronik-load not built"
	exit 0
fi
LOAD=$2
set -- "$1" "${@:3}"
CONNS=${2:-200}
READERS=${3:-16}
WRITERS=${4:-4}
SECONDS_EACH=${5:-20}
. "$(dirname "$0")/../fs/lib.sh" "$1"
if "$CHRONIKD" --help 2>&1 | grep -q 'built without the Kafka listener'; then
	echo "1..0 # SKIP chronikd is built without the Kafka listener"
	exit 0
fi
plan 9

# The soft limit chronikd starts with: 1024 (Debian's default) when the
# hard limit allows, so that the raise is what lets it serve CONNS.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt 1024 ] && ulimit -Sn 1024
# shellcheck disable=SC2086
"$CHRONIKD" -f --fsync every --kafka 127.0.0.1:0 --default.partitions=8 \
	${CHRONIK_LOAD_DAEMON_ARGS:-} "$DATA" "$MNT" 2>>"$T/chronikd.log" &
daemon_pid=$!
if ! wait_mount "$MNT" "$daemon_pid"; then
	echo "Bail out! chronikd did not mount"
	sed 's/^/# /' "$T/chronikd.log"
	exit 1
fi
ulimit -Sn "$hard"
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/chronikd.log" | tail -n 1)
	[ -n "$port" ] && break
	sleep 0.1
done
diag "Kafka on port ${port:-?}"
limits=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$daemon_pid/limits")
read -r soft hard_d <<<"$limits"
ok $(($soft == $hard_d ? 0 : 1)) "chronikd raised its open file soft limit to the hard limit ($limits)"

mkdir "$MNT/load" "$MNT/loadfs"
"$LOAD" kafka "$port" load 8 "$CONNS" "$SECONDS_EACH" "$daemon_pid" >"$T/kafka.out" 2>"$T/kafka.err"
krc=$?
sed 's/^/# kafka /' "$T/kafka.out"
sed -n '1,20s/^/#   /p' "$T/kafka.err"
val() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
ok $krc "kafka: $CONNS connections for ${SECONDS_EACH}s, every request answered, no error but back-pressure"
ok $(($(val "$T/kafka.out" connected) == CONNS && $(val "$T/kafka.out" open_at_end) == CONNS ? 0 : 1)) \
	"kafka: all $CONNS connections connected and still open at the end"
ok $(($(val "$T/kafka.out" acked_offset_holes) == 0 && $(val "$T/kafka.out" offset_gaps) == 0 ? 0 : 1)) \
	"kafka: acknowledged offsets dense per partition, consumers saw no gap"
ok $(($(val "$T/kafka.out" produced_records) > 0 && $(val "$T/kafka.out" fetched_records) > 0 ? 0 : 1)) \
	"kafka: records were produced and fetched"

"$LOAD" fs "$MNT/loadfs/0/data" "$READERS" "$WRITERS" "$SECONDS_EACH" "$daemon_pid" \
	>"$T/fs.out" 2>"$T/fs.err"
frc=$?
sed 's/^/# fs /' "$T/fs.out"
sed -n '1,20s/^/#   /p' "$T/fs.err"
ok $frc "fs: $READERS tail -f readers, $WRITERS writers for ${SECONDS_EACH}s, no error"
ok $(($(val "$T/fs.out" readers_exact) == READERS && $(val "$T/fs.out" bad_lines) == 0 &&
	$(val "$T/fs.out" lines_written) > 0 ? 0 : 1)) \
	"fs: every written line seen by every reader, exactly once, in order"

kill -0 "$daemon_pid" 2>/dev/null
ok $? "chronikd is still running"
daemon_stop TERM
ok $? "chronikd stops cleanly"
