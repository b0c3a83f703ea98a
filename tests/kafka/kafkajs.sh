#!/bin/bash
# kafkajs 2.2.4 (tests/kafka/package.json) against the listener.
# Usage: kafkajs.sh KAFKA_SERVER NODE_MODULES_PARENT CHRONIK
# kafkajs is looked up in tests/node_modules (where tests/run installs it),
# then in NODE_MODULES_PARENT, and installed there with npm when missing.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "1..0 # SKIP node/npm not installed"
	exit 0
fi
prefix=${1:-$T/npm}
chronik=${2:-}
if [ ! -x "$chronik" ]; then
	echo "1..0 # SKIP no chronik binary given"
	exit 0
fi
npm_modules kafkajs "$here/package.json" "$here/../node_modules" "$prefix"

plan 16
server_start --partitions 1
NODE_PATH=$modules lim 150 node "$here/kafkajs_test.js" "$BROKER" >"$T/js.out" 2>"$T/js.err"
st=$?
while read -r tag res what; do
	[ "$tag" = RESULT ] && ok "$res" "$what"
done <"$T/js.out"
[ "$st" -eq 0 ] || { diag "node exited with $st"; diag_file "$T/js.err"; }
ok $(( st != 0 )) "the kafkajs program exits 0"
# deleteTopicRecords moved js/0's log start: chronik info (read-only,
# beside the live server) says so.
info=$("$chronik" --data "$T/data" info js/0 2>"$T/info.err")
ls=$(printf '%s' "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["log_start_offset"])' 2>/dev/null)
[ "$ls" = 100 ]
ok $? "chronik info js/0: log start $ls after deleteTopicRecords"
done_testing
