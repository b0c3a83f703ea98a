#!/bin/bash
# Errors: one clear line on stderr, exit 1 (or 2 for usage); a locked data
# directory is refused while another process holds it.
. "$(dirname "$0")/lib.sh"

plan 25

# The CLI's message is one line on stderr, "chronik: <what>: <reason>",
# mentioning PATTERN; the engine's detail, if any, is inside that line.
one_clear_line() {
	[ "$(wc -l <"$T/err")" -eq 1 ] &&
		tail -n 1 "$T/err" | grep -Eq "^chronik: .+: .+" &&
		tail -n 1 "$T/err" | grep -qi -- "$1" || { diag_file "$T/err"; return 1; }
}

run 0 --data "$D" topic create t
ok $? "create t"

run 1 --data "$D" consume nosuch/0
ok $? "consume of an unknown topic exits 1"
one_clear_line 'unknown topic'
ok $? "with one clear line"
run 1 --data "$D" produce nosuch/0 </dev/null
ok $? "produce to an unknown topic exits 1"
run 1 --data "$D" topic delete nosuch
ok $? "delete of an unknown topic exits 1"

long=$(printf 'x%.0s' $(seq 250))
for name in 'a/b' '..' '.' "$long" 'sp ace' ''; do
	run 1 --data "$D" topic create "$name"
	st=$?
	[ $st -eq 0 ] && one_clear_line 'invalid name'
	ok $? "topic create '${name:0:20}' (${#name} chars) is refused as a bad name"
done
ok249=$(printf 'y%.0s' $(seq 249))
run 0 --data "$D" topic create "$ok249"
ok $? "a 249-character name is accepted"

run 2 --data "$D" frobnicate
ok $? "an unknown command is a usage error (exit 2)"
run 2 --data "$D" consume t/0 --from banana
ok $? "a bad --from is a usage error"
run 2 topic list
ok $? "no data directory is a usage error"
run 2 --data "$D" --set no.such.key=1 topic list
ok $? "an unknown --set key is a usage error"

# A follower takes no lock: it sees what a writer appends beside it.
printf 'one\ntwo\n' | "$CHRONIK" --data "$D" produce t/0
bg_start --data "$D" consume t/0 --follow >"$T/follow.out" 2>"$T/follow.err"
follower=$bg_pid
wait_lines "$T/follow.out" 2
ok $? "consume --follow prints the records and keeps running"
printf 'three\n' | "$CHRONIK" --data "$D" produce t/0
ok $? "a writer appends while the follower runs"
wait_lines "$T/follow.out" 3 && [ "$(sed -n 3p "$T/follow.out")" = three ]
ok $? "the follower shows the new record"

# The lock: a producer holds the directory while its stdin is open.
# (fd 7 opened read-write first, so that opening the reading end does not
# block; the producer itself must not inherit it, or it never sees EOF. Not
# bg_start: an asynchronous command's stdin would be /dev/null.)
mkfifo "$T/fifo"
exec 7<>"$T/fifo"
"$CHRONIK" --data "$D" produce t/0 <"$T/fifo" 7>&- &
producer=$!
bg_pids+=("$producer")
printf 'four\n' >&7
wait_lines "$T/follow.out" 4
ok $? "a long-running producer appends (the follower sees it)"
run 1 --data "$D" produce t/0 </dev/null
ok $? "a second writer on the locked directory exits 1"
one_clear_line 'locked'
ok $? "saying the directory is locked, in one line"
exec 7>&-
wait "$producer"
ok $? "the producer exits 0 at the end of its input"
kill -TERM "$follower"
wait "$follower"
ok $? "the follower exits 0 on SIGTERM"
run 0 --data "$D" topic list
ok $? "once the writer is gone the directory opens again"

done_testing
