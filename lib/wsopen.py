"""The opening of a websocket (lib/ws.py): the TLS context, the TCP/TLS connection and the
HTTP upgrade. Loaded for a connect (ws.connect, ws.ssl_context for xfer.py's https
transfers) and let go again: a link that is up holds only lib/ws.py.
"""

import asyncio
import binascii
import hashlib
import os

from compat import MICROPYTHON
from ws import HandshakeError, WebSocket, WebSocketError, parse_url

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEADER_LINES = 40


def _der(pem):
    """PEM (str/bytes, first block) -> DER bytes; DER passes through."""
    if isinstance(pem, str):
        pem = pem.encode()
    a = pem.find(b"-----BEGIN")
    if a < 0:
        return pem
    a = pem.find(b"\n", a) + 1
    return binascii.a2b_base64(pem[a : pem.find(b"-----END", a)])


def _pem_blocks(data):
    """DER of every certificate in a PEM bundle."""
    out = []
    a = data.find(b"-----BEGIN CERTIFICATE")
    while a >= 0:
        b = data.find(b"-----END", a)
        if b < 0:
            break
        out.append(_der(data[a:b + 9]))
        a = data.find(b"-----BEGIN CERTIFICATE", b)
    return out


def _load_pair_cpython(ctx, cert, key):
    # CPython loads client certificates from files only.
    import tempfile

    paths = []
    try:
        for pem in (cert, key):
            fd, path = tempfile.mkstemp(suffix=".pem")
            paths.append(path)
            with os.fdopen(fd, "wb") as f:
                f.write(pem.encode() if isinstance(pem, str) else pem)
        ctx.load_cert_chain(paths[0], paths[1])
    finally:
        for p in paths:
            os.remove(p)


def ssl_context(tls):
    """ssl.SSLContext for a client from the `tls` dict (see the module doc); also used by
    xfer.py so firmware downloads trust exactly what the OCPP link trusts."""
    import ssl

    verify = tls.get("verify", True)
    check = tls.get("check_hostname", True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if MICROPYTHON and not check:
            raise WebSocketError(
                "tls: check_hostname=False is not possible with verification on MicroPython "
                "(mbedTLS always checks the name); use verify=False or a matching host name"
            )
        cadata = tls.get("cadata")
        if cadata:
            if MICROPYTHON:
                for d in _pem_blocks(cadata.encode() if isinstance(cadata, str) else cadata) \
                        or (_der(cadata),):
                    ctx.load_verify_locations(cadata=d)  # mbedTLS adds each to the chain
            else:
                if isinstance(cadata, bytes) and not cadata.startswith(b"-----"):
                    ctx.load_verify_locations(cadata=cadata)  # DER
                else:
                    ctx.load_verify_locations(
                        cadata=cadata.decode() if isinstance(cadata, bytes) else cadata
                    )
        elif tls.get("use_global_ca"):
            if MICROPYTHON:
                path = tls.get("ca_file") or "ca.pem"
                try:
                    with open(path, "rb") as f:
                        ders = _pem_blocks(f.read())
                except OSError:
                    ders = ()
                if not ders:
                    raise WebSocketError("tls: use_global_ca but no CA bundle at " + path)
                for d in ders:
                    ctx.load_verify_locations(cadata=d)
            else:
                ctx.load_default_certs()
        else:
            raise WebSocketError(
                "tls: no CA to verify the server (set cadata or use_global_ca, "
                "or verify=False to connect unverified)"
            )
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not MICROPYTHON:
            ctx.check_hostname = check
    else:
        if not MICROPYTHON:
            ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert = tls.get("cert")
    if cert:
        if MICROPYTHON:
            ctx.load_cert_chain(_der(cert), _der(tls.get("key")))
        else:
            _load_pair_cpython(ctx, cert, tls.get("key") or cert)
    return ctx


def _accept_key(key):
    return binascii.b2a_base64(hashlib.sha1(key + _GUID).digest())[:-1]


async def _open(url, protocol, auth, tls, max_size):
    secure, host, port, path = parse_url(url)
    ctx = ssl_context(tls or {}) if secure else None
    if ctx is None:
        r, w = await asyncio.open_connection(host, port)
        try:
            # A message in several fragments (send_json) must not wait for the peer's
            # delayed ACK between them (Nagle): IPPROTO_TCP, TCP_NODELAY. Where the port's
            # socket has no such option it stays as it is.
            (getattr(w, "s", None) or w.get_extra_info("socket")).setsockopt(6, 1, 1)
        except Exception:  # noqa: BLE001
            pass
    else:
        r, w = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    try:
        key = binascii.b2a_base64(os.urandom(16))[:-1]
        if (port == 443 and secure) or (port == 80 and not secure):
            hosthdr = host
        else:
            hosthdr = "%s:%d" % ("[" + host + "]" if ":" in host else host, port)
        req = [
            "GET ",
            path,
            " HTTP/1.1\r\nHost: ",
            hosthdr,
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ",
            key.decode(),
            "\r\nSec-WebSocket-Version: 13\r\n",
        ]
        if protocol:
            req.append("Sec-WebSocket-Protocol: " + protocol + "\r\n")
        if auth:
            cred = binascii.b2a_base64((auth[0] + ":" + auth[1]).encode())[:-1]
            req.append("Authorization: Basic " + cred.decode() + "\r\n")
        req.append("\r\n")
        try:
            w.write("".join(req).encode())
            await w.drain()
            status = await r.readline()
        except (OSError, ValueError) as e:  # MicroPython: the TLS handshake runs here
            raise HandshakeError("TLS/connection failed: %r" % (e,))
        parts = status.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise HandshakeError("not an HTTP response: %r" % status[:60])
        hdrs = {}
        for _ in range(_MAX_HEADER_LINES):
            line = await r.readline()
            if not line:
                raise HandshakeError("connection closed during handshake")
            if line in (b"\r\n", b"\n"):
                break
            i = line.find(b":")
            if i > 0:
                hdrs[line[:i].strip().lower()] = line[i + 1 :].strip()
        else:
            raise HandshakeError("too many response headers")
        if parts[1] != b"101":
            raise HandshakeError("server answered HTTP %s, not 101" % parts[1].decode())
        if hdrs.get(b"upgrade", b"").lower() != b"websocket":
            raise HandshakeError("missing Upgrade: websocket")
        if hdrs.get(b"sec-websocket-accept") != _accept_key(key):
            raise HandshakeError("bad Sec-WebSocket-Accept")
        got = hdrs.get(b"sec-websocket-protocol")
        if protocol and got != protocol.encode():
            raise HandshakeError(
                "server did not agree to subprotocol %s (got %r)" % (protocol, got)
            )
    except BaseException:
        w.close()
        raise
    return WebSocket(r, w, max_size)


async def connect(
    url, protocol="ocpp1.6", auth=None, tls=None, timeout_ms=10000, max_size=16384
):
    """Open a websocket; the TCP/TLS connection and the handshake bounded by timeout_ms."""
    try:
        return await asyncio.wait_for(
            _open(url, protocol, auth, tls, max_size), timeout_ms / 1000
        )
    except asyncio.TimeoutError:
        raise HandshakeError("no handshake within %d ms" % timeout_ms)
    except (OSError, ValueError) as e:
        if isinstance(e, WebSocketError):
            raise
        raise HandshakeError("connect to %s failed: %r" % (url, e))
