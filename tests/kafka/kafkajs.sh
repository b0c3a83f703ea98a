#!/bin/bash
# kafkajs 2.2.4 (tests/kafka/package.json) against the listener.
# Usage: kafkajs.sh KAFKA_SERVER NODE_MODULES_PARENT
# kafkajs is looked up in tests/node_modules (where tests/run installs it),
# then in NODE_MODULES_PARENT, and installed there with npm when missing.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "1..0 # SKIP node/npm not installed"
	exit 0
fi
prefix=${1:-$T/npm}
modules=
for d in "$here/../node_modules" "$prefix/node_modules"; do
	if [ -f "$d/kafkajs/package.json" ]; then
		modules=$d
		break
	fi
done
if [ -z "$modules" ]; then
	mkdir -p "$prefix"
	cp "$here/package.json" "$prefix/package.json"
	if ! lim 300 npm install --prefix "$prefix" --no-audit --no-fund >"$T/npm.log" 2>&1; then
		echo "Bail out! npm install kafkajs failed"
		sed 's/^/# /' "$T/npm.log" | tail -20
		exit 1
	fi
	modules=$prefix/node_modules
fi

plan 14
server_start --partitions 1
NODE_PATH=$modules lim 150 node "$here/kafkajs_test.js" "$BROKER" >"$T/js.out" 2>"$T/js.err"
st=$?
while read -r tag res what; do
	[ "$tag" = RESULT ] && ok "$res" "$what"
done <"$T/js.out"
[ "$st" -eq 0 ] || { diag "node exited with $st"; diag_file "$T/js.err"; }
ok $(( st != 0 )) "the kafkajs program exits 0"
done_testing
