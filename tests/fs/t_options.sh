#!/bin/bash
# Settings and mount options: --config FILE.json (and flags winning over
# it), -o passthrough, allow_other opt-in, --fsync interval:MS, and a bad
# -o refused before the data directory is created.
. "$(dirname "$0")/lib.sh"

mount_opts() { # the options field of MNT's line in /proc/mounts
	awk -v m="$1" '$2 == m { print $4 }' /proc/mounts
}
has_opt() { # has_opt OPTS NAME
	case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac
}
lacks_opt() { ! has_opt "$@"; }
lacks_mount() { ! is_mounted "$1"; }

# a bad -o: refused with one log line, nothing created
timeout 20 "$CHRONIKD" -f --no-kafka -o no_such_fuse_option "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "an unknown -o option: non-zero exit"
check "... libfuse's complaint is one log line" \
	test "$(grep -c "unknown option.*no_such_fuse_option" "$T/err")" = 1
check "... not cut into pieces (no line ending in 'fuse:')" sh -c "! grep -q 'fuse: *\$' '$T/err'"
sed 's/^/# /' "$T/err"
check "... the data directory was not created" test ! -e "$DATA"
check "... and nothing is mounted" lacks_mount "$MNT"
timeout 20 "$CHRONIKD" --no-kafka -o no_such_fuse_option "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "the same in the background: non-zero exit"
check "... the data directory was not created" test ! -e "$DATA"

# defaults: private mount (no allow_other), default_permissions
fs_start
o=$(mount_opts "$MNT")
diag "default options: $o"
check "by default the mount has no allow_other" lacks_opt "$o" allow_other
check "by default it has default_permissions" has_opt "$o" default_permissions
daemon_stop

# -o passes options to FUSE: allow_other and max_read show in /proc/mounts
if [ "$(id -u)" -ne 0 ] && ! grep -q '^user_allow_other' /etc/fuse.conf 2>/dev/null; then
	diag "not root and no user_allow_other in /etc/fuse.conf: allow_other is checked for a refusal"
	timeout 20 "$CHRONIKD" -f --no-kafka -o allow_other "$DATA" "$MNT" 2>"$T/err"
	ok $(($? == 0)) "-o allow_other without user_allow_other: non-zero exit"
else
	fs_start -o allow_other,max_read=65536
	o=$(mount_opts "$MNT")
	diag "with -o allow_other,max_read=65536: $o"
	check "-o allow_other puts allow_other on the mount" has_opt "$o" allow_other
	check "-o max_read=65536 reaches the kernel" has_opt "$o" max_read=65536
	mkdir "$MNT/o" && echo one >>"$MNT/o/0/data"
	check "... and the mount works" test "$(cat "$MNT/o/0/data")" = one
	daemon_stop
fi

# --config FILE.json: nested keys, mount options; flags win over the file
cat >"$T/conf.json" <<'JSON'
{
  "default": { "partitions": 2 },
  "fsync": "interval:100",
  "mount": { "options": "max_read=131072" },
  "log.level": "warn"
}
JSON
fs_start --config "$T/conf.json"
mkdir "$MNT/c2"
check "--config: default.partitions from the file (2 partitions)" \
	test "$(ls "$MNT/c2" | tr '\n' ' ')" = "0 1 config.json search "
check "--config: mount.options from the file reach the kernel" has_opt "$(mount_opts "$MNT")" max_read=131072
daemon_stop
fs_start --config "$T/conf.json" --default.partitions=3
mkdir "$MNT/c3"
check "a flag wins over the file (3 partitions)" test "$(ls "$MNT/c3" | tr '\n' ' ')" = "0 1 2 config.json search "
daemon_stop
echo '{"fsync": "sometimes"}' >"$T/bad.json"
timeout 20 "$CHRONIKD" -f --no-kafka --config "$T/bad.json" "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "--config with a bad value: non-zero exit"
check "... naming the value and the file" sh -c "grep -q \"fsync: bad value 'sometimes'\" '$T/err' && grep -q 'bad.json' '$T/err'"
echo '[1, 2]' >"$T/arr.json"
timeout 20 "$CHRONIKD" -f --no-kafka --config "$T/arr.json" "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "--config with something else than an object: non-zero exit"
timeout 20 "$CHRONIKD" -f --no-kafka --config "$T/none.json" "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "--config with a missing file: non-zero exit"

# --fsync interval:MS: appends return, fsync(2) works, everything that was
# written survives a kill -9 (the page cache keeps it) and a restart
timeout 20 "$CHRONIKD" -f --no-kafka --fsync interval:abc "$DATA" "$MNT" 2>"$T/err"
ok $(($? == 0)) "--fsync interval:abc: non-zero exit"
fs_start --fsync interval:50
"$FS_WRITER" "$MNT/c2/0/data" I 2000
ok $? "--fsync interval:50: 2,000 appends return"
check "... fsync(2) of the file succeeds" python3 -c "
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, b'I 2000 ' + bytes(ord('a') + (2000 + k) % 26 for k in range((2000 * 7) % 200)) + b'\n')
os.fsync(fd)
os.close(fd)" "$MNT/c2/0/data"
sleep 0.2
daemon_stop KILL
unmount "$MNT"
fs_start
awk -f "$(dirname "$0")/check_lines.awk" -v want="I:2001" "$MNT/c2/0/data" >"$T/check.out"
ok $? "... after kill -9 and a restart all 2,001 lines are there, intact, in order"
sed 's/^/# /' "$T/check.out"
daemon_stop

# The Kafka listener's limits are settings too: an idle connection is closed.
if "$CHRONIKD" --help 2>&1 | grep -q 'built without the Kafka listener'; then
	ok 0 "# SKIP chronikd is built without the Kafka listener"
	ok 0 "# SKIP chronikd is built without the Kafka listener"
else
	timeout 20 "$CHRONIKD" -f --set kafka.max.groups=-1 "$DATA" "$MNT" 2>"$T/err"
	ok $(($? == 0)) "--set kafka.max.groups=-1: non-zero exit"
	: >"$T/chronikd.log"
	fs_start --kafka 127.0.0.1:0 --set kafka.connections.max.idle.ms=300
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/chronikd.log" | tail -n 1)
	diag "Kafka on port $port"
	check "--set kafka.connections.max.idle.ms=300: an idle connection is closed" \
		python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
try:
    sys.exit(0 if s.recv(1) == b"" else 1)  # b"": closed by the server
except socket.timeout:
    sys.exit(1)' "$port"
	daemon_stop
fi

done_testing
