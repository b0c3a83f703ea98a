#!/bin/bash
# kafkajs (tests/kafka/package.json) with SASL and TLS.
# Usage: kafkajs_security.sh KAFKA_SERVER CHRONIK NODE_MODULES_PARENT
# kafkajs is found or installed as kafkajs.sh does.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
CHRONIK=${1:-}
prefix=${2:-$T/npm}
for tool in node npm openssl; do
	if ! command -v $tool >/dev/null; then
		echo "1..0 # SKIP $tool not installed"
		exit 0
	fi
done
if [ ! -x "$CHRONIK" ]; then
	echo "1..0 # SKIP no chronik binary given"
	exit 0
fi
npm_modules kafkajs "$here/package.json" "$here/../node_modules" "$prefix"

plan 6
U=$T/users
echo alice-pw | "$CHRONIK" user add alice --file "$U"
echo reader-pw | "$CHRONIK" user add reader --mechanism SCRAM-SHA-512 --file "$U"
printf '%s\n' 'acl alice all topic *' 'acl alice all group *' 'acl reader read topic *' >>"$U"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
	-subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
server_start --partitions 1 --users "$U" --tls 127.0.0.1:0 --tls-cert "$T/cert.pem" \
	--tls-key "$T/key.pem"
TLSPORT=$(awk '/^TLSPORT /{print $2}' "$T/server.out")
NODE_PATH=$modules lim 200 node "$here/kafkajs_security.js" "$BROKER" "127.0.0.1:$TLSPORT" \
	"$T/cert.pem" >"$T/js.out" 2>"$T/js.err"
st=$?
while read -r tag res what; do
	[ "$tag" = RESULT ] && ok "$res" "$what"
done <"$T/js.out"
[ "$st" -eq 0 ] || { diag "node exited with $st"; diag_file "$T/js.err"; }
ok $(( st != 0 )) "the kafkajs program exits 0"
done_testing
