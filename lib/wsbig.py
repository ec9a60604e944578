"""Long websocket text frames read in small pieces (WebSocket._compacted in lib/ws.py, for
frames over 4 KiB): loaded with the first such frame, so the code costs nothing until a
central system sends one.

The frame is read 256 bytes at a time and kept in pieces of about that size (Pieces, a stream
json.load parses), so a frame of 7 KB needs no 7 KB block of a fragmented heap; every string
longer than `keep` bytes is replaced by _CUT (ws.CUT once parsed), so a DataTransfer of 16 KiB
costs its short remainder, not the frame plus its decoded `data`. The rest is kept byte for
byte: json.load still checks the whole structure. Cut strings are not checked (escapes,
UTF-8); the socket's `cut` counts them.

With the socket's `spool` set (a file path; the OCPP session sets one in its data
directory) the kept bytes go to that file as they are read, and json.load reads them back
from it: while a long string is parsed (a 5.6 KB certificate chain) the heap holds no pieces
of the frame, which would otherwise split its free space into holes too small for the
string. If the file cannot be written, the pieces stay in RAM.
"""

import gc
import io

from compat import MICROPYTHON, const
from ws import TooLarge

_PIECE_OUT = const(256)  # what is kept in one piece before a new one starts
_HEAD = const(64)  # first bytes of a frame kept for TooLarge (as in lib/ws.py)
_CUT = b"\\u0000cut"

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
        return b"".join(self.pieces)[sl]  # only for a few bytes of a message in trouble

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


class Spooled(_Base):
    """A message kept in the SPOOL file: the stream json.load reads, len() and [:k] as
    Pieces. The file is opened while it is read and closed at its end (or by close())."""

    def __init__(self, path, size):
        self.path = path
        self.size = size
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

    def discard(self):
        """The message is handled: its file goes (up to 16 KB of flash)."""
        import os

        self.close()
        try:
            os.remove(self.path)
        except OSError:
            pass

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


class _Compact:
    """The state of compacted() over the pieces of one frame."""

    def __init__(self, keep, spool=None):
        self.keep = keep
        self.path = spool
        self.f = None
        self.size = 0  # bytes in the file
        self.pieces = []  # done (in RAM when there is no file)
        self.spieces = []  # of the open string, after self.pieces
        self.out = bytearray()  # the tail; the open string's bytes from self.start
        self.start = 0
        self.slen = 0
        self.instr = self.skip = False
        self.bs = 0  # backslashes before this piece, in the open string
        self.cut = 0
        if spool is not None:  # last: nothing after it can fail and leave it open
            try:
                self.f = open(spool, "wb")
            except OSError:  # the pieces stay in RAM
                pass

    def _put(self, b):
        if self.f is None:
            self.pieces.append(b)
        else:
            self.f.write(b)
            self.size += len(b)

    def _flush(self):
        out = self.out
        if self.instr:
            if self.start:
                self._put(bytes(out[: self.start]))
            if not self.skip:
                self.spieces.append(bytes(out[self.start :]))
        else:
            self._put(bytes(out))
        self.out = bytearray()
        self.start = 0

    def feed(self, piece, k):
        if len(self.out) > _PIECE_OUT:
            self._flush()
        out = self.out
        i = 0
        while i < k:
            if not self.instr:
                j = piece.find(b'"', i, k)
                if j < 0:
                    out.extend(memoryview(piece)[i:k])
                    return
                out.extend(memoryview(piece)[i : j + 1])
                self.instr = True
                self.start = len(out)
                self.slen = self.bs = 0
                i = j + 1
                continue
            j = piece.find(b'"', i, k)
            while j >= 0:  # a quote after an odd run of backslashes is escaped
                m = j
                while m > i and piece[m - 1] == 0x5C:
                    m -= 1
                if not (j - m + (self.bs if m == i else 0)) & 1:
                    break
                j = piece.find(b'"', j + 1, k)
            end = k if j < 0 else j
            if not self.skip:
                self.slen += end - i
                if self.slen > self.keep:
                    out[self.start :] = b""
                    self.spieces = []
                    self.skip = True
                    self.cut += 1
                else:
                    out.extend(memoryview(piece)[i:end])
            m = end
            while m > i and piece[m - 1] == 0x5C:
                m -= 1
            self.bs = end - m + (self.bs if m == i else 0)
            if j < 0:
                return
            if self.skip:
                out.extend(_CUT)
                self.skip = False
            elif self.spieces:
                # The string's earlier bytes went to spieces: they come before this tail.
                tail = bytes(out[self.start :])
                out[self.start :] = b""
                self._flush()
                for b in self.spieces:
                    self._put(b)
                self.spieces = []
                out = self.out
                out.extend(tail)
            out.append(0x22)
            self.instr = False
            i = j + 1

    def done(self):
        spooled = self.f is not None
        try:
            self._put(bytes(self.out))
            if spooled:
                f, self.f = self.f, None
                f.close()  # the last write reaches flash here: OSError is TooLarge
        finally:
            self.close()
        return Spooled(self.path, self.size) if spooled else Pieces(self.pieces)

    def close(self):
        """Close the file on any way out (never raises: a full flash fails the write)."""
        f, self.f = self.f, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass



async def compacted(sock, n, keep):
    """The n-byte text frame whose header `sock` (a ws.WebSocket) just read, as Pieces. A
    MemoryError on the way: the rest of the frame is read and dropped (the link stays in
    step) and TooLarge carries its first bytes, as WebSocket._payload does."""
    try:
        piece = bytearray(256)
        st = _Compact(keep, getattr(sock, "spool", None))
    except MemoryError:
        gc.collect()
        await sock._drop(n, await sock._r.readexactly(_HEAD))
    left = n
    head = None
    try:
        while left > 0:
            k = await sock._r.readinto(memoryview(piece)[: left if left < 256 else 256])
            if not k:
                raise EOFError
            left -= k
            if head is None:
                head = bytes(piece[: k if k < _HEAD else _HEAD])
            if st is None:
                continue
            try:
                st.feed(piece, k)
            except (MemoryError, OSError):  # no room, or the spool file not written
                st.close()
                st = None
                gc.collect()
    except BaseException:  # the link lost or cancelled mid-frame: the file is closed
        if st is not None:
            st.close()
        raise
    if st is None:
        raise TooLarge(n, head)
    sock.cut = st.cut
    try:
        return st.done()
    except OSError:
        raise TooLarge(n, head)

