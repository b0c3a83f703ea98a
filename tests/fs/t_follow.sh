#!/bin/bash
# tail -f and tail -F (GNU coreutils) follow appends made through the mount
# by another process: every line, in order, each within 2 seconds of its
# append (the contract: tail polls fstat() about once a second on FUSE),
# measured per line; a line later than 10 s counts as missing. Also after
# a restart, when records.jsonl's size has to be counted again.
#
# Each follow is a session of its own (its own topic, its own tail, lines
# tagged with its name); the sessions before the restart run at once, and
# so do those after it: a line waits for tail's next poll, so one session
# at a time would leave the machine idle for most of the test.
. "$(dirname "$0")/lib.sh"

fs_start

# session NAME MODE FILE PRODUCE: tail MODE NAME/0/FILE (NAME is the
# topic), append 5 lines with PRODUCE NAME I, and read tail's output until
# each has come (no polling: the time a line takes is the time read(2)
# returns it); writes "MISSING LATE MAX" and then the lines in the order
# tail printed them to $T/NAME.res.
session() {
	local name=$1 mode=$2 file=$MNT/$1/0/$3 produce=$4 tp fd i t0 t d line left secs
	local late=0 missing=0 max=0 order=
	rm -f "$T/$name.late"
	exec {fd}< <(exec tail $mode -n 0 "$file" 2>"$T/$name.err")
	tp=$!
	sleep 1.2 # let tail open the file and take its first fstat
	for i in 1 2 3 4 5; do
		t0=${EPOCHREALTIME/./}
		$produce "$name" "$i"
		d=-1
		while :; do
			t=${EPOCHREALTIME/./}
			left=$((10000000 - (t - t0))) # a line later than 10 s is missing
			[ $left -gt 0 ] || break
			printf -v secs '%d.%06d' $((left / 1000000)) $((left % 1000000))
			read -r -t "$secs" -u "$fd" line || break
			[[ $line =~ line-$name-[0-9]+ ]] && order+="${BASH_REMATCH[0]} "
			if [[ $line =~ line-$name-$i([^0-9]|$) ]]; then
				d=$(((${EPOCHREALTIME/./} - t0) / 1000))
				break
			fi
		done
		if [ $d -lt 0 ]; then
			missing=$((missing + 1))
			continue
		fi
		[ $d -gt $max ] && max=$d
		if [ $d -ge 2000 ]; then
			late=$((late + 1))
			echo "# line $i reached tail $mode after $d ms" >>"$T/$name.late"
		fi
	done
	kill "$tp" 2>/dev/null
	while read -r -u "$fd" line; do # what tail printed before it went
		[[ $line =~ line-$name-[0-9]+ ]] && order+="${BASH_REMATCH[0]} "
	done
	exec {fd}<&-
	printf '%s %s %s\n%s\n' "$missing" "$late" "$max" "$order" >"$T/$name.res"
}

# report NAME MODE FILE: the three points of session NAME.
report() {
	local name=$1 mode=$2 what="tail $2 $3" missing late max order
	{ read -r missing late max; read -r order; } <"$T/$name.res"
	[ -f "$T/$name.late" ] && cat "$T/$name.late"
	ok "$missing" "$what: every appended line seen"
	ok $((missing + late)) "$what: each line within 2 s (slowest ${max} ms)"
	check "$what: in order" test "$order" = "line-$name-1 line-$name-2 line-$name-3 line-$name-4 line-$name-5"
}

append_data() { echo "line-$1-$2" >>"$MNT/$1/0/data"; }
append_json() { echo "{\"value\":\"line-$1-$2\"}" >>"$MNT/$1/0/records.jsonl"; }

# sessions [NAME MODE FILE PRODUCE]...: run them at once (a topic NAME is
# made for each that has none), then report each in turn.
sessions() {
	local args=("$@") k pids=()
	for ((k = 0; k < ${#args[@]}; k += 4)); do
		[ -d "$MNT/${args[k]}" ] || mkdir "$MNT/${args[k]}"
	done
	for ((k = 0; k < ${#args[@]}; k += 4)); do
		session "${args[@]:k:4}" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for ((k = 0; k < ${#args[@]}; k += 4)); do
		report "${args[@]:k:3}"
	done
}

# The last: appends to data are seen by a tail -f of records.jsonl.
sessions \
	fd -f data append_data \
	Fd -F data append_data \
	fj -f records.jsonl append_json \
	Fj -F records.jsonl append_json \
	fjd -f records.jsonl append_data

# after a restart: records.jsonl's size is counted anew (by rendering the
# records already there) and tail -f / -F still follow it
daemon_stop
ok $? "restart: chronikd stopped"
fs_start
sessions \
	fj -f records.jsonl append_json \
	Fj -F records.jsonl append_data \
	fd -f data append_json

done_testing
