#!/bin/bash
# Two writers append 10,000 lines each to one partition, one write(2) per
# line, at the same time: 20,000 intact lines, each writer's in its order.
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

# Both writers through one records.jsonl and one data of another partition
# at once: the views agree.
check "records.jsonl has 20,000 lines" test "$(wc -l <"$MNT/t/0/records.jsonl")" = 20000
check "records.jsonl st_size equals the bytes read" \
	test "$(stat -c %s "$MNT/t/0/records.jsonl")" = "$(cat "$MNT/t/0/records.jsonl" | wc -c)"

done_testing
