#!/usr/bin/env python3
"""record_proxy.py - a Kafka proxy on 127.0.0.1 that writes every request it
forwards to a file of its own (the bytes after the size field), for the fuzz
corpus (make_corpus.sh).

    record_proxy.py UPSTREAM_PORT OUT_DIR

Prints "PORT <n>" once listening. Metadata and FindCoordinator responses
name the upstream's port as the broker's; the proxy replaces that int32 with
its own port so that the clients stay on it.
"""
import hashlib
import os
import socket
import struct
import sys
import threading

up_port = int(sys.argv[1])
out = sys.argv[2]


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b


def serve(cs, my_port):
    us = socket.create_connection(("127.0.0.1", up_port))
    pending = {}
    lock = threading.Lock()

    def back():
        try:
            while True:
                hdr = recv_exact(us, 4)
                body = recv_exact(us, struct.unpack(">i", hdr)[0])
                corr = struct.unpack(">i", body[:4])[0]
                with lock:
                    api = pending.pop(corr, None)
                if api in (3, 10):
                    body = body.replace(struct.pack(">i", up_port), struct.pack(">i", my_port))
                cs.sendall(hdr + body)
        except (EOFError, OSError):
            pass
        try:
            cs.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    t = threading.Thread(target=back, daemon=True)
    t.start()
    try:
        while True:
            hdr = recv_exact(cs, 4)
            body = recv_exact(cs, struct.unpack(">i", hdr)[0])
            api, ver, corr = struct.unpack(">hhi", body[:8])
            with lock:
                pending[corr] = api
            name = "req-%02d-%02d-%s" % (api, ver, hashlib.sha1(body).hexdigest()[:12])
            with open(os.path.join(out, name), "wb") as f:
                f.write(body)
            us.sendall(hdr + body)
    except (EOFError, OSError):
        pass
    for s in (us, cs):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
my_port = ls.getsockname()[1]
print("PORT %d" % my_port, flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c, my_port), daemon=True).start()
