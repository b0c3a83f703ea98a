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

# until_ok SECONDS CMD...: poll CMD every 0.1 s until it succeeds (0) or
# SECONDS pass (1).
until_ok() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# free_port: a free TCP port on 127.0.0.1 (bound, then released for a
# server to take).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for COMMAND...: until COMMAND succeeds (0) or 10 s pass (1)
wait_for() {
	for _ in $(seq 200); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# npm_modules PACKAGE PACKAGE_JSON MODULES_DIR PREFIX: set $modules to a
# node_modules directory holding PACKAGE: MODULES_DIR if it has it, else
# PREFIX/node_modules once an npm install of PACKAGE_JSON there has
# finished (PREFIX/.npm-installed), installing it first when none has (a
# bail-out when that fails). Tests that share a PREFIX may run at once:
# they take turns on a lock on PREFIX, so the first installs and the others
# wait for it and use what it installed. The caller has checked that node
# and npm are installed.
npm_modules() {
	local pkg=$1 json=$2 dir=$3 prefix=$4 lock
	modules=
	if [ -f "$dir/$pkg/package.json" ]; then
		modules=$dir
		return 0
	fi
	mkdir -p "$prefix"
	exec {lock}<"$prefix"
	if ! timeout -k 5 600 flock "$lock"; then
		echo "Bail out! no lock on $prefix"
		exit 1
	fi
	if [ ! -f "$prefix/.npm-installed" ] || [ ! -f "$prefix/node_modules/$pkg/package.json" ]; then
		cp "$json" "$prefix/package.json"
		if ! timeout -k 5 300 npm install --prefix "$prefix" --no-audit --no-fund >"$T/npm.log" 2>&1; then
			echo "Bail out! npm install $pkg failed"
			sed 's/^/# /' "$T/npm.log" | tail -20
			exit 1
		fi
		: >"$prefix/.npm-installed"
	fi
	exec {lock}<&-
	modules=$prefix/node_modules
}
