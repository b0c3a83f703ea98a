# proc.sh - background processes and FUSE mounts in the shell tests,
# sourced by a suite's lib.sh (or a test) beside tests/lib/tap.sh.

# pid_stop PID TENTHS [SIGNAL]: send SIGNAL (default TERM) to PID, a child
# of this shell; SIGKILL when it is still there after TENTHS tenths of a
# second. Returns its exit status (128+N when a signal ended it).
pid_stop() {
	local pid=$1 tenths=$2 sig=${3:-TERM}
	kill -"$sig" "$pid" 2>/dev/null
	for _ in $(seq "$tenths"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

is_mounted() { # is_mounted DIR
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts
}

unmount() { # unmount DIR: always leaves DIR unmounted
	is_mounted "$1" || return 0
	fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
	return 0
}

# wait_for COMMAND...: until COMMAND succeeds (0) or 10 s pass (1)
wait_for() {
	for _ in $(seq 200); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}
