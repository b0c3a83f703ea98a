"""A Kafka protocol encoder/decoder driven by Kafka's own message JSON
definitions (tests/kafka/messages/, copied unchanged from apache/kafka
clients/src/main/resources/common/message/), independent of the listener's
C codec, so that a test holds the listener against the definitions rather
than against itself.

What it reads from a definition: "validVersions", "flexibleVersions", each
field's "name", "type", "versions", "nullableVersions", "taggedVersions",
"tag", "default", nested "fields" and "commonStructs". Encodings:

  int8/16/32/64, uint16, float64  big-endian; bool one byte
  uuid                            16 bytes
  string / bytes / records        int16 / int32 length (-1 null), or in a
                                  flexible version uvarint length+1 (0 null)
  array                           int32 count (-1 null), or uvarint count+1
  tagged fields                   flexible versions: uvarint count, then per
                                  field uvarint tag, uvarint size, the value

A message value is a dict keyed by field name; a field missing from it takes
its default. decode() returns a dict and raises ValueError when the bytes do
not match the definition (short, or bytes left over).
"""
import json
import os
import re
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = os.path.join(HERE, "messages")


def parse_versions(spec):
    """'3+' / '1-4' / '7' / 'none' -> (lo, hi) with hi None = open."""
    if spec is None or spec == "none":
        return None
    if spec.endswith("+"):
        return (int(spec[:-1]), None)
    if "-" in spec:
        a, b = spec.split("-")
        return (int(a), int(b))
    return (int(spec), int(spec))


def in_versions(spec, v):
    r = parse_versions(spec)
    return r is not None and r[0] <= v and (r[1] is None or v <= r[1])


class Message:
    def __init__(self, path):
        text = open(path).read()
        text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
        j = json.loads(text)
        self.name = j["name"]
        self.api_key = j.get("apiKey")
        self.valid = parse_versions(j["validVersions"])
        self.flex = j["flexibleVersions"]
        self.fields = j.get("fields", [])
        self.structs = {c["name"]: c["fields"] for c in j.get("commonStructs", [])}

    def flexible(self, v):
        return in_versions(self.flex, v)

    # ---- encode ------------------------------------------------------

    def encode(self, value, v):
        out = bytearray()
        self._enc_struct(out, self.fields, value or {}, v, self.flexible(v))
        return bytes(out)

    def _sub(self, f):
        if "fields" in f:
            return f["fields"]
        t = f["type"][2:] if f["type"].startswith("[]") else f["type"]
        return self.structs[t]

    def _enc_struct(self, out, fields, value, v, flex):
        tagged = []
        for f in fields:
            if not in_versions(f["versions"], v):
                continue
            if flex and "taggedVersions" in f and in_versions(f["taggedVersions"], v):
                if f["name"] in value:
                    tagged.append(f)
                continue
            self._enc_field(out, f, value.get(f["name"], self._default(f, v)), v, flex)
        if flex:
            uvarint(out, len(tagged))
            for f in sorted(tagged, key=lambda f: f["tag"]):
                b = bytearray()
                self._enc_field(b, f, value[f["name"]], v, flex)
                uvarint(out, f["tag"])
                uvarint(out, len(b))
                out += b

    def _default(self, f, v):
        t = f["type"]
        d = f.get("default")
        nullable = in_versions(f.get("nullableVersions"), v)
        if t.startswith("[]"):
            return None if (nullable and d == "null") else []
        if t in ("string",):
            return None if (nullable and d == "null") else (d or "")
        if t in ("bytes", "records"):
            return None if nullable else b""
        if t == "bool":
            return d == "true"
        if t == "uuid":
            return bytes(16)
        if t in ("int8", "int16", "int32", "int64", "uint16"):
            return int(d, 0) if d not in (None, "") else 0
        if t == "float64":
            return float(d) if d else 0.0
        return {}

    def _enc_field(self, out, f, val, v, flex):
        t = f["type"]
        if t.startswith("[]"):
            et = t[2:]
            if val is None:
                if flex:
                    uvarint(out, 0)
                else:
                    out += struct.pack(">i", -1)
                return
            if flex:
                uvarint(out, len(val) + 1)
            else:
                out += struct.pack(">i", len(val))
            for e in val:
                if et in PRIM:
                    enc_prim(out, et, e, flex)
                else:
                    self._enc_struct(out, self._sub(f), e, v, flex)
        elif t in PRIM:
            enc_prim(out, t, val, flex)
        else:
            self._enc_struct(out, self._sub(f), val, v, flex)

    # ---- decode ------------------------------------------------------

    def decode(self, buf, v, pos=0, whole=True):
        r = Reader(buf, pos)
        val = self._dec_struct(r, self.fields, v, self.flexible(v))
        if whole and r.pos != len(buf):
            raise ValueError("%s v%d: %d bytes left over" % (self.name, v, len(buf) - r.pos))
        return val

    def _dec_struct(self, r, fields, v, flex):
        val = {}
        bytag = {}
        for f in fields:
            if not in_versions(f["versions"], v):
                continue
            if flex and "taggedVersions" in f and in_versions(f["taggedVersions"], v):
                bytag[f["tag"]] = f
                continue
            val[f["name"]] = self._dec_field(r, f, v, flex)
        if flex:
            for _ in range(r.uvarint()):
                tag = r.uvarint()
                size = r.uvarint()
                end = r.pos + size
                if tag in bytag:
                    val[bytag[tag]["name"]] = self._dec_field(r, bytag[tag], v, flex)
                    if r.pos != end:
                        raise ValueError("tag %d: size %d, decoded %d" % (tag, size, r.pos - end + size))
                else:
                    r.take(size)
        return val

    def _dec_field(self, r, f, v, flex):
        t = f["type"]
        nullable = in_versions(f.get("nullableVersions"), v)
        if t.startswith("[]"):
            et = t[2:]
            n = r.uvarint() - 1 if flex else r.i32()
            if n < 0:
                if not nullable:
                    raise ValueError("%s: null array where none allowed" % f["name"])
                return None
            out = []
            for _ in range(n):
                if et in PRIM:
                    out.append(dec_prim(r, et, flex, False))
                else:
                    out.append(self._dec_struct(r, self._sub(f), v, flex))
            return out
        if t in PRIM:
            x = dec_prim(r, t, flex, nullable)
            return x
        return self._dec_struct(r, self._sub(f), v, flex)


PRIM = {"bool", "int8", "int16", "int32", "int64", "uint16", "float64", "uuid",
        "string", "bytes", "records"}
FIXED = {"bool": ">?", "int8": ">b", "int16": ">h", "int32": ">i", "int64": ">q",
         "uint16": ">H", "float64": ">d"}


def uvarint(out, n):
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def enc_prim(out, t, val, flex):
    if t in FIXED:
        out += struct.pack(FIXED[t], val)
    elif t == "uuid":
        assert len(val) == 16
        out += val
    else:
        if val is not None and t == "string":
            val = val.encode()
        if val is None:
            if flex:
                uvarint(out, 0)
            else:
                out += struct.pack(">h" if t == "string" else ">i", -1)
            return
        if flex:
            uvarint(out, len(val) + 1)
        else:
            out += struct.pack(">h" if t == "string" else ">i", len(val))
        out += val


def dec_prim(r, t, flex, nullable):
    if t in FIXED:
        return struct.unpack(FIXED[t], r.take(struct.calcsize(FIXED[t])))[0]
    if t == "uuid":
        return r.take(16)
    if flex:
        n = r.uvarint() - 1
    else:
        n = r.i16() if t == "string" else r.i32()
    if n < 0:
        if n != -1 or not nullable:
            raise ValueError("null %s where none allowed" % t)
        return None
    b = r.take(n)
    return b.decode() if t == "string" else b


class Reader:
    def __init__(self, buf, pos=0):
        self.buf, self.pos = buf, pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError("short: want %d at %d of %d" % (n, self.pos, len(self.buf)))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 63:
                raise ValueError("uvarint too long")


_cache = {}


def message(name):
    if name not in _cache:
        _cache[name] = Message(os.path.join(MESSAGES, name + ".json"))
    return _cache[name]


def by_key():
    """api_key -> (request Message, response Message) for every definition here."""
    out = {}
    for fn in sorted(os.listdir(MESSAGES)):
        if fn.endswith("Request.json") and fn != "RequestHeader.json":
            req = message(fn[:-5])
            out[req.api_key] = (req, message(fn[:-12] + "Response"))
    return out
