"""File transfer for firmware updates and diagnostics: HTTP(S) GET/PUT and FTP, streamed.

    size, sha = await xfer.download("https://h/fw.bundle", "fw.tmp", tls=tls, max_bytes=n)
    size, sha = await xfer.upload("ftp://user:pw@h:21/diag/cp1.log", "log.txt")

`download` writes the body to `path` (the caller renames it into place; or a sink factory,
see open_sink) and returns
(bytes, SHA-256 hex), both computed while streaming through one 1 KiB buffer: a file never
sits in RAM. Before writing it checks the announced size (Content-Length, FTP SIZE) against
`max_bytes` and the free flash (keeping 8 KiB spare); without an announced size max_bytes is
enforced as the bytes arrive and a full flash ends the transfer. On any failure the partial
file is removed and TransferError(reason) raised; messages never show a URL's password.

HTTP/1.1 with `Connection: close`: redirects 301/302/303/307/308 (at most 5; https never
redirects to http; dot segments of a relative Location are left to the server), chunked
transfer encoding, user:password in the URL as Basic auth.
`https://` is verified with the OCPP link's `tls` dict (ws.ssl_context: cadata,
use_global_ca, check_hostname, verify, cert/key); without a CA it refuses, never skips.
`upload(url, source)`: HTTP PUT or FTP STOR of a file (`source` a path) or of an iterable of
bytes chunks (HTTP: chunked request body). `ftp://` lives in ftp.py, imported on first use.
Every network wait is bounded by `timeout_ms` (idle time, not the whole transfer).
"""

import asyncio
import binascii
import hashlib
import os

from compat import MICROPYTHON, const, wait_for_ms

_BUF = const(512)  # transfer buffer: a small block, found on a fragmented heap too
TIMEOUT_MS = const(20000)
_MAX_REDIRECTS = const(5)
_MAX_HEADERS = const(50)
_RESERVE = const(8192)  # flash left free after a download: config and journal writes
_ENOSPC = const(28)


class TransferError(Exception):
    """A transfer failed; `reason` says why in words fit for a log or an OCPP status."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def unquote(s):
    """Percent-decoding (user, password and FTP path of a URL)."""
    if "%" not in s:
        return s
    b = s.encode()
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 37 and i + 2 < len(b):
            try:
                out.append(int(b[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(b[i])
        i += 1
    return out.decode()


def split_url(url):
    """-> (scheme, user, password, host, port, path): scheme lower case, user and password
    percent-decoded (None without credentials), path as given ("/" when empty)."""
    i = url.find("://")
    scheme = url[:i].lower() if i > 0 else ""
    if scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    elif scheme == "ftp":
        port = 21
    else:
        raise TransferError("unsupported URL (http://, https://, ftp://): " + _safe(url))
    rest = url[i + 3 :]
    j = 0
    while j < len(rest) and rest[j] not in "/?#":
        j += 1
    auth, path = rest[:j], rest[j:].split("#")[0] or "/"
    if path[0] != "/":
        path = "/" + path
    user = password = None
    k = auth.rfind("@")
    if k >= 0:
        cred, auth = auth[:k], auth[k + 1 :]
        c = cred.find(":")
        user, password = (cred, "") if c < 0 else (cred[:c], cred[c + 1 :])
        user, password = unquote(user), unquote(password)
    import ws

    try:
        host, port = ws.host_port(auth, port, _safe(url))
    except ws.WebSocketError as e:
        raise TransferError(str(e))
    return scheme, user, password, host, port, path


class Conn:
    """A TCP (or TLS) connection whose every wait is bounded by timeout_ms."""

    def __init__(self, r, w, timeout_ms):
        self.r = r
        self.w = w
        self.t = timeout_ms

    async def line(self):
        return await wait_for_ms(self.r.readline(), self.t)

    async def readinto(self, mv):
        """Read into memoryview `mv`; returns the count, 0 at the end of the stream."""
        if not MICROPYTHON:  # CPython's StreamReader has no readinto
            data = await wait_for_ms(self.r.read(len(mv)), self.t)
            mv[: len(data)] = data
            return len(data)
        while True:
            n = await wait_for_ms(self.r.readinto(mv), self.t)
            if n is not None:  # None: TLS record not complete yet
                return n

    async def write(self, data):
        self.w.write(data if MICROPYTHON else bytes(data))
        await wait_for_ms(self.w.drain(), self.t)

    async def close(self):
        # MicroPython closes the socket only in wait_closed(): an FTP data connection that is
        # not really closed never ends the upload.
        try:
            self.w.close()
            await wait_for_ms(self.w.wait_closed(), 1000)
        except Exception:  # reset, TLS shutdown refused, timeout: it is closed either way
            pass


def tls_context(tls):
    """The OCPP link's TLS settings as an ssl context (ws.ssl_context), errors as ours."""
    import ws

    try:
        return ws.ssl_context(tls or {})
    except ws.WebSocketError as e:
        raise TransferError(str(e))


async def connect(host, port, ctx, timeout_ms):
    """Conn to host:port (TLS with `ctx` unless None)."""
    try:
        if ctx is None:
            aw = asyncio.open_connection(host, port)
        else:
            aw = asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
        r, w = await wait_for_ms(aw, timeout_ms)
    except asyncio.TimeoutError:
        raise TransferError("connect to %s:%d timed out" % (host, port))
    except (OSError, ValueError) as e:
        raise TransferError("connect to %s:%d failed: %s" % (host, port, _why(e)))
    return Conn(r, w, timeout_ms)


def _dir(path):
    i = path.rfind("/")
    return "." if i < 0 else path[:i] or "/"


class Sink:
    """The file being downloaded: size limits, SHA-256, progress, cleanup on failure."""

    def __init__(self, path, total, max_bytes, progress):
        self.path = path
        self.total = total
        self.max = max_bytes
        self.progress = progress
        self.n = 0
        self.h = hashlib.sha256()
        if total is not None:
            self.check(total)
        try:
            self.f = open(path, "wb")
        except OSError as e:
            raise TransferError("cannot create %s: %r" % (path, e))

    def check(self, size):
        if self.max is not None and size > self.max:
            raise TransferError("file larger than the %d bytes allowed" % self.max)
        from fs import free_bytes

        free = free_bytes(_dir(self.path))
        if free is not None and size + _RESERVE > free:
            raise TransferError("not enough flash: %d bytes needed, %d free" % (size, free))

    def write(self, mv):
        n = self.n + len(mv)
        if self.max is not None and n > self.max:
            raise TransferError("file larger than the %d bytes allowed" % self.max)
        try:
            self.f.write(mv)
        except OSError as e:
            if e.args and e.args[0] == _ENOSPC:
                raise TransferError("flash full after %d bytes" % self.n)
            raise
        self.h.update(mv)
        self.n = n
        if self.progress:
            self.progress(n, self.total)

    def done(self):
        self.f.close()
        return self.n, binascii.hexlify(self.h.digest()).decode()

    def fail(self):
        try:
            self.f.close()
        except Exception:  # the original error matters, not this one
            pass
        try:
            os.remove(self.path)
        except OSError:
            pass


def open_sink(path, total, max_bytes, progress):
    """A file Sink for a path; else `path` is a factory: path(total) -> an object with
    write(mv), done() -> (size, sha256 hex) and fail() (e.g. hal/esp32/ota.py's partition)."""
    if isinstance(path, str):
        return Sink(path, total, max_bytes, progress)
    try:
        return path(total)
    except OSError as e:
        raise TransferError(str(e))


async def copy(conn, sink, buf, n=None):
    """n bytes (None: until the peer closes) from conn into sink, through buf."""
    mv = memoryview(buf)
    size = len(buf)
    while n is None or n > 0:
        k = size if n is None or n > size else n
        got = await conn.readinto(mv[:k])
        if not got:
            if n is None:
                return
            raise TransferError("connection closed %d bytes early" % n)
        sink.write(mv[:got])
        if n is not None:
            n -= got


async def send(conn, source, buf, chunked=False):
    """Send a file (`source` a path) or an iterable of bytes; -> (bytes, SHA-256 hex)."""
    h = hashlib.sha256()
    total = 0
    if isinstance(source, str):
        mv = memoryview(buf)
        with open(source, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(mv[:n])
                await conn.write(mv[:n])
                total += n
    else:
        for data in source:
            if not data:
                continue
            h.update(data)
            total += len(data)
            if chunked:
                await conn.write(("%x\r\n" % len(data)).encode())
                await conn.write(data)
                await conn.write(b"\r\n")
            else:
                await conn.write(data)
        if chunked:
            await conn.write(b"0\r\n\r\n")
    return total, binascii.hexlify(h.digest()).decode()


def _is_ftp(url):
    return url[:6].lower() == "ftp://"


async def _guard(aw, url):
    """Await aw; network and timeout errors become TransferError naming the URL."""
    try:
        return await aw
    except TransferError:
        raise
    except asyncio.TimeoutError:
        raise TransferError("%s: timed out" % _safe(url))
    except (OSError, ValueError, EOFError) as e:  # MicroPython: TLS fails on first use
        raise TransferError("%s: %s" % (_safe(url), _why(e)))


def _why(e):
    """ECONNREFUSED rather than OSError(111,); MicroPython reports a failed connect late."""
    import errno

    n = e.args[0] if isinstance(e, OSError) and e.args else None
    return getattr(errno, "errorcode", {}).get(n) or repr(e)


def _safe(url):
    """The URL without its password, for messages and logs."""
    i = url.find("://") + 3
    j = url.find("@", i)
    k = url.find("/", i)
    if j < 0 or (0 <= k < j):
        return url
    c = url.find(":", i, j)
    return url if c < 0 else url[:c] + ":***" + url[j:]


async def download(url, path, tls=None, max_bytes=None, progress=None, timeout_ms=TIMEOUT_MS):
    """GET `url` into the file `path` -> (size, sha256 hex); progress(done, total or None)."""
    if _is_ftp(url):
        import ftp

        return await _guard(ftp.retr(url, path, max_bytes, progress, timeout_ms), url)
    return await _guard(_get(url, path, tls, max_bytes, progress, timeout_ms), url)


async def upload(url, source, tls=None, timeout_ms=TIMEOUT_MS):
    """PUT (http/https) or STOR (ftp) a file path or an iterable of bytes -> (size, sha256)."""
    length = None
    if isinstance(source, str):
        try:
            length = os.stat(source)[6]
        except OSError:
            raise TransferError("no such file: " + source)
    if _is_ftp(url):
        import ftp

        return await _guard(ftp.stor(url, source, timeout_ms), url)
    return await _guard(_put(url, source, length, tls, timeout_ms), url)


async def _get(url, path, tls, max_bytes, progress, timeout_ms):
    for _ in range(_MAX_REDIRECTS + 1):
        c = await _request("GET", url, tls, timeout_ms)
        try:
            status, length, chunked, loc = await _response(c, url)
            if status in (301, 302, 303, 307, 308) and loc:
                nxt = _resolve(url, loc)
                if url[:6].lower() == "https:" and nxt[:5].lower() == "http:":
                    raise TransferError("redirect from https to http refused: " + _safe(nxt))
                url = nxt
                continue
            if status != 200:
                raise TransferError("HTTP %d from %s" % (status, _safe(url)))
            sink = open_sink(path, length, max_bytes, progress)
            try:
                buf = bytearray(_BUF)
                if chunked:
                    await _dechunk(c, sink, buf)
                else:
                    await copy(c, sink, buf, length)
                return sink.done()
            except BaseException:
                sink.fail()
                raise
        finally:
            await c.close()
    raise TransferError("more than %d redirects" % _MAX_REDIRECTS)


async def _dechunk(c, sink, buf):
    """Chunked transfer coding (RFC 9112 section 7.1) into sink."""
    while True:
        line = await c.line()
        try:
            n = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise TransferError("bad chunk size line %r" % line[:20])
        if n == 0:
            for _ in range(_MAX_HEADERS):  # trailer fields up to the empty line
                if (await c.line()).strip() == b"":
                    return
            raise TransferError("too many trailer lines")
        await copy(c, sink, buf, n)
        if (await c.line()).strip() != b"":
            raise TransferError("chunk not followed by CRLF")


async def _put(url, source, length, tls, timeout_ms):
    c = await _request("PUT", url, tls, timeout_ms, length)
    try:
        try:
            sent = await send(c, source, bytearray(_BUF), length is None)
        except OSError as e:  # the server may have refused early (401, 413) and hung up
            try:
                status = (await _response(c, url))[0]
            except Exception:
                raise e
            raise TransferError("HTTP %d from %s" % (status, _safe(url)))
        status = (await _response(c, url))[0]
        if status // 100 != 2:
            raise TransferError("HTTP %d from %s" % (status, _safe(url)))
        return sent
    finally:
        await c.close()


def _resolve(url, loc):
    """Location header value (bytes) -> absolute URL."""
    loc = loc.decode()
    if "://" in loc:
        return loc
    i = url.find("://") + 3
    if loc.startswith("//"):
        return url[: i - 2] + loc
    j = url.find("/", i)
    origin = url if j < 0 else url[:j]
    if loc.startswith("/"):
        return origin + loc
    return (url[: url.rfind("/") + 1] if j >= 0 else origin + "/") + loc


async def _request(method, url, tls, timeout_ms, length=-1):
    """Connect and send the request head -> Conn. length: -1 no body, None chunked body."""
    scheme, user, password, host, port, path = split_url(url)
    if scheme == "ftp":
        raise TransferError("not an HTTP URL: " + _safe(url))
    c = await connect(host, port, tls_context(tls) if scheme == "https" else None, timeout_ms)
    if port != (443 if scheme == "https" else 80):
        host = "%s:%d" % ("[" + host + "]" if ":" in host else host, port)
    head = [method, " ", path, " HTTP/1.1\r\nHost: ", host, "\r\nConnection: close\r\n"]
    if user is not None:
        cred = binascii.b2a_base64((user + ":" + password).encode())[:-1].decode()
        head.append("Authorization: Basic " + cred + "\r\n")
    if length is None:
        head.append("Transfer-Encoding: chunked\r\n")
    elif length >= 0:
        head.append("Content-Length: %d\r\n" % length)
    head.append("\r\n")
    try:
        await c.write("".join(head).encode())
    except BaseException:
        await c.close()
        raise
    return c


async def _response(c, url):
    """Status line and headers -> (status, Content-Length or None, chunked, Location)."""
    parts = (await c.line()).split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise TransferError("not an HTTP response from %s" % _safe(url))
    try:
        status = int(parts[1])
    except ValueError:
        raise TransferError("bad HTTP status %r" % parts[1][:10])
    clen = None
    chunked = False
    loc = None
    for _ in range(_MAX_HEADERS):
        line = await c.line()
        if line in (b"\r\n", b"\n", b""):
            break
        i = line.find(b":")
        name = line[:i].strip().lower()
        if name == b"content-length":
            try:
                clen = int(line[i + 1 :])
            except ValueError:
                raise TransferError("bad Content-Length")
        elif name == b"transfer-encoding":
            chunked = b"chunked" in line[i + 1 :].lower()
        elif name == b"location":
            loc = line[i + 1 :].strip()
    else:
        raise TransferError("too many response headers")
    return status, None if chunked else clen, chunked, loc
