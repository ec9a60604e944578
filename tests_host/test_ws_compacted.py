"""A text frame over 4 KiB is read in 256-byte pieces with every string longer than 6 KiB
replaced by ws.CUT (lib/ws.py WebSocket._compacted), so a 16 KiB DataTransfer costs its short
remainder instead of the frame plus its decoded `data`. These tests feed the reader frames
of every shape, cut into pieces at every kind of boundary (inside escapes, between the
backslashes before a quote, inside multi-byte UTF-8), and check the result is exactly the
frame with the long strings replaced; then the firmware answers such frames end to end."""

import asyncio
import json
import os
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ws


class Pieces:
    """A stream reader handing out `data` in the given piece sizes (readinto)."""

    def __init__(self, data, sizes):
        self.data = data
        self.sizes = sizes
        self.i = 0
        self.n = 0

    async def readinto(self, mv):
        k = min(len(mv), self.sizes[self.n % len(self.sizes)], len(self.data) - self.i)
        self.n += 1
        mv[:k] = self.data[self.i : self.i + k]
        self.i += k
        return k


_SPOOL = os.path.join(tempfile.mkdtemp(prefix="spool-"), "frame.tmp")


FAR = [None]  # Spooled.far of the last spooled frame: its long strings are on flash


def loads(out):
    """json.loads of what compact() kept, with the strings it put on flash back in place."""
    import wsbig

    got = json.loads(bytes(out))
    if FAR[0] is not None:
        wsbig.resolve(got, FAR[0])
    return got


def compact(data, sizes, keep, spool=None):
    """(the bytes kept, strings cut). spool: a file path for the kept bytes (the session
    sets one), read back through the stream json.load uses; its strings over wsbig.FAR
    bytes go to a file beside it (loads() puts them back)."""
    FAR[0] = None
    sock = ws.WebSocket(Pieces(data, sizes), None, 1 << 20)
    if spool is not None:
        sock.spool = spool
    out = asyncio.run(sock._compacted(len(data), keep))
    if spool is not None:
        assert not hasattr(out, "pieces") and len(out) == out.size
        got = bytearray()
        buf = bytearray(7)
        for _ in range(2):  # a retry (rpc) rewinds and reads it again
            out.rewind()
            got = bytearray()
            while True:
                n = out.readinto(buf)
                if not n:
                    break
                got += buf[:n]
        assert out._f is None  # closed at its end
        assert bytes(got) == out.read() and out[:5] == bytes(got[:5])
        FAR[0] = out.far
        return bytes(got), sock.cut
    assert all(len(p) <= 3 * 256 for p in out.pieces), [len(p) for p in out.pieces]
    return b"".join(out.pieces), sock.cut


def expected(obj, keep):
    """obj with every string (key or value) whose JSON-escaped bytes exceed keep -> CUT."""
    def raw(s):
        return len(json.dumps(s, ensure_ascii=False)[1:-1].encode())

    if isinstance(obj, str):
        return ws.CUT if raw(obj) > keep else obj
    if isinstance(obj, list):
        return [expected(x, keep) for x in obj]
    if isinstance(obj, dict):
        return {expected(k, keep): expected(v, keep) for k, v in obj.items()}
    return obj


def count_cut(obj, keep):
    if isinstance(obj, str):
        return len(json.dumps(obj, ensure_ascii=False)[1:-1].encode()) > keep
    if isinstance(obj, list):
        return sum(count_cut(x, keep) for x in obj)
    if isinstance(obj, dict):
        return sum(count_cut(k, keep) + count_cut(v, keep) for k, v in obj.items())
    return 0


# Strings rich in what makes the scan hard: quotes, runs of backslashes, escapes, UTF-8.
_chars = st.sampled_from(['"', "\\", "\\\\", "a", "é", "€", "\U0001f600", "\n", "\u0001", "/",
                          "x" * 7])
_text = st.lists(_chars, max_size=150).map("".join)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(obj=_json, sizes=st.lists(st.integers(1, 256), min_size=1, max_size=5),
       keep=st.integers(0, 40) | st.integers(100, 5000), pad=st.integers(0, 3),
       spool=st.booleans())
def test_long_strings_are_cut_and_everything_else_kept_at_any_piece_boundary(
        obj, sizes, keep, pad, spool):
    """In RAM pieces or in the spool file, the same bytes."""
    data = (" " * pad + json.dumps(obj, ensure_ascii=pad % 2 == 0)).encode()
    out, cut = compact(data, sizes, keep, _SPOOL if spool else None)
    if pad % 2 == 0:  # \uXXXX escapes: lengths as escaped
        def raw_len(s):
            return len(json.dumps(s)[1:-1].encode())
    else:
        raw_len = None
    got = loads(out)
    if raw_len is None:
        assert got == expected(obj, keep)
        assert cut == count_cut(obj, keep)
    else:
        def exp(o):
            if isinstance(o, str):
                return ws.CUT if raw_len(o) > keep else o
            if isinstance(o, list):
                return [exp(x) for x in o]
            if isinstance(o, dict):
                return {exp(k): exp(v) for k, v in o.items()}
            return o
        assert got == exp(obj)


def test_the_sockets_room_runs_before_a_long_frame_is_read():
    """A socket's room() (the OCPP session's router.room) runs once per long frame, before
    lib/wsbig.py is loaded and any of the frame read; a short frame never calls it."""
    calls = []
    data = json.dumps([2, "1", "DataTransfer", {"vendorId": "x", "data": "y" * 6000}]).encode()
    sock = ws.WebSocket(Pieces(data, [256]), None, 1 << 20)
    sock.room = lambda: calls.append(("wsbig" in sys.modules, sock._r.i))
    sys.modules.pop("wsbig", None)
    out = asyncio.run(sock._compacted(len(data), 4096))
    assert calls == [(False, 0)]
    assert json.loads(b"".join(out.pieces))[3]["data"] == ws.CUT


def test_a_16_kib_data_transfer_keeps_only_its_short_fields():
    payload = {"vendorId": "Other", "messageId": "x", "data": "d\\\"" * 5400}
    data = json.dumps([2, "id-1", "DataTransfer", payload]).encode()
    assert len(data) > 16000
    out, cut = compact(data, [256], 6144)
    assert cut == 1 and len(out) < 120
    assert json.loads(bytes(out)) == [2, "id-1", "DataTransfer",
                                      {"vendorId": "Other", "messageId": "x", "data": ws.CUT}]


def test_a_malformed_frame_stays_malformed():
    # Only string contents are dropped: a broken structure still fails to parse.
    for bad in (b'[2,"a","DataTransfer",{"data":"' + b"x" * 9000 + b'"', b"[2,," + b" " * 9000,
                b'[2,"a"]' + b" " * 9000 + b"]"):
        out, _ = compact(bad, [256], 6144)
        try:
            json.loads(bytes(out))
        except ValueError:
            continue
        raise AssertionError(bad[:40])


def test_a_spool_that_cannot_be_written_keeps_the_pieces_in_ram(tmp_path):
    payload = {"vendorId": "v", "data": "d" * 5000}
    data = json.dumps([2, "id-1", "DataTransfer", payload]).encode()
    out, cut = compact(data, [256], 6144, spool=None)
    sock = ws.WebSocket(Pieces(data, [256]), None, 1 << 20)
    sock.spool = str(tmp_path / "missing" / "frame.tmp")  # no such directory
    got = asyncio.run(sock._compacted(len(data), 6144))
    assert b"".join(got.pieces) == out == data and cut == 0


def test_the_spool_file_is_closed_when_the_link_goes_mid_frame(tmp_path, monkeypatch):
    """A frame cut short (the peer gone, the reader cancelled) leaves no open spool file
    (each one holds a flash cache buffer; its finaliser would write the partial frame)."""
    import builtins

    import wsbig

    opened = []

    def tracking(*a, **kw):
        f = builtins.open(*a, **kw)
        opened.append(f)
        return f

    monkeypatch.setattr(wsbig, "open", tracking, raising=False)
    data = json.dumps([2, "id-1", "DataTransfer", {"vendorId": "v", "data": "d" * 5000}])
    sock = ws.WebSocket(Pieces(data.encode()[:3000], [256]), None, 1 << 20)
    sock.spool = str(tmp_path / "frame.tmp")
    try:
        asyncio.run(sock._compacted(len(data), 6144))
    except EOFError:
        pass
    else:
        raise AssertionError("a frame cut short must not parse")
    assert opened and all(f.closed for f in opened)


def test_a_spooled_frame_is_answered_and_its_file_removed(tmp_path):
    from firmware.ocpp.rpc import RPC

    payload = {"vendorId": "Other", "messageId": "x", "data": "d" * 5000}
    data = json.dumps([2, "id-1", "DataTransfer", payload]).encode()
    sock = ws.WebSocket(Pieces(data, [256]), None, 1 << 20)
    sock.spool = str(tmp_path / "frame.tmp")
    msg = asyncio.run(sock._compacted(len(data), 6144))
    assert os.path.exists(sock.spool)
    sent = []

    async def send(text):
        sent.append(json.loads(text))

    assert msg.far is not None  # `data` went on to the file beside it
    asyncio.run(RPC(send, None).on_frame(msg, sock.cut))
    assert len(sent) == 1 and sent[0][1] == "id-1"  # answered by its id (parsed from flash)
    assert not os.path.exists(sock.spool) and not os.path.exists(msg.far[0])


# Strings longer than wsbig.FAR bytes of a spooled frame go to a file beside it (issue 9: a
# 5.6 KB string needs a 5.6 KB block, which a fragmented heap does not have). Put back by
# wsbig.resolve, they are exactly what json.loads makes of the frame; in the fields a
# handler reads from flash (keep) they are wsfar.Far, whose text, length and pieces are the
# string's.
_long = st.lists(_chars, min_size=200, max_size=700).map("".join)


@settings(max_examples=120, deadline=None)
@given(cert=_long, other=_long, sizes=st.lists(st.integers(1, 256), min_size=1, max_size=4),
       ascii_=st.booleans())
def test_long_strings_go_to_flash_and_come_back_exactly(tmp_path_factory, cert, other, sizes,
                                                         ascii_):
    import wsbig

    frame = [2, "id-1", "InstallCertificate",
             {"certificate": cert, "nested": {"x": [other]}, "short": "s"}]
    data = json.dumps(frame, ensure_ascii=ascii_).encode()
    spool = str(tmp_path_factory.mktemp("far") / "frame.tmp")
    sock = ws.WebSocket(Pieces(data, sizes), None, 1 << 20)
    sock.spool = spool
    out = asyncio.run(sock._compacted(len(data), 6144))
    far = out.far
    long_ = [x for x in (cert, other)
             if len(json.dumps(x, ensure_ascii=ascii_)[1:-1].encode()) > wsbig.FAR]
    assert (far is not None) == bool(long_)
    msg = json.load(out)
    out.close()
    if far is None:
        assert msg == frame
        return
    assert os.path.getsize(far[0]) >= sum(len(x) for x in long_)  # on flash, not in RAM
    plain = json.loads(json.dumps(msg))
    wsbig.resolve(plain, far)
    assert plain == frame  # every string back in place
    wsbig.resolve(msg, far, ["certificate"])
    got = msg[3]["certificate"]
    assert msg[3]["nested"] == {"x": [other]} and msg[3]["short"] == "s"
    if got is cert or type(got) is str:  # short enough to stay in the frame
        assert got == cert
        return
    assert got.far and len(got) == len(cert) and got.text() == cert
    pieces = list(got.pieces())
    assert "".join(pieces) == cert
    for p in pieces:  # a line, or a part of one of at most 256 bytes
        assert len(p.encode()) <= 256 or p.endswith("\n") and "\n" not in p[:-1]
        assert "\n" not in p[:-1]


@pytest.mark.parametrize("bad", [b"\\x41", b"\\u12g4", b"\\ud800", b"\\ud800\\u0041",
                                 b"\\udc00", b"\x01", b"\xff\xfe", b"\xe2\x82"])
def test_a_bad_long_string_is_refused_as_json_would(tmp_path, bad):
    """Escapes, surrogates, control characters and UTF-8 are checked as json.loads does,
    wherever the bad bytes fall among the reads."""
    import wsbig

    for at in (0, 100, 127, 128, 1500):
        body = b"a" * at + bad + b"b" * (2000 - at)
        data = b'[2,"id-1","DataTransfer",{"vendorId":"v","data":"' + body + b'"}]'
        sock = ws.WebSocket(Pieces(data, [256]), None, 1 << 20)
        sock.spool = str(tmp_path / "frame.tmp")
        out = asyncio.run(sock._compacted(len(data), 6144))
        msg = json.load(out)
        out.close()
        with pytest.raises(ValueError):
            wsbig.resolve(msg, out.far)


def test_a_placeholder_sent_by_the_peer_stays_a_plain_string(tmp_path):
    """The token is random for each frame: a peer cannot make the firmware read the file."""
    import wsbig

    data = json.dumps([2, "id-1", "DataTransfer",
                       {"vendorId": "v", "data": "x" * 3000,
                        "messageId": "\x00far0000:0:10"}]).encode()
    sock = ws.WebSocket(Pieces(data, [256]), None, 1 << 20)
    sock.spool = str(tmp_path / "frame.tmp")
    out = asyncio.run(sock._compacted(len(data), 6144))
    msg = json.load(out)
    out.close()
    wsbig.resolve(msg, out.far)
    assert msg[3] == {"vendorId": "v", "data": "x" * 3000, "messageId": "\x00far0000:0:10"}


def test_a_certificate_on_flash_is_installed_and_the_files_removed(tmp_path):
    """InstallCertificate of an RSA root through the RPC: the handler reads the text from
    flash (wsfar.Far: it never is a string in RAM); both files go once it is answered.
    While the handler works, neither its caller nor sys.modules holds the frame's stream or
    the long-frame reader (lib/wsbig.py) and its streams (lib/wsstream.py): their heap is
    free at the RSA check."""
    import sys

    from cpkit import FakeCP
    from cryptokit import make_cert, rsa_key

    from firmware.config import Config
    from firmware.ocpp import router
    from firmware.ocpp.rpc import RPC
    from firmware.security import cert_admin, certs

    cp = FakeCP()
    cp.data_dir = str(tmp_path)
    cp.config = Config(cp.data_dir)
    cp.security = None
    root = make_cert("Root", rsa_key(4096), ca=True)
    assert len(root.pem) > 1100  # over wsbig.FAR
    seen = []
    real = cert_admin.take_pem

    def spy(payload, key, *more):
        seen.append((type(payload[key]).__module__, type(payload[key]).__name__))
        held.append(("wsbig" in sys.modules, "wsstream" in sys.modules,
                     "wsfar" in sys.modules, list(box)))
        return real(payload, key, *more)

    cert_admin.take_pem = spy
    offered = "InstallCertificate" in router.OFFERED
    router.offer(("install_certificate",))
    try:
        data = json.dumps([2, "id-1", "InstallCertificate",
                           {"certificateType": certs.TYPES[0],
                            "certificate": root.pem}]).encode()
        sock = ws.WebSocket(Pieces(data, [256]), None, 1 << 20)
        sock.spool = str(tmp_path / "frame.tmp")
        msg = asyncio.run(sock._compacted(len(data), 6144))
        box = [msg]  # as the session hands a frame over
        held = []
        sent = []

        async def send(text):
            sent.append(json.loads(text))

        asyncio.run(RPC(send, cp).on_frame(box, sock.cut))
    finally:
        cert_admin.take_pem = real
        if not offered:
            router.OFFERED.pop("InstallCertificate")
    assert sent == [[3, "id-1", {"status": "Accepted"}]]
    assert seen == [("wsfar", "Far")]  # its class's module is not the reader's
    assert held == [(False, False, False, [])]
    assert len(certs.files(cp)) == 1
    assert not os.path.exists(sock.spool) and not os.path.exists(msg.far[0])


def test_long_strings_on_flash_on_micropython(tmp_path):
    """The same on the VM (bytes, str and file calls as MicroPython has them): the frame's
    long strings come back from flash exactly, as a Far where kept, checked where bad."""
    from conftest import MICROPYPATH, mp_run

    chars = ["a", '"', "\\", "é", "€", "\U0001f600", "\n", "/", "\t", "b"]
    tricky = "".join(chars[i % 10] * (1 + i % 3) for i in range(700))
    frame = [2, "id-1", "InstallCertificate", {"certificate": tricky, "x": [tricky[::-1]]}]
    data = json.dumps(frame, ensure_ascii=False)  # 4.7 KB: not cut (6 KiB)
    bad = data.replace("\\n", "\\q", 1)  # an escape JSON does not have
    code = """
import asyncio, json, ws, wsbig
class R:
    def __init__(self, d):
        self.d = d
        self.i = 0
    async def readinto(self, mv):
        k = min(len(mv), 97, len(self.d) - self.i)
        mv[:k] = self.d[self.i:self.i + k]
        self.i += k
        return k
def far(text, keep):
    s = ws.WebSocket(R(text.encode()), None, 1 << 20)
    s.spool = %r
    out = asyncio.run(s._compacted(len(text.encode()), 6144))
    msg = json.load(out)
    out.close()
    wsbig.resolve(msg, out.far, keep)
    return msg
m = far(%r, ["certificate"])
f = m[3]["certificate"]
print(type(f).__name__, len(f), f.text() == %r, m[3]["x"] == [%r])
try:
    far(%r, [])
    print("bad taken")
except ValueError:
    print("bad refused")
""" % (str(tmp_path / "frame.tmp"), data, tricky, tricky[::-1], bad)
    r = mp_run(code, env={"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH})
    assert r.stdout.split("\n")[:2] == ["Far %d True True" % len(tricky), "bad refused"], (
        r.stdout + r.stderr)


def test_the_first_bytes_of_a_frame_in_pieces_are_not_the_whole_frame_joined():
    """What on_oom needs of a frame the heap had no room to parse: its first bytes, taken
    from its first pieces (joining 16 KB then would fail for want of the same room)."""
    from wsstream import Pieces

    class Untouchable(bytes):
        def __radd__(self, other):
            raise AssertionError("a piece past the first bytes was joined")

    p = Pieces([b"a" * 100, b"b" * 100, Untouchable(b"c" * 100)])
    assert p[:64] == b"a" * 64 and p[:150] == b"a" * 100 + b"b" * 50
    p.release()
    assert p[:64] == b"" and len(p) == 0


@pytest.mark.parametrize("trouble", ["no room", "unreadable"])
def test_a_spooled_frame_we_cannot_parse_is_never_the_peers_fault(tmp_path, monkeypatch,
                                                                    trouble):
    """No room to parse a spooled frame, or its file not readable back (even for its first
    bytes): InternalError by its id when it can be read, else no answer; never
    FormationViolation, and its files go."""
    from cpkit import FakeCP

    from firmware.ocpp import rpc as rpcmod
    from wsstream import Spooled

    p = tmp_path / "frame.tmp"
    p.write_bytes(b'[2,"id-7","Heartbeat",{}]')
    s = Spooled(str(p), p.stat().st_size)
    real = rpcmod._loads

    def failing(text):
        if trouble == "no room":
            raise MemoryError("memory allocation failed")
        return real(text)

    monkeypatch.setattr(rpcmod, "_loads", failing)
    if trouble == "unreadable":
        real_open = open

        def no_handle(path, *a, **k):
            if str(path) == str(p):
                raise OSError(24, "EMFILE")
            return real_open(path, *a, **k)

        monkeypatch.setattr(rpcmod, "open", no_handle, raising=False)
        import wsstream

        monkeypatch.setattr(wsstream, "open", no_handle, raising=False)
    sent = []

    async def send(text):
        sent.append(json.loads(text))

    asyncio.run(rpcmod.RPC(send, FakeCP()).on_frame([s]))
    assert all(f[2] != "FormationViolation" for f in sent), sent
    if trouble == "no room":
        assert sent == [[4, "id-7", "InternalError", "out of memory", {}]]
    else:
        assert sent == []  # not even its id could be read
    assert not p.exists()


@pytest.mark.parametrize("where", ["view", "head", "feed", "done"])
def test_no_room_anywhere_in_a_long_frame_is_too_large_and_the_link_stays_in_step(
        tmp_path, monkeypatch, where):
    """A MemoryError at any step of reading a long frame (the view of the next piece, its
    first bytes, what is kept of it, the end that hands it over) drops the rest of the
    frame and raises TooLarge with its first bytes: answered InternalError by its id, the
    next frame read as usual. Seen in the bench at 188 KiB (32-bit): a MemoryError out of
    the spooled frame's end ended the reader, the CertificateSigned got no answer and the
    link went down."""
    import wsbig

    data = json.dumps([2, "id-9", "CertificateSigned", {"certificateChain": "c" * 5000}])
    data = data.encode()
    reader = Pieces(data + b"[2,next]", [256])
    calls = []

    def once(real, caller=None):
        def fail_once(*a, **k):  # the third call (from `caller`) fails
            if caller is None or sys._getframe(1).f_code.co_name == caller:
                calls.append(1)
                if len(calls) == 3:
                    raise MemoryError("memory allocation failed")
            return real(*a, **k)
        return fail_once

    if where == "view":
        monkeypatch.setattr(wsbig, "memoryview", once(memoryview, "compacted"),
                            raising=False)
    elif where == "head":
        monkeypatch.setattr(wsbig, "bytes", once(bytes, "_head"), raising=False)
        calls[:] = [1, 1]  # the head's is its first call
    elif where == "feed":
        monkeypatch.setattr(wsbig._Compact, "feed", once(wsbig._Compact.feed))
    else:
        def no_room(self):
            raise MemoryError("memory allocation failed")
        monkeypatch.setattr(wsbig._Compact, "done", no_room)
    sock = ws.WebSocket(reader, None, 1 << 20)
    sock.spool = str(tmp_path / "frame.tmp")
    with pytest.raises(ws.TooLarge) as e:
        asyncio.run(sock._compacted(len(data), 6144))
    assert e.value.size == len(data) and e.value.head == data[:64]
    assert reader.i == len(data)  # the whole frame read: the next one starts here
    assert len(calls) >= 3 or where == "done"
