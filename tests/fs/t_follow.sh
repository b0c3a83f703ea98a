#!/bin/bash
# tail -f and tail -F (GNU coreutils) follow appends made through the mount
# by another process: every line, in order, each within 2 seconds of its
# append (the contract: tail polls fstat() about once a second on FUSE),
# measured per line; a line later than 10 s counts as missing. Also after
# a restart, when records.jsonl's size has to be counted again.
. "$(dirname "$0")/lib.sh"

fs_start
mkdir "$MNT/t"

now_ms() { date +%s%3N; }

# follow MODE FILE PRODUCE: tail MODE FILE, append 5 lines with PRODUCE I,
# wait for each in tail's output.
follow() {
	local mode=$1 file=$2 produce=$3 out=$T/tail.out tp i t0 d late=0 missing=0 max=0
	: >"$out"
	tail $mode -n 0 "$file" >"$out" 2>"$T/tail.err" &
	tp=$!
	sleep 1.2 # let tail open the file and take its first fstat
	for i in 1 2 3 4 5; do
		t0=$(now_ms)
		$produce "$i"
		if wait_for grep -q "line-$mode-$i\b" "$out"; then
			d=$(($(now_ms) - t0))
			[ $d -gt $max ] && max=$d
			if [ $d -ge 2000 ]; then
				late=$((late + 1))
				diag "line $i reached tail $mode after $d ms"
			fi
		else
			missing=$((missing + 1))
		fi
	done
	kill "$tp" 2>/dev/null
	wait "$tp" 2>/dev/null
	ok $missing "tail $mode $(basename "$file"): every appended line seen"
	ok $((missing + late)) "tail $mode $(basename "$file"): each line within 2 s (slowest ${max} ms)"
	grep -o "line-$mode-[0-9]*" "$out" | tr '\n' ' ' >"$T/order"
	check "tail $mode $(basename "$file"): in order" \
		test "$(cat "$T/order")" = "line-$mode-1 line-$mode-2 line-$mode-3 line-$mode-4 line-$mode-5 "
}

append_data() { echo "line-$mode-$1" >>"$MNT/t/0/data"; }
append_json() { echo "{\"value\":\"line-$mode-$1\"}" >>"$MNT/t/0/records.jsonl"; }

mode=-f follow -f "$MNT/t/0/data" append_data
mode=-F follow -F "$MNT/t/0/data" append_data
mode=-f follow -f "$MNT/t/0/records.jsonl" append_json
mode=-F follow -F "$MNT/t/0/records.jsonl" append_json
# appends to data are seen by a tail -f of records.jsonl, and the other way
mode=-f follow -f "$MNT/t/0/records.jsonl" append_data

# after a restart: records.jsonl's size is counted anew (by rendering the
# records already there) and tail -f / -F still follow it
daemon_stop
ok $? "restart: chronikd stopped"
fs_start
mode=-f follow -f "$MNT/t/0/records.jsonl" append_json
mode=-F follow -F "$MNT/t/0/records.jsonl" append_data
mode=-f follow -f "$MNT/t/0/data" append_json

done_testing
