"""Long websocket text frames read in small pieces (WebSocket._compacted in lib/ws.py, for
frames over 2 KiB): loaded with the first such frame, so the code costs nothing until a
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

In a spooled frame a string longer than `FAR` bytes (and not cut) goes on to a second file,
`<spool>.str`, and the frame keeps a short placeholder with a random token in its place:
json.load never builds it. `resolve` then puts a Far in the placeholder's place, for the
fields the caller takes so (a 5.6 KB certificate chain, read a line at a time from flash),
or the string itself for the others. A Far (lib/wsfar.py, a module of its own: a handler
holds it after this one is let go) checks its escapes and UTF-8 as json.load would
(ValueError), and len() is its length in characters.
"""

import gc

from compat import const
from ws import TooLarge
from wsfar import Far
from wsstream import Pieces, Spooled

_PIECE_OUT = const(256)  # what is kept in one piece before a new one starts
_HEAD = const(64)  # first bytes of a frame kept for TooLarge (as in lib/ws.py)
_CUT = b"\\u0000cut"
FAR = const(1024)  # strings longer than this (bytes, escaped) of a spooled frame: on flash
_FAR = "\x00far"  # what a placeholder starts with once parsed (then token:offset:length)

def resolve(msg, far, keep=()):
    """Put in place of each placeholder of this frame (`far`: Spooled.far) the string
    itself, or a Far where msg is a CALL and the field of its payload is named in `keep`.
    ValueError when a string is not valid JSON; MemoryError as json.load would raise it."""
    pre = _FAR + far[1] + ":"
    if type(msg) is list and len(msg) == 4 and type(msg[3]) is dict:
        payload, msg[3] = msg[3], None
        _walk(msg, pre, far[0], ())
        msg[3] = payload
        _walk(payload, pre, far[0], keep)
    else:
        _walk(msg, pre, far[0], ())


def _where(v, pre):
    at, n = v[len(pre) :].split(":")
    return int(at), int(n)


def _walk(c, pre, path, keep):
    if type(c) is dict:  # a key that long (never an OCPP one) is the string too
        for k in [k for k in c if k.startswith(pre)]:
            c[Far(path, *_where(k, pre)).text()] = c.pop(k)
    for k in range(len(c)) if type(c) is list else c:
        v = c[k]
        if type(v) is str:
            if v.startswith(pre):
                f = Far(path, *_where(v, pre))
                c[k] = f if k in keep else f.text()
        elif type(v) is list or type(v) is dict:
            _walk(v, pre, path, ())


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
        self.side = None  # the open <spool>.str, once a string goes there
        self.sat = 0  # bytes written to it
        self.far = -1  # where the open string starts in it, while it goes there
        self.token = None
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

    def _side(self, b):
        self.side.write(b)
        self.sat += len(b)

    def _to_side(self, b):
        """The open string, longer than FAR: what it has so far goes to <spool>.str."""
        if self.side is None:
            import binascii
            import os

            self.token = binascii.hexlify(os.urandom(4))
            self.side = open(self.path + ".str", "wb")
        self.far = self.sat
        for p in self.spieces:
            self._side(p)
        self.spieces = []
        self._side(bytes(self.out[self.start :]))
        self.out[self.start :] = b""
        self._side(b)

    def _flush(self):
        out = self.out
        if self.instr:
            if self.start:
                self._put(bytes(out[: self.start]))
            if not self.skip and self.far < 0:
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
                    self.far = -1  # what went to <spool>.str stays there, unused
                    self.cut += 1
                elif self.far >= 0:
                    self._side(piece[i:end])
                elif self.slen > FAR and self.f is not None:
                    self._to_side(piece[i:end])
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
            elif self.far >= 0:  # the placeholder, parsed as "\0far<token>:<at>:<bytes>"
                out.extend(b"\\u0000far%s:%d:%d" % (self.token, self.far,
                                                     self.sat - self.far))
                self.far = -1
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
        far = None
        try:
            self._put(bytes(self.out))
            if spooled:
                f, self.f = self.f, None
                f.close()  # the last write reaches flash here: OSError is TooLarge
            if self.side is not None:
                f, self.side = self.side, None
                f.close()
                far = (self.path + ".str", self.token.decode())
        finally:
            self.close()
        return Spooled(self.path, self.size, far) if spooled else Pieces(self.pieces)

    def close(self):
        """Close the files on any way out (never raises: a full flash fails the write)."""
        for f in (self.f, self.side):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.f = self.side = None



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
            try:
                view = memoryview(piece)[: left if left < 256 else 256]
            except MemoryError:  # nothing read for it yet: what was kept goes, then again
                st = _let_go(st)
                view = memoryview(piece)[: left if left < 256 else 256]
            k = await sock._r.readinto(view)
            view = None
            if not k:
                raise EOFError
            left -= k
            if head is None:
                head = _head(piece, k)
                if head is None:  # no room for 64 bytes: what was kept goes, then again
                    st = _let_go(st)
                    head = _head(piece, k) or b""
            if st is None:
                continue
            try:
                st.feed(piece, k)
            except (MemoryError, OSError):  # no room, or the spool file not written
                st = _let_go(st)
    except BaseException:  # the link lost or cancelled mid-frame: the file is closed
        if st is not None:
            st.close()
        raise
    if st is None:
        raise TooLarge(n, head)
    sock.cut = st.cut
    try:
        return st.done()
    except (MemoryError, OSError):  # the frame was read whole: the link stays in step
        st.close()
        raise TooLarge(n, head)


def _head(piece, k):
    """The first bytes of a frame (what TooLarge carries, for an answer by its id), or None
    without the room for them."""
    try:
        return bytes(piece[: k if k < _HEAD else _HEAD])
    except MemoryError:
        return None


def _let_go(st):
    """No room (or no flash) for what was kept of a frame: its file closed, its pieces
    garbage, collected; the rest of the frame is read and dropped (TooLarge)."""
    if st is not None:
        st.close()
    gc.collect()
    return None

