"""Tiny asyncio HTTP/1.0-1.1 server for a local JSON API (same code on MicroPython and CPython).

    srv = httpd.Server(handler, auth=None, max_conns=4, timeout_ms=2000)
    await srv.start("127.0.0.1", 8080)     # srv.port: the bound port (CPython also for 0)
    ...
    await srv.close()

`handler(path, query, headers)` is a plain function: `path` without the query, `query` a dict
of percent-decoded strings (last one wins), `headers` a dict with lower-case names. It returns
`(status, obj)` or `(status, obj, extra_headers)`; `obj` goes out as JSON, or, when it has
a `stream(writer)` coroutine and `ctype`/`size` (httpfile.File), as that body sent in
pieces. An exception in it becomes 500 and a log line.

`auth(headers)` (optional) returns True to let the request through; otherwise the answer is
401 with `WWW-Authenticate: Basic`. `basic_credentials(headers)` decodes HTTP Basic.

Only GET (405 otherwise). The request head is read into one bounded buffer: more than
`_MAX_HEAD` bytes or `_MAX_HEADERS` header lines gives 431, a request line over
`_MAX_LINE` or a malformed head or query gives 400, a client that has not sent its whole
head within `timeout_ms` gets 408.

At most `max_conns` connections are served at once (each costs its buffer, a task and a
socket: see the README for the measured heap per slot). Idle or slow clients cannot lock the
others out: when every slot is taken, a new connection evicts the one that has been waiting
longest for its request head (it gets 408); clients send their head at once, so they are
served. Only when no slot is waiting for a head (all are answering) is the newcomer sent 503.
The limit applies before the password check, which needs the head.
"""

import binascii
import json

import log
from compat import const, wait_for_ms

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython
    import uasyncio as asyncio

_MAX_HEAD = const(2048)
_MAX_LINE = const(1024)
_MAX_HEADERS = const(24)
_CHUNK = const(256)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def unquote(s):
    """Percent-decode a query component ("+" is a space). ValueError on bad escapes or UTF-8."""
    s = s.replace("+", " ")
    if "%" not in s:
        return s
    parts = s.split("%")
    out = bytearray(parts[0].encode())
    for part in parts[1:]:
        h = part[:2]
        if len(h) != 2 or h[0] not in "0123456789abcdefABCDEF" or h[1] not in (
            "0123456789abcdefABCDEF"
        ):
            raise ValueError("bad percent-encoding")
        out.append(int(h, 16))
        out.extend(part[2:].encode())
    return bytes(out).decode("utf-8")  # UnicodeError is a ValueError on both runtimes


def parse_query(qs):
    """`a=1&b=%22x%22` -> {"a": "1", "b": '"x"'}. ValueError when malformed."""
    q = {}
    if not qs:
        return q
    for item in qs.split("&"):
        if not item:
            continue
        eq = item.find("=")
        if eq < 0:
            q[unquote(item)] = ""
        else:
            q[unquote(item[:eq])] = unquote(item[eq + 1 :])
    return q


def basic_credentials(headers):
    """(user, password) from an `Authorization: Basic` header, or None."""
    value = headers.get("authorization", "")
    if value[:6].lower() != "basic ":
        return None
    try:
        text = binascii.a2b_base64(value[6:].strip()).decode()
    except Exception:  # bad base64 or UTF-8: treat as no credentials
        return None
    colon = text.find(":")
    if colon < 0:
        return None
    return text[:colon], text[colon + 1 :]


def _parse_head(head):
    """(method, target, headers) from the bytes before the blank line. HttpError if bad."""
    try:
        text = head.decode()
    except Exception:
        raise HttpError(400, "bad encoding")
    lines = text.split("\n")
    line = lines[0].rstrip("\r")
    if len(line) > _MAX_LINE:
        raise HttpError(400, "request line too long")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, "bad request line")
    if len(lines) - 1 > _MAX_HEADERS:
        raise HttpError(431, "too many headers")
    headers = {}
    for raw in lines[1:]:
        raw = raw.rstrip("\r")
        if not raw:
            continue
        colon = raw.find(":")
        if colon < 1:
            raise HttpError(400, "bad header")
        headers[raw[:colon].strip().lower()] = raw[colon + 1 :].strip()
    return parts[0], parts[1], headers


def _keep_accepting():
    """MicroPython's asyncio.Server accept loop ends for good when taking a connection raises
    (a MemoryError making its stream or task on a full heap), and the socket it had accepted
    is dropped unclosed (the unix port has no finaliser for it): that client waits for ever,
    and no request is answered any more. Its loop is replaced once by the same loop that
    closes a connection it could not take (the client sees it closed, and asks again),
    counts the error in `oom` and goes on with the next one."""
    from compat import MICROPYTHON

    if not MICROPYTHON:
        return
    try:
        import asyncio.stream as stream
        from asyncio import core
    except ImportError:  # another asyncio: left as it is
        return

    srv = stream.Server
    if getattr(srv, "_kept", None) is not None:
        return

    def serve(self, s, cb, ssl):  # a generator is a coroutine on MicroPython (1.28's shape)
        self.state = False
        while True:
            try:
                yield core._io_queue.queue_read(s)
            except core.CancelledError as er:  # server closed (or its parent cancelled)
                s.close()
                if self.state:
                    return
                raise er
            s2 = None
            try:
                s2, addr = s.accept()
                if ssl:
                    s2 = ssl.wrap_socket(s2, server_side=True, do_handshake_on_connect=False)
                s2.setblocking(False)
                s2s = stream.Stream(s2, {"peername": addr})
                core.create_task(cb(s2s, s2s))
            except Exception as e:  # noqa: BLE001 - not taken: closed, next one
                if s2 is not None:
                    s2.close()
                if isinstance(e, MemoryError):  # counted; a client's early reset is not
                    try:
                        log.memory("httpd", "accept")
                    except Exception:  # noqa: BLE001, S110 - no room even to log it
                        pass

    srv._kept = srv._serve
    srv._serve = serve


class Server:
    def __init__(self, handler, auth=None, max_conns=4, timeout_ms=2000):
        self.handler = handler
        self.auth = auth
        self.max_conns = max_conns
        self.timeout_ms = timeout_ms
        self.active = 0
        self.evicted = 0
        self.port = None
        self._srv = None
        self._waiting = []  # [task, evicted] of connections reading their head, oldest first

    async def start(self, host="127.0.0.1", port=80):
        _keep_accepting()
        self._srv = await asyncio.start_server(self._serve, host, port)
        self.port = port
        socks = getattr(self._srv, "sockets", None)  # CPython only
        if socks:
            self.port = socks[0].getsockname()[1]
        log.info("httpd", "listening on", host, self.port)
        return self

    async def close(self):
        if self._srv is not None:
            self._srv.close()
            await self._srv.wait_closed()
            self._srv = None

    async def _read_head(self, reader):
        buf = b""
        while True:
            chunk = await reader.read(_CHUNK)
            if not chunk:
                raise HttpError(400, "incomplete request")
            buf += chunk
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                end = buf.find(b"\n\n")
            if end >= 0:
                return buf[:end]
            if len(buf) > _MAX_HEAD:
                raise HttpError(431, "request head too large")
            nl = buf.find(b"\n")
            if (nl < 0 and len(buf) > _MAX_LINE) or nl > _MAX_LINE:
                raise HttpError(400, "request line too long")

    def _dispatch(self, method, target, headers):
        if method != "GET":
            return 405, {"error": "only GET"}, {"Allow": "GET"}
        if self.auth is not None and not self.auth(headers):
            return 401, {"error": "unauthorized"}, {"WWW-Authenticate": 'Basic realm="wallbox"'}
        q = target.find("?")
        path = target if q < 0 else target[:q]
        try:
            query = parse_query("" if q < 0 else target[q + 1 :])
        except ValueError:
            return 400, {"error": "malformed query"}
        try:
            return self.handler(path, query, headers)
        except MemoryError:  # short of memory: try again later (counted in `oom`)
            log.memory("httpd", path)
            return 503, {"error": "out of memory"}, {"Retry-After": "1"}
        except Exception as ex:
            log.error("httpd", "handler failed:", repr(ex))
            return 500, {"error": "internal error"}

    def _evict(self):
        """Free a slot: cancel the connection waiting longest for its head. False if none."""
        if not self._waiting:
            return False
        slot = self._waiting.pop(0)
        slot[1] = True
        slot[0].cancel()
        self.evicted += 1
        return True

    def _unwait(self, slot):
        if slot in self._waiting:
            self._waiting.remove(slot)

    async def _serve(self, reader, writer):
        # Whatever happens, even a MemoryError in an error path, the socket is closed at the
        # end: a connection left open makes its client wait for ever.
        try:
            unread = True  # the request may still be arriving: drain before closing
            if self.active >= self.max_conns and not self._evict():
                res = (503, {"error": "busy"})
            else:
                slot = [asyncio.current_task(), False]
                self._waiting.append(slot)
                self.active += 1  # only once the slot is in the list (a MemoryError above)
                try:
                    head = await wait_for_ms(self._read_head(reader), self.timeout_ms)
                    self._unwait(slot)  # from here on it is answered, never evicted
                    unread = False
                    res = self._dispatch(*_parse_head(head))
                except asyncio.CancelledError:
                    if not slot[1]:
                        raise  # the server is shutting down
                    res = (408, {"error": "timeout"})  # evicted for a newer client
                except HttpError as ex:
                    res = (ex.status, {"error": ex.reason})
                except asyncio.TimeoutError:
                    res = (408, {"error": "timeout"})
                except MemoryError:  # no room to read the request: counted, answered if can
                    log.memory("httpd", "request")
                    res = (503, {"error": "out of memory"}, {"Retry-After": "1"})
                except Exception as ex:  # the client went away
                    log.debug("httpd", "read failed", repr(ex))
                    res = None
                finally:
                    self._unwait(slot)
                    self.active -= 1
            try:
                if res is not None:
                    await self._respond(writer, res)
                    if unread:
                        # Closing with unread input sends a reset that can destroy the answer.
                        await self._drain(reader)
            except Exception as ex:  # peer closed early: nothing to tell it
                log.debug("httpd", "write failed", repr(ex))
        except Exception:  # noqa: BLE001, S110 - no room even to answer (counted)
            pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except (Exception, asyncio.CancelledError):  # no room for the coroutine: at once
                s = getattr(writer, "s", None)  # MicroPython's stream: its socket
                if s is not None:
                    s.close()

    async def _drain(self, reader):
        for _ in range(_MAX_HEAD // _CHUNK * 4):
            try:
                if not await wait_for_ms(reader.read(_CHUNK), 100):
                    return
            except (Exception, asyncio.CancelledError):
                # Timeout, reset; on MicroPython a read after an eviction (cancel) of the
                # same stream raises CancelledError again: stop, the socket is closed next.
                return

    async def _respond(self, writer, res):
        status, obj = res[0], res[1]
        streamed = hasattr(obj, "stream")  # a body sent in pieces (httpfile.File)
        if streamed:
            ctype, size = obj.ctype, obj.size
        else:
            # A JSON body goes out member by member (twice: its length first), so a large
            # answer such as the full /api/status never exists as one string on the heap.
            ctype, size = "application/json", 0
            for piece in _pieces(obj):
                size += len(piece.encode())
        head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
            status,
            _REASONS.get(status, "Error"),
            ctype,
            size,
        )
        if len(res) > 2:
            for k in res[2]:
                head += "%s: %s\r\n" % (k, res[2][k])
        head += "Connection: close\r\n\r\n"
        writer.write(head.encode())
        if streamed:
            # A client that stops reading is dropped, not waited for.
            await wait_for_ms(obj.stream(writer), 2 * self.timeout_ms)
            return
        pending = 0
        for piece in _pieces(obj):
            data = piece.encode()
            writer.write(data)
            pending += len(data)
            if pending >= _CHUNK:
                await writer.drain()
                pending = 0
        await writer.drain()


def _pieces(obj):
    """The JSON text of `obj` in small pieces: a dict member by member."""
    if not isinstance(obj, dict) or not obj:
        yield json.dumps(obj)
        return
    sep = "{"
    for k in obj:
        yield sep + json.dumps(k) + ":" + json.dumps(obj[k])
        sep = ","
    yield "}"
