#!/usr/bin/env python3
"""Capture real librdkafka RecordBatches for tests/data/.

For each codec (none, gzip, snappy, lz4, zstd) kcat produces 100 messages to
librdkafka's in-process mock broker (test.mock.num.brokers=1); the Produce
request travels over loopback TCP, where dumpcap records it. The script then
reassembles the client->broker byte stream, parses the Produce request
(versions 3-8, non-flexible) and writes the one RecordBatch it carries to
tests/data/rdkafka-<codec>.batch, byte for byte as librdkafka sent it.

Messages: value "msg-<i>" for i in 0..99; every third message (i % 3 == 0)
has key "key-<i>"; every message carries one header "src" = "kcat".
All go to partition 0 of topic "t" in a single batch (linger.ms=1000).

Needs: kcat, dumpcap (tshark's capture tool), root or capture rights on lo.
Usage: tests/tools/capture_batches.py [OUTDIR]   (default: tests/data)
"""
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_ID = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
COUNT = 100


def messages():
    lines = []
    for i in range(COUNT):
        if i % 3 == 0:
            lines.append("key-%d\tmsg-%d" % (i, i))
        else:
            lines.append("msg-%d" % i)
    return ("\n".join(lines) + "\n").encode()


def produce(codec):
    """Run kcat against a fresh mock cluster; return the mock broker's port."""
    cmd = ["kcat", "-b", "dummy", "-X", "test.mock.num.brokers=1",
           "-X", "linger.ms=1000", "-X", "batch.num.messages=10000",
           "-d", "mock", "-P", "-t", "t", "-p", "0", "-K", "\t",
           "-H", "src=kcat"]
    if codec != "none":
        cmd += ["-z", codec]
    p = subprocess.run(cmd, input=messages(), capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        sys.exit("kcat failed (%s):\n%s" % (codec, err))
    m = re.search(r"bootstrap\.servers=127\.0\.0\.1:(\d+)", err)
    if not m:
        sys.exit("no mock bootstrap address in kcat's output:\n" + err)
    return int(m.group(1))


def read_pcap(path):
    """Yield (src_port, dst_port, seq, payload) of IPv4 TCP segments."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
    else:
        sys.exit("not a pcap file")
    linktype = struct.unpack_from(e + "I", data, 20)[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(e + "IIII", data, off)
        pkt = data[off + 16: off + 16 + incl]
        off += 16 + incl
        if linktype == 1:  # Ethernet (Linux lo)
            if len(pkt) < 14 or struct.unpack_from(">H", pkt, 12)[0] != 0x0800:
                continue
            ip = pkt[14:]
        elif linktype == 113:  # Linux cooked
            if len(pkt) < 16 or struct.unpack_from(">H", pkt, 14)[0] != 0x0800:
                continue
            ip = pkt[16:]
        elif linktype in (101, 228):  # raw IPv4
            ip = pkt
        else:
            sys.exit("unsupported link type %d" % linktype)
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        doff = (tcp[12] >> 4) * 4
        payload = tcp[doff:]
        if payload:
            yield sport, dport, seq, bytes(payload)


def streams_to(pcap, port):
    """Client->broker byte streams to port, one per connection."""
    segs = {}
    for sport, dport, seq, payload in read_pcap(pcap):
        if dport == port:
            segs.setdefault(sport, {})[seq] = payload
    out = []
    for sport, by_seq in segs.items():
        buf = b""
        nxt = None
        for seq in sorted(by_seq):
            payload = by_seq[seq]
            if nxt is not None and seq < nxt:  # retransmission overlap
                payload = payload[nxt - seq:]
            buf += payload
            nxt = seq + len(by_seq[seq])
        out.append(buf)
    return out


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.b):
            raise ValueError("short read")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def nbytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)


def produce_batches(stream):
    """RecordBatches of every Produce request (v3-v8) in one stream."""
    batches = []
    off = 0
    while off + 4 <= len(stream):
        size = struct.unpack_from(">i", stream, off)[0]
        req = stream[off + 4: off + 4 + size]
        off += 4 + size
        if len(req) < size:
            break
        r = Reader(req)
        api_key, api_version, _corr = r.i16(), r.i16(), r.i32()
        r.string()  # client_id
        if api_key != 0:
            continue
        if not 3 <= api_version <= 8:
            sys.exit("Produce v%d is not handled (3-8 only)" % api_version)
        r.string()  # transactional_id
        r.i16()     # acks
        r.i32()     # timeout_ms
        for _ in range(r.i32()):          # topic_data
            r.string()                    # name
            for _ in range(r.i32()):      # partition_data
                r.i32()                   # index
                records = r.nbytes()
                if records:
                    batches.append(records)
    return batches


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def check(codec, batch):
    base, length, _epoch, magic, crc, attrs = struct.unpack_from(">qiibIh", batch, 0)
    count = struct.unpack_from(">i", batch, 57)[0]
    if magic != 2 or length + 12 != len(batch):
        sys.exit("%s: not a single v2 batch" % codec)
    if crc32c(batch[21:]) != crc:
        sys.exit("%s: CRC mismatch" % codec)
    if attrs & 7 != CODEC_ID[codec]:
        sys.exit("%s: codec bits are %d" % (codec, attrs & 7))
    if count != COUNT:
        sys.exit("%s: %d records, expected %d" % (codec, count, COUNT))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data")
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "lo.pcap")
        cap = subprocess.Popen(["dumpcap", "-q", "-P", "-i", "lo", "-f", "tcp and host 127.0.0.1",
                                "-w", pcap], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # dumpcap creates the file once it captures.
        for _ in range(100):
            if os.path.exists(pcap) and os.path.getsize(pcap) >= 24:
                break
            if cap.poll() is not None:
                sys.exit("dumpcap failed: " + cap.stderr.read().decode())
            time.sleep(0.1)
        time.sleep(0.5)
        try:
            ports = {codec: produce(codec) for codec in CODECS}
            time.sleep(1.0)
        finally:
            cap.send_signal(signal.SIGTERM)
            cap.wait(timeout=30)
        for codec, port in ports.items():
            found = []
            for stream in streams_to(pcap, port):
                found += produce_batches(stream)
            if len(found) != 1:
                sys.exit("%s: %d batches captured on port %d, expected 1" % (codec, len(found), port))
            check(codec, found[0])
            path = os.path.join(outdir, "rdkafka-%s.batch" % codec)
            with open(path, "wb") as f:
                f.write(found[0])
            print("%s: %d bytes -> %s" % (codec, len(found[0]), path))


if __name__ == "__main__":
    main()
