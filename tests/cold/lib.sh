# lib.sh - the cold suite's helpers: an s3rver on 127.0.0.1 and chronikd
# attached to it. Source it from a test run as: TEST CHRONIKD NPM_PREFIX.
# Each test gets its own directory T; the daemon and the server it started
# are stopped on exit whatever happens, and the mount is always unmounted.
. "$(dirname "${BASH_SOURCE[0]}")/../fs/lib.sh"

# lim SECONDS CMD...: run CMD with a wall-clock limit.
lim() {
	local s=$1
	shift
	timeout -k 5 "$s" "$@"
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=${2:-$T/npm}
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "1..0 # SKIP node/npm not installed"
	exit 0
fi
npm_modules s3rver "$here/package.json" "$here/../node_modules" "$prefix"
S3_MODULES=$modules

S3DIR=$T/s3
S3PORT=
s3_pid=
mkdir -p "$S3DIR"

# s3_start: start s3rver (on S3PORT when set, else any port) and wait for it.
s3_start() {
	NODE_PATH=$S3_MODULES node "$here/s3rver.js" "$S3DIR" "${S3PORT:-0}" >"$T/s3.out" 2>>"$T/s3.log" &
	s3_pid=$!
	for _ in $(seq 1200); do # 60 s: node starts slowly on a loaded machine
		if grep -q '^PORT ' "$T/s3.out" 2>/dev/null; then
			S3PORT=$(sed -n 's/^PORT //p' "$T/s3.out")
			return 0
		fi
		kill -0 "$s3_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "Bail out! s3rver did not start"
	sed 's/^/# /' "$T/s3.log"
	exit 1
}
s3_stop() {
	[ -n "$s3_pid" ] || return 0
	kill "$s3_pid" 2>/dev/null
	kill -CONT "$s3_pid" 2>/dev/null # a hung store (SIGSTOP) takes the TERM now
	wait "$s3_pid" 2>/dev/null
	s3_pid=
}
trap 's3_stop; cleanup' EXIT

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER

# cold_start [ARGS...]: chronikd on DATA/MNT with the cold tier on s3rver.
cold_start() {
	fs_start --set remote.storage.url=s3://chronik/c1 \
		--set remote.storage.endpoint="http://127.0.0.1:$S3PORT" \
		--set remote.storage.timeout.ms=2000 \
		--set wal.segment.bytes=32768 --set wal.seal.ms=200 "$@"
}

# Settings that send every segment over 16 KiB up as a multipart upload
# of 8 KiB parts (the tests' segments are about 32 KiB).
MULTIPART=(--set remote.storage.multipart.bytes=16384 --set remote.storage.multipart.part.bytes=8192)
# Multipart uploads completed (and verified) by this test's daemons.
multipart_done() {
	grep -Ec 'bytes sent in [0-9]+ parts' "$T/chronikd.log"
}

# remote_topic TOPIC LOCAL_RETENTION_BYTES: a topic of one partition whose
# segments go to the store, keeping that many bytes of them locally.
remote_topic() {
	mkdir "$MNT/$1" || return 1
	printf '{"remote.storage.enable": "true", "local.retention.bytes": "%s"}\n' "$2" >"$MNT/$1/config.json"
}

# append_noise TOPIC CHUNKS: CHUNKS appends of 100 lines each
# ("b<chunk>-line-<n>-" and 80 hex digits of noise, so that lz4 leaves the
# segments about as big) to TOPIC/0/data, and the same lines to $T/expect.
append_noise() {
	local b
	for b in $(seq 0 $(($2 - 1))); do
		awk -v b="$b" 'BEGIN { srand(b + 1); for (i = 0; i < 100; i++) {
			s = sprintf("b%d-line-%05d-", b, b * 100 + i)
			for (j = 0; j < 10; j++) s = s sprintf("%08x", int(rand() * 4294967296))
			print s } }' >"$T/chunk"
		cat "$T/chunk" >>"$MNT/$1/0/data" || return 1
		cat "$T/chunk" >>"$T/expect"
	done
}

# Objects in the bucket (s3rver keeps each as a ._S3rver_object file).
s3_objects() {
	find "$S3DIR/chronik" -name '*._S3rver_object' 2>/dev/null | wc -l
}
# Bytes of the local segment files of every partition.
local_seg_bytes() {
	find "$DATA/segments" -name '*.seg' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
remote_in_registry() {
	cat "$DATA"/segments/*/*/registry.json 2>/dev/null | grep -Ec '"state": ?"remote"'
}
remote_at_least() { [ "$(remote_in_registry)" -ge "$1" ]; } # remote_at_least N
# remote_at OFFSET...: the registry has every OFFSET in a remote segment.
remote_at() {
	python3 - "$@" "$DATA"/segments/*/*/registry.json <<'PY'
import json, sys
offs = [int(a) for a in sys.argv[1:] if a.isdigit()]
segs = [s for f in sys.argv[1:] if f.endswith(".json") for s in json.load(open(f))["segments"]]
sys.exit(0 if all(any(s.get("state") == "remote" and s["base_offset"] <= o <= s["last_offset"]
                      for s in segs) for o in offs) else 1)
PY
}
