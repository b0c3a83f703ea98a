# lib.sh - TAP helpers for the kafka suite's shell tests. Source it with the
# kafka_server binary as the test's first argument.
#
# Each test gets its own directory T (under $TMPDIR), removed on exit; the
# server started with server_start is stopped on exit (TERM, then KILL
# after a wall-clock limit). Traffic goes to 127.0.0.1 only.

set -u

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
	echo "1..0 # SKIP no kafka_server binary given"
	exit 0
fi
KAFKA_SERVER=$1
shift

T=$(mktemp -d "${TMPDIR:-/tmp}/chronik-kafka.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
tap_n=0
tap_failed=0
server_pid=
PORT=
BROKER=

server_stop() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null
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

plan() { echo "1..$1"; }

# ok STATUS DESCRIPTION: pass when STATUS is 0.
ok() {
	local st=$1
	shift
	tap_n=$((tap_n + 1))
	if [ "$st" -eq 0 ]; then
		echo "ok $tap_n - $*"
	else
		echo "not ok $tap_n - $*"
		tap_failed=$((tap_failed + 1))
	fi
}

diag() { printf '# %s\n' "$*"; }
diag_file() { sed -n '1,20s/^/# /p' "$1"; }

# lim SECONDS CMD...: run CMD with a wall-clock limit.
lim() {
	local s=$1
	shift
	timeout -k 5 "$s" "$@"
}

done_testing() {
	[ "$tap_failed" -eq 0 ]
	exit $?
}
