#!/bin/bash
# t_soak.sh - the crash soak (soak.py) as a test: CYCLES cycles of chronikd
# under mixed load killed with SIGKILL, each checked (TAP, one point per
# cycle). By hand: tests/soak/t_soak.sh CHRONIKD CHRONIK [CYCLES [SEED]]
# (default 1000 cycles); CHRONIK_SOAK_FSYNC=interval:50 or never runs
# chronikd under that fsync policy instead of every.
#
# The mount is always removed at exit, whatever soak.py did.
set -u
. "$(dirname "$0")/../lib/proc.sh"

if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
	echo "1..0 # SKIP chronikd or chronik not built"
	exit 0
fi
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "1..0 # SKIP no /dev/fuse or fusermount3 on this machine"
	exit 0
fi
if ! /usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null; then
	echo "1..0 # SKIP confluent-kafka-python (python3-confluent-kafka) not installed"
	exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/chronik-soak.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
cleanup() {
	unmount "$T/mnt"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

seed=()
[ $# -ge 4 ] && seed=(--seed "$4")
/usr/bin/python3 "$(dirname "$0")/soak.py" "$1" "$2" "$T" --cycles "${3:-1000}" \
	--fsync "${CHRONIK_SOAK_FSYNC:-every}" --tap "${seed[@]}"
rc=$?
if [ $rc -ne 0 ] && [ -s "$T/chronikd.log" ]; then
	# On stderr, which meson prints for a failed test.
	echo "# chronikd's log (last lines):" >&2
	tail -n 40 "$T/chronikd.log" | sed 's/^/#   /' >&2
fi
exit $rc
