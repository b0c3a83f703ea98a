# lib.sh - helpers for the kafka suite's shell tests (TAP from
# tests/lib/tap.sh). Source it with the
# kafka_server binary as the test's first argument.
#
# Each test gets its own directory T (under $TMPDIR), removed on exit; the
# server started with server_start is stopped on exit (TERM, then KILL
# after a wall-clock limit). Traffic goes to 127.0.0.1 only.

set -u
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/proc.sh"

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
	echo "1..0 # SKIP no kafka_server binary given"
	exit 0
fi
KAFKA_SERVER=$1
shift

T=$(mktemp -d "${TMPDIR:-/tmp}/chronik-kafka.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
server_pid=
PORT=
BROKER=

server_stop() {
	[ -n "$server_pid" ] || return 0
	pid_stop "$server_pid" 100
	local st=$?
	server_pid=
	return $st
}

cleanup() {
	server_stop
	rm -rf "$T"
}
trap cleanup EXIT

# server_start [ARGS...]: start kafka_server on $T/data; sets PORT, BROKER.
server_start() {
	: >"$T/server.out"
	"$KAFKA_SERVER" "$T/data" "$@" >"$T/server.out" 2>>"$T/server.err" &
	server_pid=$!
	for _ in $(seq 100); do
		PORT=$(awk '/^PORT /{print $2}' "$T/server.out")
		[ -n "$PORT" ] && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$PORT" ]; then
		echo "Bail out! kafka_server did not start"
		sed 's/^/# /' "$T/server.err"
		exit 1
	fi
	BROKER=127.0.0.1:$PORT
}

# lim SECONDS CMD...: run CMD with a wall-clock limit.
lim() {
	local s=$1
	shift
	timeout -k 5 "$s" "$@"
}

# ---- tests on a mounted chronikd ---------------------------------------------
# daemon_prologue CHRONIKD CHRONIK: the shared start of the tests that run
# chronikd (FUSE and the Kafka listener) rather than kafka_server. Skips
# the test (1..0 # SKIP) unless both binaries, /dev/fuse with fusermount3
# and kcat are there. Sets CHRONIKD, CHRONIK, MNT ($T/mnt, created), DATA
# ($T/data; a test may point it elsewhere before daemon_start), a free
# loopback PORT and BROKER, and traps EXIT to: kill the background
# processes the test lists in bg (bg+=($!)), stop the daemon, unmount MNT,
# call daemon_cleanup_extra when the test defines it, and clean up.
daemon_prologue() {
	CHRONIKD=${1:-}
	CHRONIK=${2:-}
	if [ -z "$CHRONIKD" ] || [ ! -x "$CHRONIKD" ] || [ -z "$CHRONIK" ] || [ ! -x "$CHRONIK" ]; then
		echo "1..0 # SKIP no chronikd or chronik binary given"
		exit 0
	fi
	if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
		echo "1..0 # SKIP no /dev/fuse or fusermount3 on this machine"
		exit 0
	fi
	if ! command -v kcat >/dev/null; then
		echo "1..0 # SKIP kcat not installed"
		exit 0
	fi
	DATA=$T/data
	MNT=$T/mnt
	mkdir -p "$MNT"
	daemon_pid=
	bg=()
	trap daemon_cleanup EXIT
	PORT=$(free_port)
	BROKER=127.0.0.1:$PORT
}

daemon_cleanup() {
	local p
	for p in "${bg[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$daemon_pid" ] && pid_stop "$daemon_pid" 150
	unmount "$MNT"
	if declare -F daemon_cleanup_extra >/dev/null; then
		daemon_cleanup_extra
	fi
	cleanup
}

# daemon_start [CHRONIKD OPTIONS...]: start chronikd -f --kafka $BROKER
# OPTIONS $DATA $MNT in the background (its stderr in $T/chronikd.log,
# its pid in daemon_pid); 0 once it is mounted and answers a Kafka
# metadata request, 1 if either did not happen in time.
daemon_start() {
	local st
	"$CHRONIKD" -f --kafka "$BROKER" "$@" "$DATA" "$MNT" 2>"$T/chronikd.log" &
	daemon_pid=$!
	wait_for is_mounted "$MNT"
	st=$?
	wait_for lim 5 kcat -b "$BROKER" -L -m 2 >/dev/null 2>&1
	return $((st || $?))
}

