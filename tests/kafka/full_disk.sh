#!/bin/bash
# Full disk: chronikd runs on a tmpfs of a few MiB that the test fills with
# a filler file. Then an `echo >> data` fails with ENOSPC, a Kafka produce
# (acks=all) is answered with KAFKA_STORAGE_ERROR (56) - neither hangs nor
# is dropped silently -, a topic create (the metadata log) fails, nothing
# acknowledged before is lost or damaged, and cat and kcat -C keep
# reading. Once the filler is removed, appends, produces and topic creates
# work again without a restart, and `chronik verify` is clean.
# Usage: full_disk.sh KAFKA_SERVER CHRONIKD CHRONIK
. "$(dirname "$0")/lib.sh"

daemon_prologue "$@"
SMALL=$T/small
DATA=$SMALL/data
mkdir -p "$SMALL"
small_mounted=
daemon_cleanup_extra() {
	if [ -n "$small_mounted" ]; then
		umount "$SMALL" 2>/dev/null || umount -l "$SMALL" 2>/dev/null
	fi
}
trap 'exit 1' INT TERM

if ! mount -t tmpfs -o size=6m,mode=0700 chronik-full "$SMALL" 2>"$T/mount.err"; then
	echo "1..0 # SKIP cannot mount a tmpfs here ($(head -n 1 "$T/mount.err"))"
	exit 0
fi
small_mounted=1

plan 18
daemon_start --set default.partitions=1
ok $? "chronikd on a 6 MiB tmpfs mounts and serves Kafka" || diag_file "$T/chronikd.log"

mkdir "$MNT/t"
D=$MNT/t/0/data
REF=$T/ref
seq 1 200 | sed 's/^/before-/' >"$REF"
cat "$REF" >>"$D"
cmp -s "$REF" "$D"
ok $? "200 lines appended before the disk is full"

# kp TOPIC < LINES: produce with acks=all and no retries (librdkafka
# retries a storage error until message.timeout.ms otherwise).
kp() {
	lim 60 kcat -b "$BROKER" -P -t "$1" -X acks=all -X retries=0 -X message.timeout.ms=10000 \
		2>"$T/p.err"
}

# Fill the filesystem to its last block.
dd if=/dev/zero of="$SMALL/filler" bs=64k status=none 2>/dev/null
avail=$(df --output=avail -B1 "$SMALL" | tail -n 1 | tr -d ' ')
[ "$avail" -lt 65536 ]
ok $? "the filler leaves less than 64 KiB free (df says $avail bytes)"

# The active WAL file's last page may still take a few bytes: append 4 KiB
# lines until one fails. Those that returned are acknowledged and must stay.
line=$(head -c 4000 /dev/zero | tr '\0' 'x')
first_err=
for i in $(seq 1 64); do
	if lim 30 bash -c 'printf "%s\n" "$1" >>"$2"' _ "full-$i-$line" "$D" 2>"$T/w.err"; then
		printf '%s\n' "full-$i-$line" >>"$REF"
	else
		first_err=$i
		break
	fi
done
[ -n "$first_err" ] && grep -q 'No space left on device' "$T/w.err"
ok $? "an append to data on the full disk fails with ENOSPC (after $((${first_err:-65} - 1)) that fit)" ||
	diag_file "$T/w.err"
lim 30 bash -c 'printf "%s\n" "$1" >>"$2"' _ "again-$line" "$D" 2>"$T/w.err"
st=$?
[ $st -ne 0 ] && grep -q 'No space left on device' "$T/w.err"
ok $? "a second 4 KiB append fails with ENOSPC too (status $st)" || diag_file "$T/w.err"

printf 'kafka-full-%s\n' "$line" | kp t
st=$?
[ $st -ne 0 ] && grep -qi 'storage\|disk error' "$T/p.err"
ok $? "a Kafka produce on the full disk gets KAFKA_STORAGE_ERROR (kcat status $st)" ||
	diag_file "$T/p.err"

# The metadata log's last page takes a few topic creates; then they fail.
made=0
for i in $(seq 1 400); do
	if ! lim 30 mkdir "$MNT/full-topic-$i" 2>"$T/m.err"; then
		break
	fi
	made=$i
done
[ "$made" -lt 400 ] && grep -q 'No space left on device' "$T/m.err"
ok $? "mkdir of a topic on the full disk fails with ENOSPC (after $made that fit)" ||
	diag_file "$T/m.err"
[ -d "$MNT/full-topic-$made" ] || [ "$made" -eq 0 ]
st=$?
[ ! -e "$MNT/full-topic-$((made + 1))" ]
ok $(( st || $? )) "the topics created before it exist, the failed one does not"

lim 30 cat "$D" >"$T/got" 2>"$T/c.err"
st=$?
cmp -s "$REF" "$T/got"
ok $(( st || $? )) "cat data on the full disk shows every acknowledged line, nothing else" ||
	{ diag "got $(wc -l <"$T/got") lines, want $(wc -l <"$REF")"; diag_file "$T/c.err"; }
lim 30 kcat -b "$BROKER" -C -t t -o beginning -e -q >"$T/k" 2>"$T/k.err"
st=$?
cmp -s "$REF" "$T/k"
ok $(( st || $? )) "kcat -C on the full disk reads the same records" || diag_file "$T/k.err"
kill -0 "$daemon_pid" 2>/dev/null
ok $? "chronikd is still running"

# Free the space: everything works again without a restart.
rm -f "$SMALL/filler"
lim 30 bash -c 'echo after-1 >>"$1"' _ "$D" 2>"$T/w.err"
ok $? "once space is freed, echo >> data works again" || diag_file "$T/w.err"
echo after-1 >>"$REF"
printf 'after-2\nafter-3\n' | kp t
ok $? "and a Kafka produce is acknowledged" || diag_file "$T/p.err"
printf 'after-2\nafter-3\n' >>"$REF"
lim 30 mkdir "$MNT/newtopic" 2>"$T/m.err" && echo n1 >>"$MNT/newtopic/0/data"
ok $? "and a topic can be created and appended to" || diag_file "$T/m.err"
lim 30 cat "$D" >"$T/got" 2>/dev/null
cmp -s "$REF" "$T/got"
ok $? "cat data shows the acknowledged lines from before, during and after the full disk" ||
	diag "got $(wc -l <"$T/got") lines, want $(wc -l <"$REF")"
offs=$(lim 30 kcat -b "$BROKER" -C -t t -o beginning -e -q -f '%o\n' 2>/dev/null)
[ "$offs" = "$(seq 0 $(($(wc -l <"$REF") - 1)))" ]
ok $? "offsets are dense: no offset was consumed by a failed append"

pid_stop "$daemon_pid" 150
st=$?
daemon_pid=
[ $st -eq 0 ]
ok $? "chronikd stops cleanly (status $st)" || diag_file "$T/chronikd.log"
lim 60 "$CHRONIK" --data "$DATA" verify >"$T/v.out" 2>&1
ok $? "chronik verify is clean" || diag_file "$T/v.out"
