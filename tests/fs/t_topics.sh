#!/bin/bash
# Topics as directories: mkdir, ls, rmdir, rm -r, names, what is refused.
. "$(dirname "$0")/lib.sh"

fs_start --default.partitions=3

m0=$(stat -c %.9Y "$MNT")
check "mkdir creates a topic" mkdir "$MNT/alpha"
m1=$(stat -c %.9Y "$MNT")
check "mkdir of a topic moves the root's mtime forward" awk -v a="$m0" -v b="$m1" 'BEGIN { exit !(b > a) }'
check "... and its ctime with it" test "$(stat -c %.9Z "$MNT")" = "$m1"
check "ls shows the topic" test "$(ls "$MNT")" = "alpha"
check "a topic lists config.json and default.partitions=3 partitions" \
	test "$(ls "$MNT/alpha" | tr '\n' ' ')" = "0 1 2 config.json search "
check "a partition lists its three files" \
	test "$(ls "$MNT/alpha/1" | tr '\n' ' ')" = "data info.json records.jsonl search "
check "partition 3 does not exist" test ! -e "$MNT/alpha/3"
check "a topic is a directory with nlink 2 + partitions" test "$(stat -c %h "$MNT/alpha")" = 5
check "data is an empty regular file" test "$(stat -c '%F %s' "$MNT/alpha/0/data")" = "regular empty file 0"
check "st_blksize is 1 MiB" test "$(stat -c %o "$MNT/alpha/0/data")" = 1048576

expect_errno "a name with a space is EINVAL" "Invalid argument" mkdir "$MNT/a b"
expect_errno "a name with @ is EINVAL" "Invalid argument" mkdir "$MNT/a@b"
expect_errno "a 250-character name is EINVAL" "Invalid argument" mkdir "$MNT/$(printf 'x%.0s' $(seq 250))"
check "a 249-character name is fine" mkdir "$MNT/$(printf 'y%.0s' $(seq 249))"
check "dots, dashes and underscores are fine" mkdir "$MNT/a.b_c-D9"
expect_errno "mkdir of an existing topic is EEXIST" "File exists" mkdir "$MNT/alpha"
expect_errno "mkdir of a partition is EPERM" "Operation not permitted" mkdir "$MNT/alpha/3"
expect_errno "mkdir inside a partition is EPERM" "Operation not permitted" mkdir "$MNT/alpha/0/x"
expect_errno "a new file in a partition is EPERM" "Operation not permitted" touch "$MNT/alpha/0/new"
expect_errno "a file at the root is EPERM" "Operation not permitted" touch "$MNT/file"
expect_errno "rename of a topic is EPERM" "Operation not permitted" mv "$MNT/alpha" "$MNT/beta"
expect_errno "info.json is read-only" "denied\|not permitted" sh -c "echo x >> '$MNT/alpha/0/info.json'"
expect_errno "a partition that does not exist cannot be written" "No such file\|nonexistent" \
	sh -c "echo x >> '$MNT/alpha/7/data'"

check "rmdir deletes a topic" rmdir "$MNT/a.b_c-D9"
check "the deleted topic is gone" test ! -e "$MNT/a.b_c-D9"
m2=$(stat -c %.9Y "$MNT")
check "rmdir of a topic moves the root's mtime forward" awk -v a="$m1" -v b="$m2" 'BEGIN { exit !(b > a) }'

mkdir "$MNT/beta"
echo hello >>"$MNT/beta/0/data"
check "rm -r deletes a topic with data" rm -r "$MNT/beta"
check "the topic is gone from the listing" test -z "$(ls "$MNT" | grep -x beta)"
check "a topic of the same name starts empty" sh -c "mkdir '$MNT/beta' && test \"\$(stat -c %s '$MNT/beta/0/data')\" = 0"
check "rm of a view file succeeds and keeps it" sh -c "rm '$MNT/beta/0/data' && test -f '$MNT/beta/0/data'"

echo persisted >>"$MNT/alpha/2/data"
daemon_stop
ok $? "SIGTERM: chronikd exits 0"
check "SIGTERM: the mount is gone" sh -c "! awk -v m='$MNT' '\$2 == m { f = 1 } END { exit !f }' /proc/mounts"
fs_start
check "topics survive a restart" test "$(ls "$MNT" | grep -c -x -e alpha -e beta)" = 2
check "partition counts survive a restart" test "$(ls "$MNT/alpha" | wc -l)" = 5
check "data survives a restart" test "$(cat "$MNT/alpha/2/data")" = persisted

# Limits: alpha, beta and the 249-character topic hold 9 partitions.
daemon_stop
fs_start --default.partitions=3 --max.partitions=11 --max.topics=4
expect_errno "mkdir past max.partitions (9 + 3 > 11) is EDQUOT" "quota" mkdir "$MNT/gamma"
check "and creates nothing" test ! -e "$MNT/gamma"
rmdir "$MNT/$(printf 'y%.0s' $(seq 249))"
check "once a topic is deleted there is room for it" mkdir "$MNT/gamma"
daemon_stop
fs_start --default.partitions=1 --max.topics=3
expect_errno "mkdir past max.topics (a fourth) is EDQUOT" "quota" mkdir "$MNT/delta"
check "and creates nothing" test ! -e "$MNT/delta"

done_testing
