"""Websocket test peers on 127.0.0.1, run on a background event loop thread (host only).

`Peers(pki)` starts:
- `echo`: a real `websockets` server with subprotocol ocpp1.6. Messages: "ping-me" makes it
  ping and wait for the pong (answers "pong-ok"), "close-me" makes it close with 4001 "bye",
  "big:N" answers N x "a"; anything else is echoed. It records per path the request headers
  and the close code/reason it saw.
- `noproto`: a `websockets` server without subprotocols (accepts without agreeing).
- `raw`: a hand-written server for malformed handshakes and frames; the path picks the
  script (see RAW_SCRIPTS); it records the frames the client sent back.
- `tls`, `tls_other`, `tls_mtls`: the echo server behind TLS (server cert, a cert for
  another name, client certificate required).
Records: `peers.records[path]` -> dict.
"""

import asyncio
import base64
import hashlib
import os
import threading

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(op, payload=b"", fin=True, rsv=0, mask=None, length=None):
    """Raw server frame; `length` forces the 7-bit length field (for bad frames)."""
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    if length is not None:
        hdr = bytes((b0, length))
    elif n < 126:
        hdr = bytes((b0, n | (0x80 if mask else 0)))
    elif n < 65536:
        hdr = bytes((b0, 126 | (0x80 if mask else 0))) + n.to_bytes(2, "big")
    else:
        hdr = bytes((b0, 127 | (0x80 if mask else 0))) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        hdr += mask
    return hdr + payload


# path -> (accept_ok, frames to send after the handshake)
RAW_SCRIPTS = {
    "bad-accept": (False, []),
    "silent": (None, []),  # never answers the handshake
    "frag-ping": (
        True,
        [frame(1, b"Hel", fin=False), frame(9, b"p1"), frame(0, b"lo"), frame(8, b"\x03\xe8")],
    ),
    "rsv": (True, [frame(1, b"x", rsv=0x40)]),
    "masked": (True, [frame(1, b"x", mask=b"\x01\x02\x03\x04")]),
    "badop": (True, [frame(3, b"x")]),
    "ctrl-frag": (True, [frame(9, b"x", fin=False)]),
    "ctrl-big": (True, [bytes((0x89, 126)) + (126).to_bytes(2, "big") + b"x" * 126]),
    "cont-start": (True, [frame(0, b"x")]),
    "bad-utf8": (True, [frame(1, b"\xff\xfeabc")]),
    "bad-utf8-frag": (True, [frame(1, b"ab\xe2", fin=False), frame(0, b"\x28\xa1")]),
    "len16": (True, [frame(2, b"\x07" * 300)]),
    "len64": (True, [frame(2, b"\x09" * 70000)]),
}


def _unmask(data, mask):
    return bytes(c ^ mask[i % 4] for i, c in enumerate(data))


async def _read_client_frames(reader, rec, limit_s=3.0):
    """Record (opcode, payload) of client frames until its close frame or EOF."""
    frames = rec.setdefault("frames", [])
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while loop.time() < end:
        try:
            hdr = await asyncio.wait_for(reader.readexactly(2), end - loop.time())
            n = hdr[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await reader.readexactly(8), "big")
            masked = bool(hdr[1] & 0x80)
            mask = await reader.readexactly(4) if masked else b""
            payload = await reader.readexactly(n)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
            return
        op = hdr[0] & 0x0F
        frames.append((op, _unmask(payload, mask) if masked else payload, masked))
        if op == 8:
            return


class Peers:
    def __init__(self, pki):
        self.pki = pki
        self.records = {}
        self.ports = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("test peers did not start")

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    def close(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError("test peers did not stop")

    def rec(self, path):
        return self.records.setdefault(path, {})

    async def _echo(self, ws):
        rec = self.rec(ws.request.path)
        rec["headers"] = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        rec["subprotocol"] = ws.subprotocol
        try:
            async for msg in ws:
                if msg == "ping-me":
                    waiter = await ws.ping(b"srv")
                    await asyncio.wait_for(waiter, 3)
                    rec["pong"] = True
                    await ws.send("pong-ok")
                elif msg == "close-me":
                    await ws.close(4001, "bye")
                elif isinstance(msg, str) and msg.startswith("big:"):
                    await ws.send("a" * int(msg[4:]))
                else:
                    await ws.send(msg)
        except ConnectionClosed:
            pass
        rec["close_code"] = ws.close_code
        rec["close_reason"] = ws.close_reason

    async def _raw(self, reader, writer):
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            path = line.split()[1].decode()
            headers = {}
            while True:
                h = await asyncio.wait_for(reader.readline(), 5)
                if h in (b"\r\n", b""):
                    break
                k, _, v = h.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
            rec = self.rec(path)
            rec["headers"] = headers
            accept_ok, frames = RAW_SCRIPTS[path.rsplit("/", 1)[-1]]
            if accept_ok is None:
                await asyncio.sleep(5)
                return
            key = headers["sec-websocket-key"].encode()
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            if not accept_ok:
                accept = base64.b64encode(os.urandom(20))
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            for f in frames:
                writer.write(f)
                await writer.drain()
            await _read_client_frames(reader, rec)
            rec["done"] = True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _main(self):
        from tlsutil import server_context

        self._stop = asyncio.Event()
        servers = {
            "echo": await serve(self._echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"]),
            "noproto": await serve(self._echo, "127.0.0.1", 0),
            "raw": await asyncio.start_server(self._raw, "127.0.0.1", 0),
        }
        for name, ctx in (
            ("tls", server_context(self.pki)),
            ("tls_other", server_context(self.pki, name="other")),
            ("tls_mtls", server_context(self.pki, client_auth=True)),
        ):
            servers[name] = await serve(
                self._echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ssl=ctx
            )
        for name, srv in servers.items():
            self.ports[name] = srv.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        for srv in servers.values():
            srv.close()
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
