#!/usr/bin/env python3
"""badinput.py - the bad-input sweep of the mount (t_badinput.sh runs it).

    badinput.py MNT DAEMON_PID

MNT holds topic t (2 partitions) whose partition 0 has records. Every file
operation is tried on every kind of node (root, topic directory, partition
directory, data, records.jsonl, info.json, config.json) with what a log
cannot take: wrong open flags, writes at offsets, truncate, rename, link,
symlink, mknod, xattrs, mkdir/rmdir/create of odd names. The table says
which errno each one must get (README.md, "Mounting", says the same). After
every case: nothing was appended (t/0's next offset, data's and
records.jsonl's sizes, t/1's next offset are as before), topic t is still
there with its config, and the daemon is alive. Prints one line per check,
"PASS description" or "FAIL description: why", for the shell side's TAP.
"""
import errno
import json
import os
import sys

MNT, PID = sys.argv[1], int(sys.argv[2])
T = MNT + "/t"
P = T + "/0"
NODES = {
    "root": MNT,
    "topic dir": T,
    "partition dir": P,
    "data": P + "/data",
    "records.jsonl": P + "/records.jsonl",
    "info.json": P + "/info.json",
    "config.json": T + "/config.json",
}
DIRS = ("root", "topic dir", "partition dir")
APPEND_FILES = ("data", "records.jsonl")
NAME_250 = "n" * 250
ODD_NAMES = ["a b", NAME_250, "new\nline", "\u00e9", "x" * 249 + "\n", "tab\there"]


def say(ok, what, why=""):
    print(("PASS %s" % what) if ok else ("FAIL %s: %s" % (what, why)), flush=True)


def state():
    with open(P + "/info.json") as f:
        i0 = json.load(f)
    with open(T + "/1/info.json") as f:
        i1 = json.load(f)
    with open(T + "/config.json") as f:
        cfg = f.read()
    return (i0["next_offset"], i0["raw_size"], os.stat(P + "/data").st_size,
            os.stat(P + "/records.jsonl").st_size, i1["next_offset"], cfg,
            sorted(os.listdir(MNT)))


def attempt(fn):
    """None when fn succeeded, else the errno name."""
    try:
        fn()
        return None
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def open_close(path, flags):
    def fn():
        fd = os.open(path, flags, 0o644)
        os.close(fd)
    return fn


def with_fd(path, flags, op):
    def fn():
        fd = os.open(path, flags)
        try:
            op(fd)
        finally:
            os.close(fd)
    return fn


def end_of(path):
    return os.stat(path).st_size


cases = []  # (description, callable, expected errno name or None for success)


def case(desc, fn, want):
    cases.append((desc, fn, want))


# ---- open flags x node kinds ----------------------------------------------
for kind, path in NODES.items():
    isdir = kind in DIRS
    if isdir:
        for fl, name in ((os.O_WRONLY, "O_WRONLY"), (os.O_RDWR, "O_RDWR"),
                         (os.O_WRONLY | os.O_TRUNC, "O_WRONLY|O_TRUNC"),
                         (os.O_WRONLY | os.O_APPEND, "O_WRONLY|O_APPEND")):
            case("open %s %s" % (kind, name), open_close(path, fl), "EISDIR")
    else:
        case("open %s O_DIRECTORY" % kind, open_close(path, os.O_RDONLY | os.O_DIRECTORY), "ENOTDIR")
    case("open %s O_CREAT|O_EXCL" % kind, open_close(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL),
         "EEXIST")
    if kind in APPEND_FILES:
        case("open %s O_TRUNC (not empty)" % kind, open_close(path, os.O_WRONLY | os.O_TRUNC), "EPERM")
    if kind == "info.json":
        for fl, name in ((os.O_WRONLY, "O_WRONLY"), (os.O_RDWR, "O_RDWR"),
                         (os.O_WRONLY | os.O_APPEND, "O_WRONLY|O_APPEND"),
                         (os.O_WRONLY | os.O_TRUNC, "O_WRONLY|O_TRUNC")):
            case("open info.json %s (read-only file)" % name, open_close(path, fl), "EACCES")

# ---- writes at offsets, writes on read-only descriptors -------------------
for kind in APPEND_FILES:
    path = NODES[kind]
    line = b"bad-offset\n" if kind == "data" else b'{"value":"bad-offset"}\n'
    case("pwrite %s at 0" % kind, with_fd(path, os.O_WRONLY, lambda fd, l=line: os.pwrite(fd, l, 0)),
         "EINVAL")
    case("pwrite %s at 1" % kind, with_fd(path, os.O_WRONLY, lambda fd, l=line: os.pwrite(fd, l, 1)),
         "EINVAL")
    case("pwrite %s past the end" % kind,
         with_fd(path, os.O_WRONLY,
                 lambda fd, l=line, p=path: os.pwrite(fd, l, end_of(p) + 4096)), "EINVAL")
    case("pwrite %s at end - 1" % kind,
         with_fd(path, os.O_WRONLY, lambda fd, l=line, p=path: os.pwrite(fd, l, end_of(p) - 1)),
         "EINVAL")
    case("write %s opened O_RDONLY" % kind, with_fd(path, os.O_RDONLY, lambda fd, l=line: os.write(fd, l)),
         "EBADF")
case("write records.jsonl an invalid line", with_fd(NODES["records.jsonl"], os.O_WRONLY | os.O_APPEND,
                                                   lambda fd: os.write(fd, b'{"valeu":"x"}\n')), "EINVAL")
case("write records.jsonl a valid line then an invalid one",
     with_fd(NODES["records.jsonl"], os.O_WRONLY | os.O_APPEND,
             lambda fd: os.write(fd, b'{"value":"ok"}\nnot json\n')), "EINVAL")
case("write info.json opened O_RDONLY", with_fd(NODES["info.json"], os.O_RDONLY,
                                                lambda fd: os.write(fd, b"x")), "EBADF")
case("read a directory", with_fd(T, os.O_RDONLY, lambda fd: os.read(fd, 16)), "EISDIR")

# ---- truncate ---------------------------------------------------------------
for kind, path in NODES.items():
    if kind in DIRS:
        case("truncate %s" % kind, lambda p=path: os.truncate(p, 0), "EISDIR")
    else:
        case("truncate %s to 0" % kind, lambda p=path: os.truncate(p, 0), "EPERM")
        case("truncate %s to 1 MB" % kind, lambda p=path: os.truncate(p, 1 << 20), "EPERM")
for kind in APPEND_FILES:
    case("ftruncate %s to 0" % kind,
         with_fd(NODES[kind], os.O_WRONLY, lambda fd: os.ftruncate(fd, 0)), "EPERM")
    case("ftruncate %s past the end" % kind,
         with_fd(NODES[kind], os.O_WRONLY, lambda fd, p=NODES[kind]: os.ftruncate(fd, end_of(p) + 1)),
         "EPERM")

# ---- rename, link, symlink, mknod, create -----------------------------------
for kind, path in NODES.items():
    if kind == "root":
        continue
    parent = os.path.dirname(path)
    case("rename %s" % kind, lambda p=path, d=parent: os.rename(p, d + "/renamed"), "EPERM")
    case("link %s" % kind, lambda p=path, d=parent: os.link(p, d + "/linked"), "EPERM")
for kind in DIRS:
    d = NODES[kind]
    case("symlink in %s" % kind, lambda d=d: os.symlink("data", d + "/sym"), "EPERM")
    case("mknod FIFO in %s" % kind, lambda d=d: os.mknod(d + "/fifo", 0o600 | 0o010000), "EPERM")
    case("create a file in %s" % kind, open_close(d + "/newfile", os.O_WRONLY | os.O_CREAT), "EPERM")
case("rename data over info.json", lambda: os.rename(NODES["data"], NODES["info.json"]), "EPERM")
case("rename the topic to another name", lambda: os.rename(T, MNT + "/t2"), "EPERM")

# ---- xattrs -------------------------------------------------------------------
for kind, path in NODES.items():
    case("setxattr %s" % kind, lambda p=path: os.setxattr(p, "user.x", b"1"), "EOPNOTSUPP")
    case("getxattr %s" % kind, lambda p=path: os.getxattr(p, "user.x"), "EOPNOTSUPP")
    case("removexattr %s" % kind, lambda p=path: os.removexattr(p, "user.x"), "EOPNOTSUPP")

# ---- chmod, chown, utimens: accepted, nothing changes -----------------------
for kind, path in NODES.items():
    case("chmod %s" % kind, lambda p=path: os.chmod(p, 0o777), None)
    case("chown %s" % kind, lambda p=path: os.chown(p, os.getuid(), os.getgid()), None)
    case("utimens %s" % kind, lambda p=path: os.utime(p, (1, 1)), None)

# ---- mkdir / rmdir of odd names ------------------------------------------------
for name in ODD_NAMES:
    case("mkdir topic %r (%d chars)" % (name[:12], len(name)), lambda n=name: os.mkdir(MNT + "/" + n), "EINVAL")
    case("rmdir topic %r (%d chars)" % (name[:12], len(name)), lambda n=name: os.rmdir(MNT + "/" + n), "ENOENT")
    case("open %r in root" % name[:12], open_close(MNT + "/" + name, os.O_RDONLY), "ENOENT")
case("mkdir a 256-character name", lambda: os.mkdir(MNT + "/" + "m" * 256), "EINVAL")
case("mkdir an existing topic", lambda: os.mkdir(T), "EEXIST")
case("mkdir in a topic (a partition)", lambda: os.mkdir(T + "/2"), "EPERM")
case("mkdir in a topic, odd name", lambda: os.mkdir(T + "/new\nline"), "EPERM")
case("mkdir in a partition", lambda: os.mkdir(P + "/sub"), "EPERM")
case("mkdir in a file", lambda: os.mkdir(P + "/data/sub"), "ENOTDIR")
case("rmdir a partition that does not exist", lambda: os.rmdir(T + "/7"), "ENOENT")
case("rmdir a file", lambda: os.rmdir(NODES["data"]), "ENOTDIR")
case("rmdir the root", lambda: os.rmdir(MNT), "EBUSY")
case("unlink a topic dir", lambda: os.unlink(T), "EISDIR")
case("unlink a name that does not exist", lambda: os.unlink(P + "/nothing"), "ENOENT")
case("open a 250-character name in a partition", open_close(P + "/" + NAME_250, os.O_RDONLY), "ENOENT")
case("create a 250-character name in a partition", open_close(P + "/" + NAME_250, os.O_WRONLY | os.O_CREAT),
     "EPERM")

before = state()
modes = {k: os.stat(p).st_mode for k, p in NODES.items()}
for desc, fn, want in cases:
    got = attempt(fn)
    if want == "EOPNOTSUPP" and got == "ENOTSUP":
        got = "EOPNOTSUPP"  # the same number on Linux
    say(got == want, desc, "got %s, want %s" % (got or "success", want or "success"))
    alive = attempt(lambda: os.kill(PID, 0)) is None
    after = state() if alive else None
    if not alive or after != before:
        say(False, desc + ": nothing appended, daemon up",
            "daemon gone" if not alive else "state %r became %r" % (before, after))
        if not alive:
            break
        before = after
modes_after = {k: os.stat(p).st_mode for k, p in NODES.items()}
say(modes_after == modes, "chmod changed no mode", "%r -> %r" % (modes, modes_after))
say(attempt(lambda: os.kill(PID, 0)) is None, "the daemon is up after %d cases" % len(cases))
