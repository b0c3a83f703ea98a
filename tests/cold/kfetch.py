"""kfetch.py HOST:PORT TOPIC PARTITION OFFSET: one Kafka Fetch v4 request
(the message definitions in tests/kafka/messages/FetchRequest.json and
FetchResponse.json) for one partition at OFFSET; prints
"error=<ErrorCode> records=<bytes of Records>" for that partition.
Exit status 1 when no well-formed answer came."""
import socket
import struct
import sys


def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    topic, part, offset = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    # Request header v1: api_key, api_version, correlation_id, client_id.
    body = struct.pack(">hhi", 1, 4, 7) + kstr("kfetch")
    # ReplicaId, MaxWaitMs, MinBytes, MaxBytes, IsolationLevel, Topics.
    body += struct.pack(">iiiib", -1, 100, 1, 1 << 20, 0) + struct.pack(">i", 1) + kstr(topic)
    # Partitions: Partition, FetchOffset, PartitionMaxBytes.
    body += struct.pack(">i", 1) + struct.pack(">iqi", part, offset, 1 << 20)
    s = socket.create_connection((host, int(port)), timeout=60)
    s.sendall(struct.pack(">i", len(body)) + body)

    def recv(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                sys.exit(1)
            b += c
        return b

    (size,) = struct.unpack(">i", recv(4))
    r = recv(size)
    corr, _throttle, ntopics = struct.unpack_from(">iii", r, 0)
    p = 12
    if corr != 7 or ntopics != 1:
        sys.exit(1)
    (tlen,) = struct.unpack_from(">h", r, p)
    p += 2 + tlen
    (nparts,) = struct.unpack_from(">i", r, p)
    p += 4
    if nparts != 1:
        sys.exit(1)
    pidx, err, _hw, _lso = struct.unpack_from(">ihqq", r, p)
    p += 22
    (naborted,) = struct.unpack_from(">i", r, p)
    p += 4 + 16 * max(naborted, 0)
    (rlen,) = struct.unpack_from(">i", r, p)
    print("error=%d records=%d" % (err, max(rlen, 0)))


main()
