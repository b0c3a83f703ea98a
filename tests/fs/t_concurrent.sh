#!/bin/bash
# Two writers append 10,000 lines each to one partition, one write(2) per
# line, at the same time: 20,000 intact lines, each writer's in its order.
# Then two writers append multi-MiB writes (dd bs=3M) of varied-length
# lines to one data file at once: every write is cut into 1 MiB requests
# and ends inside a line, so lines cross request and write boundaries and
# are carried over in each writer's open file.
. "$(dirname "$0")/lib.sh"

fs_start
mkdir "$MNT/t"
D=$MNT/t/0/data
"$FS_WRITER" "$D" A 10000 &
wa=$!
"$FS_WRITER" "$D" B 10000 &
wb=$!
wait $wa
ok $? "writer A finished"
wait $wb
ok $? "writer B finished"
check "20,000 lines" test "$(wc -l <"$D")" = 20000
awk -f "$(dirname "$0")/check_lines.awk" -v want="A:10000 B:10000" "$D" >"$T/check.out"
ok $? "every line intact, none torn, each writer's lines in order"
sed 's/^/# /' "$T/check.out"
check "st_size equals the bytes read" test "$(stat -c %s "$D")" = "$(cat "$D" | wc -c)"

# The records.jsonl view of the same partition agrees.
check "records.jsonl has 20,000 lines" test "$(wc -l <"$MNT/t/0/records.jsonl")" = 20000
check "records.jsonl st_size equals the bytes read" \
	test "$(stat -c %s "$MNT/t/0/records.jsonl")" = "$(cat "$MNT/t/0/records.jsonl" | wc -c)"

# Multi-MiB writes: 12 MiB of fs_writer-style lines per writer, 3 MiB per
# write(2), into the data file of another topic, at the same time.
gen_lines() { # gen_lines TAG BYTES: fs_writer's lines up to BYTES
	awk -v tag="$1" -v max="$2" 'BEGIN {
		a = "abcdefghijklmnopqrstuvwxyz"
		a = a a a a a a a a a a # the filler: one substr of ten alphabets
		for (i = 0; size < max; i++) {
			s = tag " " i " " substr(a, i % 26 + 1, (i * 7) % 200)
			print s
			size += length(s) + 1
		}
	}'
}
gen_lines C $((12 << 20)) >"$T/c.txt"
gen_lines E $((12 << 20)) >"$T/e.txt"
nc=$(wc -l <"$T/c.txt")
ne=$(wc -l <"$T/e.txt")
check "the 3 MiB blocks end inside lines" test "$(head -c $((3 << 20)) "$T/c.txt" | tail -c 1 | od -An -c | tr -d ' ')" != '\n'
mkdir "$MNT/big"
D1=$MNT/big/0/data
dd if="$T/c.txt" of="$D1" bs=3M iflag=fullblock oflag=append conv=notrunc status=none &
wa=$!
dd if="$T/e.txt" of="$D1" bs=3M iflag=fullblock oflag=append conv=notrunc status=none &
wb=$!
wait $wa
ok $? "dd writer C (3 MiB writes) finished"
wait $wb
ok $? "dd writer E (3 MiB writes) finished"
awk -f "$(dirname "$0")/check_lines.awk" -v want="C:$nc E:$ne" "$D1" >"$T/check2.out"
ok $? "multi-MiB writes: all $nc + $ne lines intact, each writer's in order"
sed 's/^/# /' "$T/check2.out"
check "... and nothing else" test "$(wc -l <"$D1")" = $((nc + ne))

done_testing
