# lib.sh - mount helpers for the fs suite's shell tests (TAP from
# tests/lib/tap.sh; the fs tests print their plan at the end).
#
# Source it from a test run as: TEST CHRONIKD [FS_WRITER]. Each test gets
# its own directory T (under $TMPDIR) with DATA=$T/data and MNT=$T/mnt. The
# daemon started by fs_start is stopped on exit whatever happens: SIGTERM,
# then SIGKILL after a wall-clock limit, then fusermount3 -u, then -uz.

set -u
. "$(dirname "${BASH_SOURCE[0]}")/../lib/tap.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../lib/proc.sh"

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
	echo "1..0 # SKIP no chronikd binary given"
	exit 0
fi
CHRONIKD=$1
FS_WRITER=${2:-}
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "1..0 # SKIP no /dev/fuse or fusermount3 on this machine"
	exit 0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/chronik-fs.XXXXXX") || { echo "Bail out! mktemp failed"; exit 1; }
DATA=$T/data
MNT=$T/mnt
mkdir -p "$MNT"
daemon_pid=
extra_mounts=

check() { # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
	local desc=$1
	shift
	if "$@"; then ok 0 "$desc"; else ok 1 "$desc"; fi
}

# expect_errno DESCRIPTION ERRNO-TEXT COMMAND...: COMMAND fails, saying ERRNO-TEXT
expect_errno() {
	local desc=$1 text=$2
	shift 2
	if "$@" >"$T/err.out" 2>&1; then
		ok 1 "$desc (succeeded)"
		return
	fi
	if grep -q "$text" "$T/err.out"; then
		ok 0 "$desc"
	else
		ok 1 "$desc"
		sed 's/^/# /' "$T/err.out"
	fi
}

# daemon_stop [SIGNAL]: stop the daemon (default TERM), KILL after 15 s;
# returns its exit status.
daemon_stop() {
	local st
	[ -n "$daemon_pid" ] || return 0
	pid_stop "$daemon_pid" 150 "${1:-TERM}"
	st=$?
	daemon_pid=
	return $st
}

cleanup() {
	daemon_stop TERM
	unmount "$MNT"
	for m in $extra_mounts; do unmount "$m"; done
	if [ "$tap_failed" -ne 0 ] && [ -s "$T/chronikd.log" ]; then
		echo "# chronikd's log:"
		tail -n 30 "$T/chronikd.log" | sed 's/^/#   /'
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_mount DIR PID: until DIR is mounted (0) or PID died / 10 s passed (1)
wait_mount() {
	for _ in $(seq 200); do
		is_mounted "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# fs_start [ARGS...]: chronikd -f --no-kafka ARGS DATA MNT, waits for the mount
fs_start() {
	"$CHRONIKD" -f --no-kafka "$@" "$DATA" "$MNT" 2>>"$T/chronikd.log" &
	daemon_pid=$!
	if ! wait_mount "$MNT" "$daemon_pid"; then
		echo "Bail out! chronikd did not mount"
		sed 's/^/# /' "$T/chronikd.log"
		exit 1
	fi
}
