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
