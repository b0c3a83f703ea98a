#!/bin/bash
# SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), TLS, ACLs and the remote-bind
# rule with kcat. Test certificates are made here with the openssl CLI.
# Usage: security.sh KAFKA_SERVER CHRONIK [CHRONIKD]
. "$(dirname "$0")/lib.sh"

CHRONIK=${1:-}
CHRONIKD=${2:-}
for tool in kcat openssl; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP $tool not installed"
		exit 0
	fi
done
if [ ! -x "$CHRONIK" ]; then
	echo "1..0 # SKIP no chronik binary given"
	exit 0
fi

plan 26

U=$T/users
echo 'alice-pw' | "$CHRONIK" user add alice --file "$U" 2>"$T/ua.err"
ok $? "chronik user add alice (both SCRAM mechanisms)" || diag_file "$T/ua.err"
echo 'reader-pw' | "$CHRONIK" user add reader --mechanism SCRAM-SHA-512 --file "$U"
echo 'writer-pw' | "$CHRONIK" user add writer --mechanism SCRAM-SHA-256 --file "$U"
! grep -q -e alice-pw -e reader-pw -e writer-pw "$U" && [ "$(grep -c '^scram ' "$U")" = 4 ] &&
	[ "$(stat -c %a "$U")" = 600 ]
ok $? "the users file holds 4 salted credentials, no password, mode 600" || diag_file "$U"
cat >>"$U" <<'ACL'
acl alice all topic *
acl alice all group *
acl reader read topic pub-*
acl reader read group *
acl writer write topic pub-*
ACL

# Re-adding a user replaces its line: the old password stops working below.
echo 'old-pw' | "$CHRONIK" user add carol --mechanism SCRAM-SHA-256 --file "$U"
echo 'carol-pw' | "$CHRONIK" user add carol --mechanism SCRAM-SHA-256 --file "$U"
echo 'acl carol all topic *' >>"$U"
[ "$(grep -c '^scram carol ' "$U")" = 1 ]
ok $? "re-adding a user replaces its credential line"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
	-subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>"$T/ossl.err"
ok $? "openssl makes a test certificate" || diag_file "$T/ossl.err"

server_start --partitions 1 --users "$U" --tls 127.0.0.1:0 --tls-cert "$T/cert.pem" \
	--tls-key "$T/key.pem"
TLSPORT=$(awk '/^TLSPORT /{print $2}' "$T/server.out")
[ -n "$TLSPORT" ]
ok $? "the TLS listener has its own port ($TLSPORT)"

sasl() { # sasl USER PASSWORD MECH [kcat args...]
	local u=$1 p=$2 m=$3
	shift 3
	lim 30 kcat -b "$BROKER" -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms="$m" \
		-X sasl.username="$u" -X sasl.password="$p" "$@"
}

seq 1 300 | sed 's/^/r-/' >"$T/lines"
for m in PLAIN SCRAM-SHA-256 SCRAM-SHA-512; do
	sasl alice alice-pw $m -P -t "t-$m" <"$T/lines" 2>"$T/p.err"
	st=$?
	sasl alice alice-pw $m -C -t "t-$m" -o beginning -e -q >"$T/got" 2>"$T/c.err"
	cmp -s "$T/lines" "$T/got"
	ok $(( st || $? )) "SASL/$m: produce and consume 300 records" ||
		{ diag_file "$T/p.err"; diag_file "$T/c.err"; }
done

for m in PLAIN SCRAM-SHA-256 SCRAM-SHA-512; do
	echo x | sasl alice wrong-pw $m -P -t t-wrong 2>"$T/w.err"
	st=$?
	grep -q 'Authentication failed' "$T/w.err"
	ok $(( !st || $? )) "SASL/$m: a wrong password is refused (SASL_AUTHENTICATION_FAILED)" ||
		diag_file "$T/w.err"
done
echo x | sasl mallory alice-pw SCRAM-SHA-256 -P -t t-wrong 2>"$T/w.err"
st=$?
grep -q 'Authentication failed' "$T/w.err"
ok $(( !st || $? )) "an unknown user is refused" || diag_file "$T/w.err"
echo x | sasl carol old-pw SCRAM-SHA-256 -P -t t-wrong 2>"$T/w.err"
st=$?
echo x | sasl carol carol-pw SCRAM-SHA-256 -P -t t-carol 2>"$T/w2.err"
ok $(( !st || $? )) "after re-adding carol only her new password works" ||
	{ diag_file "$T/w.err"; diag_file "$T/w2.err"; }

lim 30 kcat -b "$BROKER" -m 3 -L >"$T/meta" 2>&1
! grep -q 'topic "t-PLAIN"' "$T/meta"
ok $? "without SASL the broker serves no metadata" || diag_file "$T/meta"

# ACLs: writer may write pub-*, reader may read it, neither more; only
# alice may create topics (a producer's Metadata auto-creates them).
echo init | sasl alice alice-pw PLAIN -P -t pub-1 2>/dev/null
{ echo init; cat "$T/lines"; } >"$T/pub"
sasl writer writer-pw SCRAM-SHA-256 -P -t pub-1 <"$T/lines" 2>"$T/p.err"
ok $? "a user allowed to write produces" || diag_file "$T/p.err"
echo x | sasl reader reader-pw SCRAM-SHA-512 -P -t pub-1 -X message.send.max.retries=0 2>"$T/d.err"
st=$?
grep -q 'Topic authorization failed' "$T/d.err"
ok $(( !st || $? )) "a read-only user producing gets TOPIC_AUTHORIZATION_FAILED (29)" ||
	diag_file "$T/d.err"
sasl reader reader-pw SCRAM-SHA-512 -C -t pub-1 -o beginning -e -q >"$T/got" 2>"$T/c.err"
cmp -s "$T/pub" "$T/got"
ok $? "the read-only user consumes" || diag_file "$T/c.err"
sasl writer writer-pw SCRAM-SHA-256 -C -t pub-1 -o beginning -e -q >"$T/got" 2>"$T/c.err"
st=$?
grep -q 'authorization failed' "$T/c.err" && [ ! -s "$T/got" ]
ok $(( !st || $? )) "a write-only user fetching gets TOPIC_AUTHORIZATION_FAILED" ||
	diag_file "$T/c.err"
sasl reader reader-pw SCRAM-SHA-512 -L >"$T/meta" 2>&1
grep -q 'topic "pub-1"' "$T/meta" && ! grep -q 'topic "t-PLAIN"' "$T/meta"
ok $? "Metadata lists only the topics a user may describe" || diag_file "$T/meta"

# TLS: SASL_SSL with the test CA.
tls() {
	lim 30 kcat -b "127.0.0.1:$TLSPORT" -X security.protocol=SASL_SSL \
		-X ssl.ca.location="$T/cert.pem" -X sasl.mechanisms=SCRAM-SHA-512 \
		-X sasl.username=alice -X sasl.password=alice-pw "$@"
}
seq 1 5000 | sed 's/^/tls-/' >"$T/tlines"
tls -P -t tls-1 <"$T/tlines" 2>"$T/p.err"
st=$?
tls -C -t tls-1 -o beginning -e -q >"$T/got" 2>"$T/c.err"
cmp -s "$T/tlines" "$T/got"
ok $(( st || $? )) "SASL_SSL: 5,000 records produced and consumed over TLS" ||
	{ diag_file "$T/p.err"; diag_file "$T/c.err"; }
tls -L >"$T/meta" 2>&1
grep -q "broker 1 at 127.0.0.1:$TLSPORT" "$T/meta"
ok $? "over TLS the broker advertises the TLS port" || diag_file "$T/meta"
server_stop

# The remote-bind rule: no traffic leaves loopback (a refused bind sends
# nothing; the allowed one is reached via 127.0.0.1).
lim 20 "$KAFKA_SERVER" "$T/data2" --host 0.0.0.0 >"$T/r.out" 2>"$T/r.err"
st=$?
grep -q 'refusing to listen on 0.0.0.0' "$T/r.err" && ! grep -q '^PORT' "$T/r.out"
ok $(( !st || $? )) "a plaintext listener on 0.0.0.0 without SASL refuses to start" ||
	diag_file "$T/r.err"
lim 20 "$KAFKA_SERVER" "$T/data2" --tls 0.0.0.0:0 --tls-cert "$T/cert.pem" \
	--tls-key "$T/key.pem" >"$T/r.out" 2>"$T/r.err"
st=$?
grep -q 'refusing to listen on 0.0.0.0:0 (TLS) without authentication' "$T/r.err" &&
	! grep -q '^PORT' "$T/r.out"
ok $(( !st || $? )) "a TLS listener on 0.0.0.0 without SASL refuses to start" ||
	diag_file "$T/r.err"
rm -rf "$T/data"
server_start --host 0.0.0.0 --allow-plaintext-remote --partitions 1
echo hello | lim 30 kcat -b "127.0.0.1:$PORT" -P -t open 2>/dev/null
lim 30 kcat -b "127.0.0.1:$PORT" -C -t open -o beginning -e -q >"$T/got" 2>/dev/null
[ "$(cat "$T/got")" = hello ]
ok $? "with allow.plaintext.remote it starts (reached via 127.0.0.1)"
server_stop
printf 'scram bob SCRAM-SHA-256 4096 c2FsdA== short short\n' >"$T/bad-users"
lim 20 "$KAFKA_SERVER" "$T/data3" --users "$T/bad-users" >"$T/r.out" 2>"$T/r.err"
st=$?
grep -q 'bad-users:1: bad stored key' "$T/r.err"
ok $(( !st || $? )) "a bad users file line refuses start-up, naming file and line" ||
	diag_file "$T/r.err"

if [ -x "$CHRONIKD" ]; then
	mkdir -p "$T/mnt"
	lim 20 "$CHRONIKD" -f --kafka 0.0.0.0:0 "$T/cd-data" "$T/mnt" >/dev/null 2>"$T/cd.err"
	st=$?
	grep -q 'kafka.allow.plaintext.remote' "$T/cd.err" && ! mountpoint -q "$T/mnt"
	ok $(( !st || $? )) "chronikd --kafka 0.0.0.0 without SASL exits with a clear message" ||
		diag_file "$T/cd.err"
	mountpoint -q "$T/mnt" && fusermount3 -u "$T/mnt"
else
	ok 0 "# SKIP chronikd not built"
fi

done_testing
