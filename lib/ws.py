"""Websocket client (RFC 6455) on asyncio streams, same source on MicroPython and CPython.

    w = await ws.connect("wss://csms.example/ocpp/CP1", auth=("CP1", key), tls={...})
    await w.send("[2,...]"); msg = await w.recv(); await w.close()

TLS (`tls` dict): `cadata` PEM/DER of the server CA, `use_global_ca` (CPython: system store;
MicroPython: the PEM bundle `tls["ca_file"]`, default `ca.pem` in the current directory, i.e.
the data directory), `check_hostname` (True), `verify` (True), `cert`/`key` PEM for mutual
TLS. Verification is never skipped silently: with verify on and no CA, connect() refuses.
MicroPython's mbedTLS always checks the name when it verifies, so there check_hostname=False
needs verify=False.
"""

import asyncio
import gc
import json
import os

from compat import MICROPYTHON, SCRATCH_BYTES, const, lend, scratch, ticks_ms

_CHUNK = const(128)  # masking granularity: bounds the temporary big ints (~3 x 128 B)
_ONE_WRITE = const(4096)  # frames up to this go out in one write (one TCP segment)
_SEPARATORS = (",", ":")
# Text frames longer than this are read compacted (_compacted, recv(raw=True)), into small
# pieces (Pieces, parsed with json.load), strings longer than _KEEP bytes replaced by CUT.
# No field of an OCPP 1.6 request the firmware uses is that long (certificate chains:
# CertificateSignedMaxChainSize, 5600).
_COMPACT = const(2048)
_KEEP = const(6144)
CUT = "\x00cut"  # what json.loads makes of lib/wsbig.py's _CUT
_CLOSE_WAIT_MS = const(2000)
_HEAD = const(64)  # bytes of a frame kept when there is no room for the whole of it

_CONT = const(0)
_TEXT = const(1)
_BIN = const(2)
_CLOSE = const(8)
_PING = const(9)
_PONG = const(10)


class WebSocketError(Exception):
    pass


class HandshakeError(WebSocketError):
    pass


class TooLarge(WebSocketError):
    """A message that did not fit in the heap: it was read and discarded (the link is fine);
    `head` holds its first bytes (enough for an OCPP message id)."""

    def __init__(self, size, head):
        super().__init__(size)
        self.size = size
        self.head = head


class ConnectionClosed(WebSocketError):
    def __init__(self, code=1006, reason=""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def parse_url(url):
    """-> (secure, host, port, path). The path is kept exactly as given."""
    if url.startswith("ws://"):
        secure, rest, port = False, url[5:], 80
    elif url.startswith("wss://"):
        secure, rest, port = True, url[6:], 443
    else:
        raise WebSocketError("URL must start with ws:// or wss://: " + url)
    i = rest.find("/")
    hostport, path = (rest, "/") if i < 0 else (rest[:i], rest[i:])
    host, port = host_port(hostport, port, url)
    return secure, host, port, path


def host_port(hostport, port, url):
    """"host", "host:port" or "[IPv6]:port" of `url` -> (host, port); `port` when absent."""
    if hostport.startswith("["):
        j = hostport.find("]")
        host, tail = hostport[1:j], hostport[j + 1 :]
    else:
        j = hostport.rfind(":")
        host, tail = (hostport, "") if j < 0 else (hostport[:j], hostport[j:])
    if tail:
        try:
            port = int(tail[1:])
        except ValueError:
            raise WebSocketError("bad port in URL: " + url)
    if not host:
        raise WebSocketError("no host in URL: " + url)
    return host, port


def ssl_context(tls):
    """ssl.SSLContext for a client from the `tls` dict (see the module doc; lib/wsopen.py);
    also used by xfer.py so firmware downloads trust exactly what the OCPP link trusts."""
    return _opening().ssl_context(tls)


async def connect(
    url, protocol="ocpp1.6", auth=None, tls=None, timeout_ms=10000, max_size=16384
):
    """Open a websocket; the TCP/TLS connection and the handshake bounded by timeout_ms."""
    return await _opening().connect(url, protocol, auth, tls, timeout_ms, max_size)


def _opening():
    # The opening (URL, TLS context, HTTP upgrade: lib/wsopen.py) is loaded for a connect
    # and let go at once: a link that is up holds none of it (5 KB of heap from .mpy,
    # 32-bit).
    return lend("wsopen")


def _xor(mv, mask, mfull):
    """mv XOR the repeated 4-byte mask, on whole-chunk big ints (no per-byte loop)."""
    k = len(mv)
    m = mfull if k == _CHUNK else int.from_bytes((mask * (k // 4 + 1))[:k], "big")
    return (int.from_bytes(mv, "big") ^ m).to_bytes(k, "big")


if MICROPYTHON:
    import io

    class _Sink(io.IOBase):
        """json.dump's stream for send_json: the message goes straight into the scratch
        buffer, after room for the longest header (4 bytes) and the mask; each time the
        buffer is full, what it holds goes out as one fragment of the message (RFC 6455
        §5.4), so a message of any length needs no block of its size."""

        def __init__(self):
            self.buf = self.mv = self.w = None
            self.n = 8
            self.op = _TEXT
            self.sent = 0  # fragments written

        def write(self, b):
            k = len(b)
            i = 0
            while i < k:
                room = len(self.mv) - self.n
                if room == 0:
                    self.flush(False)
                    room = len(self.mv) - 8
                m = k - i if k - i < room else room
                self.mv[self.n : self.n + m] = b if m == k else memoryview(b)[i : i + m]
                self.n += m
                i += m
            return k

        def flush(self, fin):
            self.w.write(_seal(self.buf, self.op, self.n - 8, fin))
            self.op = _CONT
            self.sent += 1
            self.n = 8

    _SINK = _Sink()


def _header(op, n, fin=True):
    b0 = 0x80 | op if fin else op
    if n < 126:
        return bytes((b0, 0x80 | n))
    if n < 65536:
        return bytes((b0, 0xFE)) + n.to_bytes(2, "big")
    return bytes((b0, 0xFF)) + n.to_bytes(8, "big")


def _mask(buf, at, n, mask):
    """XOR buf[at:at+n] in place with the repeated mask, a chunk at a time."""
    mfull = int.from_bytes(mask * (_CHUNK // 4), "big") if n >= _CHUNK else 0
    mv = memoryview(buf)
    i = 0
    while i < n:
        k = n - i if n - i < _CHUNK else _CHUNK
        buf[at + i : at + i + k] = _xor(mv[at + i : at + i + k], mask, mfull)
        i += k


def _seal(buf, op, n, fin=True):
    """The frame of the n (< 65536) payload bytes at buf[8:], made in place: its header
    and a fresh mask just before them, the payload masked; a view from the header on."""
    hdr = _header(op, n, fin)
    at = 4 - len(hdr)
    buf[at:4] = hdr
    mask = os.urandom(4)
    buf[4:8] = mask
    _mask(buf, 8, n, mask)
    return memoryview(buf)[at : 8 + n]


class WebSocket:
    def __init__(self, reader, writer, max_size):
        self._r = reader
        self._w = writer
        self._max = max_size
        self._lock = asyncio.Lock()
        self.cut = 0  # strings replaced by CUT in the last message recv(raw=True) returned
        self._close_sent = False
        self._reading = False
        self._box = None  # recv(box=)
        self._got_close = asyncio.Event()
        self.closed = False
        self.close_code = None
        self.close_reason = ""
        self.last_rx_ms = ticks_ms()

    async def _write_frame(self, op, data):
        mv = memoryview(data)
        n = len(mv)  # bytes (a str on MicroPython: its UTF-8 bytes)
        hdr = _header(op, n)
        mask = os.urandom(4)
        w = self._w
        async with self._lock:
            if n < _CHUNK:  # one write for the whole frame
                w.write(hdr + mask + _xor(mv, mask, 0) if n else hdr + mask)
            elif n <= _ONE_WRITE:
                # Still one write: a frame split over several TCP segments waits for the
                # peer's delayed ACK (Nagle, where TCP_NODELAY is not set): +40 ms.
                # A frame that fits compat.scratch() takes no block from the heap: built
                # and written without an await, and MicroPython's stream copies what the
                # socket does not take at once, so the buffer is free again at once
                # (CPython's transport may keep a view: a buffer of its own there).
                if MICROPYTHON and 8 + n <= SCRATCH_BYTES:
                    buf = scratch()
                else:
                    buf = bytearray(8 + n)
                buf[8 : 8 + n] = mv
                w.write(_seal(buf, op, n))
            else:  # chunk by chunk, drained, so no second copy of the message builds up
                mfull = int.from_bytes(mask * (_CHUNK // 4), "big")
                w.write(hdr + mask)
                i = 0
                while i < n:
                    k = n - i if n - i < _CHUNK else _CHUNK
                    w.write(_xor(mv[i : i + k], mask, mfull))
                    i += k
                    if i % (32 * _CHUNK) == 0:
                        await w.drain()
            await w.drain()

    async def send(self, msg):
        if self.closed or self._close_sent:
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        if isinstance(msg, str):
            # MicroPython: a str is a buffer of its UTF-8 bytes, no copy needed.
            await self._write_frame(_TEXT, msg if MICROPYTHON else msg.encode())
        else:
            await self._write_frame(_BIN, msg)

    async def send_json(self, obj):
        """`obj` as one text message of JSON (json.dumps' form). MicroPython: encoded
        straight into compat.scratch(), masked there and written, in fragments of up to
        1.5 KiB when it is longer (_Sink), so no message (a MeterValues of ~1.1 KB, the
        3.7 KB answer to GetConfiguration) costs a str or a block of its size on a
        fragmented heap. What encoding raises before the first fragment is written is
        raised with nothing sent; after it, the link is closed (the message is cut)."""
        if self.closed or self._close_sent:
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        if not MICROPYTHON:
            await self.send(json.dumps(obj, separators=_SEPARATORS))
            return
        async with self._lock:
            # From the encoding to the last write without an await (see _write_frame).
            sink = _SINK
            sink.buf = scratch()
            sink.mv = memoryview(sink.buf)
            sink.w = self._w
            sink.n = 8
            sink.op = _TEXT
            sink.sent = 0
            try:
                json.dump(obj, sink, separators=_SEPARATORS)
                sink.flush(True)
            except BaseException as e:
                if sink.sent:
                    self._shut(1011, "message cut short: %r" % (e,))
                    raise ConnectionClosed(1011, self.close_reason)
                raise
            finally:
                sink.buf = sink.mv = sink.w = None
            await self._w.drain()

    async def ping(self, data=b""):
        if self.closed or self._close_sent:
            raise ConnectionClosed(self.close_code or 1006, self.close_reason)
        await self._write_frame(_PING, data)

    async def _fail(self, code, text):
        """Protocol violation by the peer: close with `code`, raise."""
        try:
            await self._send_close(code, "")
        except Exception:  # the transport may be gone already
            pass
        self._shut(code, text)
        raise WebSocketError(text + " (closed with %d)" % code)

    async def _send_close(self, code, reason):
        if not self._close_sent:
            self._close_sent = True
            await self._write_frame(_CLOSE, code.to_bytes(2, "big") + reason.encode())

    def _shut(self, code, reason):
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.close_reason = reason
            try:
                self._w.close()
                # MicroPython's Stream.close() does nothing: the socket is closed only by
                # wait_closed(). Close it in the background so a dropped link never leaks
                # a socket and the peer sees the connection end.
                s = getattr(self._w, "s", None)
                if MICROPYTHON and s is not None:
                    asyncio.create_task(self._reap(s))
            except Exception:  # already closed
                pass
        self._got_close.set()

    async def _reap(self, s):
        # Closing a socket with unread input makes the kernel answer RST, which can destroy
        # our close frame before the peer reads it: read to EOF first (bounded).
        try:
            await asyncio.wait_for_ms(self._eof(), _CLOSE_WAIT_MS // 2)
        except Exception:  # timeout or reset: close regardless
            pass
        s.close()

    async def _eof(self):
        while await self._r.read(256):
            pass

    async def _frame(self):
        """Read one frame -> (fin, opcode, payload)."""
        r = self._r
        b = await r.readexactly(2)
        b0, b1 = b[0], b[1]
        op = b0 & 0x0F
        if b0 & 0x70:
            await self._fail(1002, "reserved bits set")
        if b1 & 0x80:
            await self._fail(1002, "masked frame from server")
        n = b1 & 0x7F
        if op >= 8:
            if not b0 & 0x80:
                await self._fail(1002, "fragmented control frame")
            if n > 125:
                await self._fail(1002, "control frame payload > 125")
            if op > _PONG:
                await self._fail(1002, "bad opcode %d" % op)
        elif op > _BIN:
            await self._fail(1002, "bad opcode %d" % op)
        if n == 126:
            n = int.from_bytes(await r.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await r.readexactly(8), "big")
        return b0 & 0x80, op, n

    async def _payload(self, n):
        """n payload bytes. MicroPython: into one preallocated buffer (its readexactly
        grows the result piece by piece, which fragments a small heap). No room for it even
        after a collection: the frame is read and discarded in small pieces (the link stays
        in step) and TooLarge carries its first bytes, so the caller can still answer it."""
        if not n:
            return b""
        if not MICROPYTHON:
            return await self._r.readexactly(n)
        try:
            buf = bytearray(n)
        except MemoryError:
            gc.collect()
            try:
                buf = bytearray(n)
            except MemoryError:
                await self._drop(n, await self._r.readexactly(n if n < _HEAD else _HEAD))
        mv = memoryview(buf)
        i = 0
        while i < n:
            k = await self._r.readinto(mv[i:])
            if k == 0:
                raise EOFError
            if k:
                i += k
        return buf

    async def _drop(self, n, head):
        """The rest of an n-byte frame whose first bytes are `head`, read and dropped in
        small pieces (the link stays in step); raises TooLarge."""
        left = n - len(head)
        while left > 0:
            left -= len(await self._r.read(left if left < 256 else 256) or b"x")
        raise TooLarge(n, head)

    async def _compacted(self, n, keep):
        """A text frame of n bytes of JSON as Pieces: read 256 bytes at a time and kept in
        pieces of about that size, so a frame of 7 KB needs no 7 KB block of a fragmented
        heap; every string longer than `keep` bytes is replaced by CUT (the string
        "\\u0000cut"), so a DataTransfer of 16 KiB costs its short remainder, not the frame
        plus its decoded `data`. The rest is kept byte for byte: json.load still checks the
        whole structure. Cut strings are not checked (escapes, UTF-8); self.cut counts them.
        A MemoryError on the way: the rest of the frame is read and dropped (the link stays
        in step) and TooLarge carries its first bytes, as _payload does. The socket's `room`
        (a function, set by its owner: the OCPP session's) runs first: what idles goes
        before the long frame's reader loads and the frame comes in."""
        room = getattr(self, "room", None)
        if room is not None:
            room()
        from wsbig import compacted  # rare: loaded with the first long frame

        return await compacted(self, n, keep)

    async def recv(self, raw=False, box=None):
        """Next message: str (text) or bytes (binary). Raises ConnectionClosed, or TooLarge
        for a message the heap had no room for (the link stays usable). raw=True: a text
        message as a bytearray (binary ones stay bytes), not copied into a str: json.loads
        takes it, and its parser checks the UTF-8; a long one as a stream of lib/wsstream.py.
        box (a list): a text message is appended to it and None returned, so that it never
        passes through the caller's frame: a coroutine that awaits here holds what it got
        back in a C stack slot of its own for as long as it runs, where the collector would
        find it (a stream, and with it lib/wsstream.py, 1.9 KB on a 64-bit heap, kept
        through the whole handling of the message it was)."""
        if self.closed:
            raise ConnectionClosed(self.close_code, self.close_reason)
        self._reading = True
        self.cut = 0
        try:
            self._box = box
            return await self._recv(raw)
        except (EOFError, OSError) as e:
            self._shut(1006, "connection lost: %r" % (e,))
            raise ConnectionClosed(1006, self.close_reason)
        finally:
            self._reading = False
            self._box = None

    def _give(self, text):
        """A text message for recv: into its box, if it has one (then None)."""
        if self._box is None:
            return text
        self._box.append(text)
        return None

    async def _recv(self, raw):
        r = self._r
        parts = None
        kind = 0
        size = 0
        while True:
            fin, op, n = await self._frame()
            self.last_rx_ms = ticks_ms()
            if op < 8:
                if op == _CONT and parts is None:
                    await self._fail(1002, "continuation without a start")
                if op != _CONT and parts is not None:
                    await self._fail(1002, "new message inside a fragmented one")
                size += n
                if size > self._max:
                    await self._fail(1009, "message larger than %d bytes" % self._max)
                if raw and MICROPYTHON and fin and parts is None and op == _TEXT and \
                        n > _COMPACT:
                    return self._give(await self._compacted(n, _KEEP))
                data = await self._payload(n)
                if parts is None:
                    if fin:
                        if op == _BIN:
                            return bytes(data)
                        if raw:  # a bytearray: tells text from binary (bytes)
                            return self._give(data if MICROPYTHON else bytearray(data))
                        return self._give(await self._text(data))
                    parts, kind = [data], op
                    continue
                parts.append(data)
                if fin:
                    data = b"".join(parts)
                    parts = None
                    if kind == _BIN:
                        return data
                    return self._give(bytearray(data) if raw else await self._text(data))
                continue
            data = await r.readexactly(n) if n else b""
            if op == _PING:
                if not self._close_sent:
                    await self._write_frame(_PONG, data)
            elif op == _CLOSE:
                await self._peer_close(data)
            # _PONG: last_rx_ms is all it is for

    async def _text(self, data):
        try:
            return str(data, "utf-8")
        except UnicodeError:
            await self._fail(1007, "invalid UTF-8 in text message")

    async def _peer_close(self, data):
        code, reason = 1005, ""
        if len(data) == 1:
            await self._fail(1002, "close frame with 1-byte payload")
        if len(data) >= 2:
            code = int.from_bytes(data[:2], "big")
            try:
                reason = data[2:].decode()
            except UnicodeError:
                await self._fail(1007, "invalid UTF-8 in close reason")
        if not self._close_sent:
            try:
                await self._send_close(code if code != 1005 else 1000, "")
            except OSError:
                pass
        self._shut(code, reason)
        raise ConnectionClosed(code, reason)

    async def close(self, code=1000, reason=""):
        """Close handshake; bounded wait for the server's close frame."""
        if self.closed:
            return
        try:
            await self._send_close(code, reason)
            if self._reading:  # another task is in recv(): it sees the close frame
                await asyncio.wait_for(self._got_close.wait(), _CLOSE_WAIT_MS / 1000)
            else:
                await asyncio.wait_for(self._drain_to_close(), _CLOSE_WAIT_MS / 1000)
        except Exception:  # timeout, reset, protocol error: close anyway
            pass
        self._shut(code, reason)

    async def _drain_to_close(self):
        while True:
            try:
                await self._recv(False)
            except ConnectionClosed:
                return
