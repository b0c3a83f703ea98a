"""Shared pieces of the kafka suite's Python tests: TAP output and a
kafka_server on a data directory.

The tests import it from their own directory (Python puts a script's
directory first on sys.path), so it needs no installation.
"""
import signal
import subprocess
import sys

n_test = 0
n_failed = 0


def ok(cond, what):
    """One TAP test line; returns cond."""
    global n_test, n_failed
    n_test += 1
    if not cond:
        n_failed += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n_test, what), flush=True)
    return cond


def diag(msg):
    print("# " + str(msg), flush=True)


def exit_status():
    """0 when every test passed, else 1."""
    return 0 if n_failed == 0 else 1


class Server:
    """kafka_server BINARY DATA ARGS...; start() bails out (exit 1) when it
    does not print its port."""

    def __init__(self, binary, data, args=()):
        self.binary, self.data, self.args = binary, data, list(args)
        self.proc, self.port = None, None

    def start(self):
        """Start it; returns the broker address 127.0.0.1:PORT."""
        self.proc = subprocess.Popen([self.binary, self.data] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            print("Bail out! kafka_server did not start")
            sys.exit(1)
        self.port = int(line.split()[1])
        return "127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, SIGKILL after 10 s; the exit status (-1 when killed)."""
        if not self.proc:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = -1
        self.proc = None
        return rc
