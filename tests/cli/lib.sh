# lib.sh - helpers for the cli suite's shell tests (TAP from tests/lib/tap.sh). Source it after
# setting CHRONIK to the chronik binary (the tests' first argument).
#
# Each test gets its own directory T (under $TMPDIR), removed on exit, and
# every background process started with bg_start is killed on exit.

set -u
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
	echo "1..0 # SKIP no chronik binary given"
	exit 0
fi
CHRONIK=$1
unset CHRONIK_DATA CHRONIK_LOG_LEVEL

T=$(mktemp -d "${TMPDIR:-/tmp}/chronik-cli.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
D=$T/data
bg_pids=()

cleanup() {
	local pid
	for pid in "${bg_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${bg_pids[@]}"; do
		# Wall-clock limit: a process that ignores TERM gets KILL.
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

# run EXPECTED_STATUS CMD...: run chronik with a wall-clock limit, output in
# $T/out and $T/err; returns 0 when the exit status is the expected one.
run() {
	local want=$1 st
	shift
	timeout -k 5 120 "$CHRONIK" "$@" >"$T/out" 2>"$T/err"
	st=$?
	last_status=$st
	if [ "$want" = nonzero ]; then
		[ "$st" -ne 0 ] && [ "$st" -lt 124 ] && return 0
	elif [ "$st" -eq "$want" ]; then
		return 0
	fi
	diag "chronik $* exited $st, expected $want"
	diag_file "$T/err"
	return 1
}

# Start a background chronik; its pid is appended to bg_pids and in $bg_pid.
bg_start() {
	"$CHRONIK" "$@" &
	bg_pid=$!
	bg_pids+=("$bg_pid")
}

# Wait (up to 30 s) until FILE has at least N lines.
wait_lines() {
	local file=$1 n=$2
	for _ in $(seq 300); do
		[ -f "$file" ] && [ "$(wc -l <"$file")" -ge "$n" ] && return 0
		sleep 0.1
	done
	return 1
}
