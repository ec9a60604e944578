"""A long array of a frame kept on flash (lib/wsstream.py Spooled), read one element at a
time: SendLocalList's localAuthorizationList, 32 cards of about 140 bytes each, costs one
card of heap instead of the whole parsed list (6.4 KiB, 32-bit). Loaded only for such a
frame (firmware/ocpp/rpc.py), let go with the other helpers of rare requests.

    span = find(path, size, b"localAuthorizationList")   # (a, b) or None
    msg = json.load(Skip(path, size, span))   # the frame with "[]" in the array's place
    payload[key] = Far(path, span)             # len(), iteration: each element parsed

find() and Far() check the array's elements as JSON (ValueError, as json.load would raise:
the frame is then not valid JSON), so iterating never meets a syntax error.
"""

import io
import json

from compat import MICROPYTHON, const

_READ = const(128)
_WS = b" \t\r\n"
_Base = io.IOBase if MICROPYTHON else object


def _scan(path, a, b):
    """(position, byte, where) of the file's bytes in [a, b), read 128 at a time; where: 0
    outside strings, 1 in a string (its opening quote included), 2 its closing quote."""
    q = esc = False
    with open(path, "rb") as f:
        f.seek(a)
        at = a
        while at < b:
            chunk = f.read(min(_READ, b - at))
            if not chunk:
                raise ValueError("frame cut short")
            for c in chunk:
                if not q:
                    q = c == 0x22
                    yield at, c, 1 if q else 0
                elif esc:
                    esc = False
                    yield at, c, 1
                elif c == 0x22:
                    q = False
                    yield at, c, 2
                else:
                    esc = c == 0x5C  # a backslash
                    yield at, c, 1
                at += 1


def _depth(c):
    # +1 for an opening bracket, -1 for a closing one, 0 for any other byte
    return 1 if c == 0x5B or c == 0x7B else -1 if c == 0x5D or c == 0x7D else 0


def find(path, size, key):
    """The span [a, b) of the array that is the value of `key` (bytes, no quotes) in the
    object at depth 2 of the frame (the payload of a CALL [2, id, action, {...}]), or None
    when there is none, or more than one (json.load would take the last: left to it).
    ValueError when the frame ends inside the array or it does not end with ']'."""
    want = b'"' + key + b'"'
    depth = 0
    s = None  # the string being read at depth 2: its first bytes, up to len(want) + 1
    after = 0  # 1: `want` just ended (a ':' may follow); 2: the ':' came (a '[' may follow)
    span = None
    skip = -1  # inside the array found: its end
    for at, c, w in _scan(path, 0, size):
        if at < skip:
            continue
        if w:
            if s is None and w == 1 and depth == 2 and c == 0x22 and not after:
                s = bytearray()
            if s is not None:
                if len(s) <= len(want):
                    s.append(c)
                if w == 2:
                    after = 1 if bytes(s) == want else 0
                    s = None
            continue
        if c in _WS:
            continue
        if after == 1:
            after = 2 if c == 0x3A else 0  # ':'
            if after:
                continue
        elif after == 2:
            after = 0
            if c == 0x5B:  # '['
                if span is not None:
                    return None  # twice
                span = (at, _end(path, at, size))
                skip = span[1]
                continue
        depth += _depth(c)
    return span


def _end(path, a, size):
    """Where the array opened at `a` ends (just past its ']')."""
    depth = 0
    for at, c, w in _scan(path, a, size):
        if not w:
            depth += _depth(c)
            if depth == 0:
                if c != 0x5D:
                    raise ValueError("bad array")
                return at + 1
    raise ValueError("frame cut short")


def elements(path, span):
    """Each element of the array at `span`, parsed (json.loads of its text alone)."""
    a, b = span
    buf = bytearray()
    depth = 0
    comma = False
    for _, c, w in _scan(path, a + 1, b - 1):
        if not w and c == 0x2C and depth == 0:  # ',' between two elements
            yield json.loads(bytes(buf))
            buf = bytearray()
            comma = True
            continue
        buf.append(c)
        if not w:
            depth += _depth(c)
    for c in buf:
        if c not in _WS:
            yield json.loads(bytes(buf))
            return
    if comma:
        raise ValueError("bad array")  # [1,]


def count(path, span):
    """The number of elements, each parsed once (ValueError if one is not JSON)."""
    n = 0
    for _ in elements(path, span):
        n += 1
    return n


class Skip(_Base):
    """The frame in the file with "[]" in place of the array at `span`: the stream json.load
    reads (readinto on MicroPython, read on CPython)."""

    def __init__(self, path, size, span):
        self.path = path
        self.size = size
        self.span = span
        self._f = None
        self._at = 0

    def readinto(self, buf):
        a, b = self.span
        n = 0
        while n < len(buf) and self._at < self.size:
            if self._at == a:
                buf[n] = 0x5B  # '[': then ']' at a + 1
                n += 1
                self._at = a + 1
                continue
            if self._at == a + 1:
                buf[n] = 0x5D
                n += 1
                self._at = b
                continue
            if self._f is None:
                self._f = open(self.path, "rb")
            stop = a if self._at < a else self.size
            self._f.seek(self._at)
            k = self._f.readinto(memoryview(buf)[n : n + min(len(buf) - n, stop - self._at)])
            if not k:
                break
            n += k
            self._at += k
        return n

    def read(self, n=-1):  # CPython's json.load
        a, b = self.span
        with open(self.path, "rb") as f:
            data = f.read(self.size)
        return data[:a] + b"[]" + data[b:]

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class Far:
    """The array at `span` of the frame in the file `path`: len() its number of elements,
    iteration each element parsed anew (the file lives until the CALL is answered)."""

    far = "list"  # what lets firmware/ocpp/validate.py take it for an array

    def __init__(self, path, span):
        self.path = path
        self.span = span
        self.n = count(path, span)

    def __len__(self):
        return self.n

    def __iter__(self):
        return elements(self.path, self.span)
