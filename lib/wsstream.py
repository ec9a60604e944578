"""The two streams a long websocket frame is kept as (lib/wsbig.py makes them): Pieces in
RAM, Spooled in a file. A module of their own, small, because a stream can outlive its frame
by a stale pointer the collector finds on the C stack, and it keeps its class's module: this
one, not the long-frame reader (1.5 KiB 32-bit), which the RPC lets go once a frame is
parsed. `release()` lets go of what a stream holds once its frame is parsed.
"""

import io

from compat import MICROPYTHON, const

_HEAD = const(64)  # first bytes of a frame kept for TooLarge (as in lib/ws.py)

_Base = io.IOBase if MICROPYTHON else object


class Pieces(_Base):
    """A message read in pieces (compacted()): a stream for json.load, so no
    block as long as the message is ever needed; len() and [:k] (the first bytes) like the
    bytearray recv(raw=True) returns for shorter messages."""

    def __init__(self, pieces):
        self.pieces = pieces
        self._i = self._at = 0

    def __len__(self):
        return sum(len(p) for p in self.pieces)

    def __getitem__(self, sl):
        # Only for the first bytes of a message in trouble (no room to parse it): from the
        # first pieces (about 256 bytes each), not the whole message joined.
        want = sl.stop if sl.start is None and sl.stop is not None and sl.stop >= 0 else -1
        head = b""
        for p in self.pieces:
            if 0 <= want <= len(head):
                break
            head += p
        return head[sl]

    def readinto(self, buf):
        n = 0
        want = len(buf)
        while n < want and self._i < len(self.pieces):
            p = self.pieces[self._i]
            k = len(p) - self._at
            if k > want - n:
                k = want - n
            buf[n : n + k] = p[self._at : self._at + k]
            n += k
            self._at += k
            if self._at == len(p):
                self._i += 1
                self._at = 0
        return n

    def read(self, n=-1):  # CPython's json.load
        return b"".join(self.pieces)

    def rewind(self):  # a retry reads the message again
        self._i = self._at = 0

    def close(self):
        pass

    def release(self):
        """Parsed: the pieces go (a stale pointer to this stream keeps nothing of the frame)."""
        self.pieces = []
        self._i = self._at = 0


class Spooled(_Base):
    """A message kept in the SPOOL file: the stream json.load reads, len() and [:k] as
    Pieces. The file is opened while it is read and closed at its end (or by close())."""

    def __init__(self, path, size, far=None):
        self.path = path
        self.size = size
        self.far = far  # (side file, token) when strings went to <spool>.str
        self._f = None
        self._left = size

    def __len__(self):
        return self.size

    def __getitem__(self, sl):
        with open(self.path, "rb") as f:
            return f.read(_HEAD)[sl]  # only the first bytes of a message in trouble

    def readinto(self, buf):
        if self._left <= 0:
            self.close()
            return 0
        if self._f is None:
            self._f = open(self.path, "rb")
        n = self._f.readinto(memoryview(buf)[: min(len(buf), self._left)])
        self._left -= n
        if not n:
            self.close()
        return n

    def read(self, n=-1):  # CPython's json.load
        with open(self.path, "rb") as f:
            return f.read(self.size)

    def rewind(self):
        self.close()
        self._left = self.size

    def files(self):
        """Its files (up to 16 KB of flash), for the caller to remove once the message is
        handled: names only, so that holding them keeps neither this stream nor its module."""
        return (self.path,) if self.far is None else (self.path, self.far[0])

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    release = close  # parsed: nothing of the frame is in RAM
