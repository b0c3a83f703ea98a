#!/bin/bash
# @platformatic/kafka (tests/kafka/platformatic/package.json), a client that
# negotiates the highest common version of each API, against the listener:
# produce, group consume, commit, with every API it used checked to have
# gone out at a flexible version (platformatic/flexible_test.mjs).
# Usage: platformatic.sh KAFKA_SERVER NODE_MODULES_PARENT
# The package is looked up in tests/kafka/platformatic/node_modules, then in
# NODE_MODULES_PARENT, and installed there with npm when missing.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "1..0 # SKIP node/npm not installed"
	exit 0
fi
prefix=${1:-$T/npm}
npm_modules @platformatic/kafka "$here/platformatic/package.json" \
	"$here/platformatic/node_modules" "$prefix"

server_start --partitions 1
# An ES module resolves packages from its own directory up, not NODE_PATH:
# run a copy of it beside the modules.
cp "$here/platformatic/flexible_test.mjs" "$modules/../flexible_test.mjs"
lim 120 node "$modules/../flexible_test.mjs" "$BROKER" >"$T/js.out" 2>"$T/js.err"
st=$?
n=0
while read -r tag res what; do
	[ "$tag" = RESULT ] && { ok "$res" "$what"; n=$((n + 1)); }
	[ "$tag" = "#" ] && diag "$res $what"
done <"$T/js.out"
[ "$st" -eq 0 ] || { diag "node exited with $st"; diag_file "$T/js.err"; }
ok $(( st != 0 )) "the @platformatic/kafka program exits 0"
ok $(( n < 10 )) "it reported its results ($n)"
done_testing
