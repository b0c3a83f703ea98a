#!/bin/bash
# The raw view: appends, cat, wc, tail -n, head -c, dd at any offset, sizes,
# partial lines, what is refused.
. "$(dirname "$0")/lib.sh"

fs_start
mkdir "$MNT/t"
D=$MNT/t/0/data
REF=$T/ref

printf 'a\nb\nc\n' >"$T/in"
cat "$T/in" >>"$D"
cp "$T/in" "$REF"
check "cat gives the three lines" test "$(cat "$D")" = "$(printf 'a\nb\nc')"
check "st_size is 6" test "$(stat -c %s "$D")" = 6
check "one write of three lines is one batch" grep -q '"batches": 1,' "$MNT/t/0/info.json"
check "wc -l says 3" test "$(wc -l <"$D")" = 3
check "tail -n 2" test "$(tail -n 2 "$D")" = "$(printf 'b\nc')"
check "head -c 3" test "$(head -c 3 "$D")" = "$(printf 'a\nb')"

bad=0
for skip in 0 1 2 3 4 5 6 7; do
	for count in 1 2 3; do
		a=$(dd if="$D" bs=1 skip=$skip count=$count 2>/dev/null | od -An -c)
		b=$(dd if="$REF" bs=1 skip=$skip count=$count 2>/dev/null | od -An -c)
		[ "$a" = "$b" ] || { bad=$((bad + 1)); diag "dd skip=$skip count=$count: '$a' != '$b'"; }
	done
done
ok $bad "dd bs=1 skip=N count=M returns the right bytes at every offset"

# Many lines of varying length, written by cat in 128 KiB pieces that cut
# lines apart: the pieces' partial lines wait in the handle.
awk 'BEGIN { for (i = 0; i < 20000; i++) { s = sprintf("line %06d ", i); for (j = 0; j < i % 37; j++) s = s "x"; print s } }' >"$T/big"
cat "$T/big" >>"$D"
cat "$T/big" >>"$REF"
check "a large append reads back byte for byte" cmp -s "$D" "$REF"
check "st_size after the large append" test "$(stat -c %s "$D")" = "$(stat -c %s "$REF")"
check "wc -l after the large append" test "$(wc -l <"$D")" = 20003
check "tail -n 5 of the large file" test "$(tail -n 5 "$D")" = "$(tail -n 5 "$REF")"
size=$(stat -c %s "$REF")
bad=0
for skip in 1 4095 4096 65537 131071 131072 300001 $((size - 10)) $((size - 1)); do
	a=$(dd if="$D" bs=1 skip=$skip count=17 2>/dev/null | od -An -c)
	b=$(dd if="$REF" bs=1 skip=$skip count=17 2>/dev/null | od -An -c)
	[ "$a" = "$b" ] || { bad=$((bad + 1)); diag "dd skip=$skip: differs"; }
done
ok $bad "dd skip= at scattered offsets of the large file"
a=$(dd if="$D" bs=1M count=1 status=none | md5sum)
b=$(head -c 1048576 "$REF" | md5sum)
check "one 1 MiB read() returns everything up to 1 MiB" test "$a" = "$b"

# A partial line waits in the handle for its newline, then for close().
# (One process, one descriptor: the kernel reports every close() of every
# duplicate of a descriptor as a flush, and a flush appends the partial.)
check "a partial line waits for its newline, then for close()" python3 - "$D" "$REF" <<'PY'
import os, sys
d, ref = sys.argv[1], sys.argv[2]
size = os.stat(d).st_size
fd = os.open(d, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"part1")
assert os.stat(d).st_size == size, "partial line visible"
os.write(fd, b"part2\nrest")
assert os.stat(d).st_size == size + len(b"part1part2\n"), "line not appended"
os.close(fd)
assert os.stat(d).st_size == size + len(b"part1part2\nrest\n"), "rest not appended on close"
with open(ref, "ab") as f:
    f.write(b"part1part2\nrest\n")
PY
check "the partial lines read back" cmp -s "$D" "$REF"
printf 'no newline' >>"$D"
printf 'no newline\n' >>"$REF"
check "echo -n then close appends one record" cmp -s "$D" "$REF"
printf '\n' >>"$D"
printf '\n' >>"$REF"
check "an empty line is an empty record" cmp -s "$D" "$REF"

# The FUSE workers serve request after request: 40 appends one after the
# other (each an open, a write, a flush and a release) start no thread
# once the pool has its threads: the threads seen after each append are
# those seen before. A worker that exited after each request (and cloned
# /dev/fuse for the next) showed up here as one new thread per append.
tids() { ls "/proc/$daemon_pid/task" | sort; }
printf 'warm\n' >>"$D"
printf 'warm\n' >>"$REF"
tids >"$T/tids.before"
: >"$T/tids.seen"
for i in $(seq 40); do
	printf 'seq %d\n' "$i" >>"$D"
	printf 'seq %d\n' "$i" >>"$REF"
	tids >>"$T/tids.seen"
done
new=$(sort -u "$T/tids.seen" | comm -13 "$T/tids.before" - | wc -l)
[ "$new" -le 4 ] || diag "$new threads started during 40 appends"
ok $((new > 4)) "40 appends one after the other start at most 4 threads ($new)"
check "the 40 appends read back" cmp -s "$D" "$REF"

# dd in blocks that are not a divisor of a line, nor page-sized, nor
# aligned with anything: the bytes come back in order, none dropped or
# repeated.
awk 'BEGIN { for (i = 0; i < 80000; i++) printf "dd line %06d %s\n", i, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1, i % 37) }' >"$T/odd"
for bs in 1 7 4093 65537 1048573 1048576 3000001; do
	head -c $((bs < 100000 ? bs * 13 : 2500000)) "$T/odd" >"$T/chunk"
	dd if="$T/chunk" of="$D" bs=$bs oflag=append conv=notrunc status=none
	cat "$T/chunk" >>"$REF"
	# the chunk may end inside a line: close() appends it with a newline
	[ "$(tail -c 1 "$T/chunk" | od -An -c | tr -d ' ')" = '\n' ] || printf '\n' >>"$REF"
done
check "dd with odd block sizes reads back byte for byte" cmp -s "$D" "$REF"

size=$(stat -c %s "$REF")
expect_errno "> on a non-empty log is EPERM" "Operation not permitted" sh -c "echo x > '$D'"
expect_errno "truncate is EPERM" "Operation not permitted" truncate -s 0 "$D"
check "truncate to the current size is a no-op" truncate -s "$size" "$D"
expect_errno "a write at offset 0 without O_APPEND is EINVAL" "Invalid argument" \
	dd if="$T/in" of="$D" conv=notrunc bs=1 count=2 status=none
check "a write at the end without O_APPEND appends" \
	dd if="$T/in" of="$D" conv=notrunc oflag=seek_bytes seek="$size" status=none
cat "$T/in" >>"$REF"
check "the log is unchanged by refused writes and has the append" cmp -s "$D" "$REF"
check "> on an empty partition works" sh -c "mkdir '$MNT/u' && echo fresh > '$MNT/u/0/data' && test \"\$(cat '$MNT/u/0/data')\" = fresh"
check "fsync works" dd if="$T/in" of="$MNT/u/0/data" oflag=append conv=notrunc,fsync status=none
check "df on the mount" sh -c "df '$MNT' >/dev/null"

# A carried-over partial line of almost 64 MiB: the write that completes it
# within the limit succeeds even when the lines after its newline take the
# write past 64 MiB (only the partial line is bounded).
check "a write completing a 64 MiB - 100 partial line within the limit succeeds" \
	python3 - "$MNT" <<'PY'
import json, os, sys
mnt = sys.argv[1]
os.mkdir(mnt + "/big")
d = mnt + "/big/0/data"
fd = os.open(d, os.O_WRONLY | os.O_APPEND)
part = (64 << 20) - 100
chunk = b"x" * (1 << 20)
left = part
while left:
    left -= os.write(fd, chunk[:min(left, len(chunk))])
tail = b"y" * 50 + b"\n" + b"z" * 200 + b"\n"
assert os.write(fd, tail) == len(tail), "short write"
os.close(fd)
info = json.load(open(mnt + "/big/0/info.json"))
assert info["next_offset"] == 2, "records: %d" % info["next_offset"]
assert os.stat(d).st_size == part + len(tail), "size %d" % os.stat(d).st_size
with open(d, "rb") as f:
    f.seek(part - 10)
    assert f.read() == b"x" * 10 + tail, "content"
PY

mtime1=$(stat -c %Y "$D")
check "mtime is true (not before the mount's start)" test "$mtime1" -ge "$(stat -c %Y "$T/in")"

daemon_stop
fs_start
check "the log reads back the same after a restart" cmp -s "$D" "$REF"

done_testing
