"""lib/httpd.py served for real on 127.0.0.1: parsing, caps, timeouts, auth hook, limits."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import time

import pytest
from conftest import MICROPYPATH, free_port, micropython_binary, mp_env, mp_run

import httpd


def echo(path, query, headers):
    if path == "/boom":
        raise RuntimeError("x")
    return 200, {"path": path, "query": query, "ua": headers.get("user-agent")}


async def _raw(port, data, read_timeout=5):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(data)
    await w.drain()
    resp = await asyncio.wait_for(r.read(), read_timeout)
    w.close()
    return resp


def _parse(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    return status, headers, json.loads(body)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def serve(test, **kw):
    async def main():
        srv = httpd.Server(kw.pop("handler", echo), **kw)
        await srv.start("127.0.0.1", 0)
        try:
            return await test(srv)
        finally:
            await srv.close()

    return run(main())


def test_get_with_percent_decoded_query():
    async def t(srv):
        raw = b"GET /a/b?x=%22h%C3%A9%22&y=1+2&flag HTTP/1.1\r\nUser-Agent: t\r\n\r\n"
        return _parse(await _raw(srv.port, raw))

    status, _, body = serve(t)
    assert status == 200
    assert body == {"path": "/a/b", "query": {"x": '"hé"', "y": "1 2", "flag": ""}, "ua": "t"}


def test_http_1_0_and_bare_newlines_are_accepted():
    async def t(srv):
        return _parse(await _raw(srv.port, b"GET /q HTTP/1.0\n\n"))

    assert serve(t)[0] == 200


@pytest.mark.parametrize("query", ["a=%zz", "a=%4", "a=%", "a=%ff%fe"])
def test_malformed_percent_encoding_is_400(query):
    async def t(srv):
        return _parse(await _raw(srv.port, b"GET /x?" + query.encode() + b" HTTP/1.1\r\n\r\n"))

    status, _, body = serve(t)
    assert status == 400 and body == {"error": "malformed query"}


def test_only_get_is_allowed():
    async def t(srv):
        return _parse(await _raw(srv.port, b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"))

    status, headers, body = serve(t)
    assert status == 405 and headers["allow"] == "GET" and "error" in body


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /x\r\n\r\n",
        b"GET /x FTP/1\r\n\r\n",
        b"GET /x HTTP/1.1\r\nNoColon\r\n\r\n",
    ],
)
def test_malformed_request_is_400(raw):
    async def t(srv):
        return _parse(await _raw(srv.port, raw))

    assert serve(t)[0] == 400


def test_oversized_head_is_431_and_too_many_headers_is_431():
    async def t(srv):
        big = b"GET /x HTTP/1.1\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
        many = b"GET /x HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(40)) + b"\r\n"
        return _parse(await _raw(srv.port, big)), _parse(await _raw(srv.port, many))

    big, many = serve(t)
    assert big[0] == 431 and many[0] == 431


def test_overlong_request_line_is_400():
    async def t(srv):
        return _parse(await _raw(srv.port, b"GET /" + b"a" * 1500 + b" HTTP/1.1\r\n\r\n"))

    assert serve(t)[0] == 400


def test_slow_client_times_out():
    async def t(srv):
        return _parse(await _raw(srv.port, b"GET /x HTTP/1.1\r\n"))  # never finishes the head

    status, _, body = serve(t, timeout_ms=200)
    assert status == 408 and body == {"error": "timeout"}


def test_handler_exception_is_500_and_server_keeps_serving():
    async def t(srv):
        a = _parse(await _raw(srv.port, b"GET /boom HTTP/1.1\r\n\r\n"))
        b = _parse(await _raw(srv.port, b"GET /ok HTTP/1.1\r\n\r\n"))
        return a[0], b[0]

    assert serve(t) == (500, 200)


def test_auth_hook_and_basic_credentials():
    def auth(headers):
        return httpd.basic_credentials(headers) == ("u", "p:w")

    async def t(srv):
        no = _parse(await _raw(srv.port, b"GET /x HTTP/1.1\r\n\r\n"))
        tok = base64.b64encode(b"u:p:w")
        yes = _parse(
            await _raw(srv.port, b"GET /x HTTP/1.1\r\nAuthorization: Basic " + tok + b"\r\n\r\n")
        )
        bad = _parse(await _raw(srv.port, b"GET /x HTTP/1.1\r\nAuthorization: Basic !!!\r\n\r\n"))
        return no, yes, bad

    no, yes, bad = serve(t, auth=auth)
    assert no[0] == 401 and no[1]["www-authenticate"].startswith("Basic")
    assert yes[0] == 200
    assert bad[0] == 401


async def _drip(port, data, interval=0.3):
    """A client that sends one byte every `interval` seconds (never a whole head)."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(len(data)):
            w.write(data[i : i + 1])
            await w.drain()
            await asyncio.sleep(interval)
        return await r.read()
    except (ConnectionError, OSError):
        return b""
    finally:
        w.close()


async def _hold_and_poll(port, idle=4, drips=2, polls=10):
    """`idle` silent connections and `drips` slow-drip ones held open while a client polls;
    returns the poll statuses and what the held connections were answered."""
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(idle)]
    drip = [asyncio.ensure_future(_drip(port, b"GET /slow HTTP/1.1\r\nX: " + b"y" * 40))
            for _ in range(drips)]
    await asyncio.sleep(0.2)
    codes = []
    for _ in range(polls):
        resp = await _raw(port, b"GET /api/status?filter=car HTTP/1.1\r\n\r\n")
        codes.append(_parse(resp)[0])
        await asyncio.sleep(0.05)
    answers = []  # the ones still holding a slot at the end are not answered (yet)
    for r, w in held:
        try:
            answers.append(await asyncio.wait_for(r.read(), 1))
        except (ConnectionError, OSError, asyncio.TimeoutError):
            answers.append(b"")
        w.close()
    for d in drip:
        d.cancel()
    return codes, answers


def test_idle_and_slow_connections_cannot_lock_a_polling_client_out():
    async def t(srv):
        codes, answers = await _hold_and_poll(srv.port)
        await asyncio.sleep(0.1)
        return codes, answers, srv.active, srv.evicted

    # A long head deadline: only the eviction of the longest waiting slot serves the poller.
    codes, answers, active, evicted = serve(t, max_conns=2, timeout_ms=30000)
    assert codes == [200] * 10
    assert evicted >= 4 and active <= 2
    _evicted_were_told(answers, 2)


def _evicted_were_told(answers, slots):
    """The idle connections evicted were told why, as HTTP; at most `slots` still wait."""
    told = [a for a in answers if a.startswith(b"HTTP/1.1 408 ")]
    assert len(told) >= len(answers) - slots, answers
    assert all(a == b"" for a in answers if a not in told), answers


def test_a_full_server_answers_503_only_when_no_slot_waits_for_a_head():
    async def t(srv):
        srv.active = srv.max_conns  # every slot busy answering (none waiting for a head)
        busy = _parse(await _raw(srv.port, b"GET /x HTTP/1.1\r\n\r\n", read_timeout=3))
        srv.active = 0
        ok = _parse(await _raw(srv.port, b"GET /x HTTP/1.1\r\n\r\n"))
        return busy[0], ok[0]

    assert serve(t, max_conns=2) == (503, 200)


def test_unquote_and_parse_query():
    assert httpd.unquote("a%2Cb+c") == "a,b c"
    assert httpd.parse_query("a=1&&b=%7B%7D&a=2") == {"a": "2", "b": "{}"}
    with pytest.raises(ValueError):
        httpd.unquote("%G1")


def test_same_server_on_micropython():
    port = free_port()
    code = (
        """
import asyncio, httpd
def h(path, query, headers):
    return 200, {"path": path, "query": query}
async def main():
    srv = httpd.Server(h, timeout_ms=300)
    await srv.start("127.0.0.1", %d)
    print("ready")
    await asyncio.sleep(8)
asyncio.run(main())
"""
        % port
    )
    p = subprocess.Popen(
        [micropython_binary(), "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=mp_env({"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH}),
    )
    try:
        deadline = time.monotonic() + 10
        while b"ready" not in p.stdout.readline():
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read()

        async def t():
            ok = _parse(await _raw(port, b"GET /a?k=%22v%22 HTTP/1.1\r\n\r\n"))
            bad = _parse(await _raw(port, b"GET /a?k=%zz HTTP/1.1\r\n\r\n"))
            big = _parse(await _raw(port, b"GET /x HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n"))
            post = _parse(await _raw(port, b"DELETE /a HTTP/1.1\r\n\r\n"))
            slow = _parse(await _raw(port, b"GET /a HTTP/1.1\r\n"))
            return ok, bad[0], big[0], post[0], slow[0]

        ok, bad, big, post, slow = run(t())
        assert ok[0] == 200 and ok[2] == {"path": "/a", "query": {"k": '"v"'}}
        assert (bad, big, post, slow) == (400, 431, 405, 408)
    finally:
        p.kill()
        p.wait(5)
        p.stdout.close()
        p.stderr.close()


_MP_SERVER = """
import asyncio, gc, httpd
srv = None
def h(path, query, headers):
    gc.collect()
    return 200, {"alloc": gc.mem_alloc(), "active": srv.active, "evicted": srv.evicted}
async def main():
    global srv
    srv = httpd.Server(h, max_conns=%d, timeout_ms=30000)
    await srv.start("127.0.0.1", %d)
    print("ready")
    await asyncio.sleep(30)
asyncio.run(main())
"""


def _mp_server(max_conns):
    port = free_port()
    p = subprocess.Popen(
        [micropython_binary(), "-X", "heapsize=256k", "-c", _MP_SERVER % (max_conns, port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=mp_env({"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH}),
    )
    deadline = time.monotonic() + 10
    while b"ready" not in p.stdout.readline():
        assert time.monotonic() < deadline and p.poll() is None, p.stderr.read()
    return p, port


def _stop(p):
    p.kill()
    p.wait(5)
    p.stdout.close()
    p.stderr.close()


def test_idle_and_slow_connections_cannot_lock_out_a_poller_on_micropython():
    p, port = _mp_server(2)
    try:
        codes, answers = run(_hold_and_poll(port, idle=4, drips=2, polls=10))
        assert codes == [200] * 10
        _evicted_were_told(answers, 2)
    finally:
        _stop(p)


def _alloc(port):
    return _parse(run(_raw(port, b"GET /m HTTP/1.1\r\n\r\n")))[2]


def test_heap_per_connection_slot_on_micropython():
    """What one more slot of `max_conns` costs: an idle connection (socket, stream, tasks)
    and one holding an almost full request head. The README quotes these figures (64-bit
    unix port here; 0.9 KB and 3.0 KB measured on the 32-bit build, the ESP32's size)."""
    n = 8
    p, port = _mp_server(32)
    held = []
    try:
        _alloc(port)
        base = _alloc(port)
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        time.sleep(0.5)
        idle = _alloc(port)
        for c in held:
            c.sendall(b"GET /x HTTP/1.1\r\nX: " + b"a" * 1900)
        time.sleep(0.5)
        full = _alloc(port)
    finally:
        for c in held:
            c.close()
        _stop(p)
    assert idle["active"] == n + 1 and full["active"] == n + 1
    per_idle = (idle["alloc"] - base["alloc"]) / n
    per_full = (full["alloc"] - base["alloc"]) / n
    print("heap per HTTP slot: idle %d B, 1.9 KB head pending %d B" % (per_idle, per_full))
    assert per_idle < 2500 and per_full < 5000


def test_a_large_answer_is_sent_member_by_member_with_its_exact_length():
    big = {"k%d" % i: {"n": i, "s": "äöü €", "l": [1.5, None, True]} for i in range(200)}

    def handler(path, query, headers):
        return 200, big if path == "/big" else []

    async def t(srv):
        return (_parse(await _raw(srv.port, b"GET /big HTTP/1.1\r\n\r\n")),
                _parse(await _raw(srv.port, b"GET /list HTTP/1.1\r\n\r\n")))

    (status, _, body), (s2, _, b2) = serve(t, handler=handler)
    assert status == 200 and body == big  # _parse checked Content-Length against the bytes
    assert s2 == 200 and b2 == []


def test_the_accept_loop_survives_no_room_for_a_connection_on_micropython():
    """MicroPython's asyncio.Server accept loop ended for good when taking a connection
    raised (a MemoryError on a squeezed heap: seen in test_e2e_frozen32, the API then timed
    out), and the socket it had accepted stayed open, its client waiting for ever (CI saw
    that too). Now that connection is closed, the error counted, and the next one answered.
    Likewise a connection whose error path itself runs out of memory is closed, not left."""
    port = free_port()
    code = """
import asyncio, httpd, log, socket
from asyncio import core
def h(path, query, headers):
    if path == "/oom":
        log.memory = log.debug = None  # the error paths fail too: calling None raises
        raise MemoryError("no room for the answer")
    return 200, {"path": path}
def get(path="/x"):
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", %d)[0][-1])
    s.send(b"GET " + path.encode() + b" HTTP/1.1\\r\\n\\r\\n")
    return s
def told(s):  # what the client has once the server is done with it
    s.setblocking(False)
    try:
        return s.recv(200).split(b"\\r\\n")[0].decode() or "closed"
    except OSError as e:  # reset: closed with the request unread; EAGAIN: nothing yet
        return "left open" if e.errno == 11 else "closed"
async def main():
    srv = httpd.Server(h, timeout_ms=300)
    await srv.start("127.0.0.1", %d)
    real = core.create_task
    def short(coro):
        coro.close()
        raise MemoryError("no room for the connection")
    core.create_task = short
    s = get()
    await asyncio.sleep_ms(200)
    core.create_task = real
    print("oom", log.oom, told(s))
    s.close()
    s = get()
    await asyncio.sleep_ms(400)
    print(told(s))
    s.close()
    memory, debug = log.memory, log.debug
    s = get("/oom")
    await asyncio.sleep_ms(400)
    log.memory, log.debug = memory, debug
    print("oom path", told(s))
    s.close()
    s = get()
    await asyncio.sleep_ms(400)
    print(told(s))
    s.close()
    await srv.close()
    print("closed")
asyncio.run(main())
""" % (port, port)
    r = mp_run(code, env={"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH})
    lines = [x for x in r.stdout.split("\n") if not x.startswith(("I ", "E "))]
    assert lines[:5] == ["oom 1 closed", "HTTP/1.1 200 OK", "oom path closed",
                         "HTTP/1.1 200 OK", "closed"], r.stdout + r.stderr
