"""Under memory pressure the charger refuses work, says so and stays connected: a MemoryError
is never reported as the peer's fault (FormationViolation), a frame with no room in the heap
is still answered by its message id, and every such event is counted (`oom`) and shown in
`ocpple`."""

import asyncio
import importlib
import json

import pytest
from test_rpc import Peer, assert_still_answers, routes  # noqa: F401 - fixture

import log
import ws
from firmware.ocpp import rpc as rpcmod
from firmware.ocpp.rpc import RPC


def run(coro):
    return asyncio.run(coro)


class _Json:
    """json whose loads fails with MemoryError `fail` times, then works."""

    def __init__(self, fail):
        self.fail = fail
        self.calls = 0

    def loads(self, text):
        self.calls += 1
        if self.calls <= self.fail:
            raise MemoryError("memory allocation failed")
        return json.loads(text)

    dumps = staticmethod(json.dumps)


@pytest.mark.parametrize("kind", ["str", "bytearray", "bytes"])
def test_memory_error_in_the_parser_is_internal_error_with_the_id(monkeypatch, kind):
    peer = Peer()
    fake = _Json(fail=2)  # the retry after a collection fails too
    monkeypatch.setattr(rpcmod, "json", fake)
    before = log.oom
    frame = json.dumps([2, "big-1", "Reset", {"type": "Soft"}])
    data = {"str": frame, "bytearray": bytearray(frame.encode()), "bytes": frame.encode()}[kind]

    async def main():
        r = RPC(peer.send, [])
        await r.on_frame(data)
        assert peer.last() == [4, "big-1", "InternalError", "out of memory", {}]
        monkeypatch.setattr(rpcmod, "json", json)
        await assert_still_answers(r, peer)

    run(main())
    peer.check()
    assert log.oom == before + 1
    assert "out of memory" in log.last_error


def test_one_memory_error_is_retried_after_shedding(monkeypatch):
    """The retry comes after router.shed(): every message module and helper no CALL uses is
    dropped (not only those idle a minute), then a collection."""
    from firmware.ocpp import router

    peer = Peer()
    fake = _Json(fail=1)
    shed = []
    monkeypatch.setattr(router, "shed", lambda: shed.append(fake.calls))
    rpcmod.json, saved = fake, rpcmod.json
    try:
        run(RPC(peer.send, []).on_frame(json.dumps([2, "r1", "Reset", {"type": "Hard"}])))
    finally:
        rpcmod.json = saved
    assert peer.last() == [3, "r1", {"status": "Accepted"}]
    assert shed == [1]  # after the first failure, before the retry


@pytest.mark.parametrize(
    "head, uid",
    [
        (b'[2,"abc","DataTransfer",{"vendorId":"x","data":"', "abc"),
        (b'[ 2 , "id-7" , "X"', "id-7"),
        (b'[3,"abc",{}]', None),  # an answer: nothing to answer
        (b'[2,"' + b"x" * 40 + b'","X"', None),  # not a valid id
        (b'[2,"unterminated', None),
        (b"\xff\xfe", None),
        (b"", None),
    ],
)
def test_the_call_id_is_read_from_the_first_bytes(head, uid):
    assert rpcmod._peek_call_id(head) == uid


class _Reader:
    """An asyncio stream over fixed bytes, with MicroPython's readinto."""

    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    async def readexactly(self, n):
        if self.pos + n > len(self.data):
            raise EOFError
        b = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return b

    async def read(self, n):
        b = bytes(self.data[self.pos : self.pos + n])
        self.pos += len(b)
        return b

    async def readinto(self, mv):
        n = min(len(mv), len(self.data) - self.pos)
        mv[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def _frame(op, payload):
    n = len(payload)
    if n < 126:
        hdr = bytes((0x80 | op, n))
    else:
        hdr = bytes((0x80 | op, 126)) + n.to_bytes(2, "big")
    return hdr + payload


def _tight(limit):
    real = bytearray

    def tight(n=0):  # the heap has no room for anything above `limit` bytes
        if isinstance(n, int) and n > limit:
            raise MemoryError
        return real(n)

    return tight


def test_a_long_frame_is_read_in_small_pieces_with_its_long_string_cut(monkeypatch):
    big = b'[2,"m1","DataTransfer",{"vendorId":"v","data":"' + b"x" * 9000 + b'"}]'
    small = b'[2,"m2","Heartbeat",{}]'
    monkeypatch.setattr(ws, "MICROPYTHON", True)
    monkeypatch.setattr(ws, "bytearray", _tight(1000), raising=False)
    sock = ws.WebSocket(_Reader(_frame(1, big) + _frame(1, small)), None, 16384)

    async def main():
        msg = await sock.recv(raw=True)
        assert sock.cut == 1
        assert rpcmod._loads(msg) == [2, "m1", "DataTransfer", {"vendorId": "v", "data": ws.CUT}]
        assert bytes(await sock.recv(raw=True)) == small and sock.cut == 0
        assert not sock.closed

    run(main())


def test_a_frame_without_room_is_skipped_whole_and_the_next_one_reads(monkeypatch):
    big = b'[2,"m1","DataTransfer",{"vendorId":"v","data":"' + b"x" * 9000 + b'"}]'
    small = b'[2,"m2","Heartbeat",{}]'
    tight = _tight(100)
    # The module ws will import (router.shed may have dropped the one imported above).
    monkeypatch.setattr(importlib.import_module("wsbig"), "bytearray", tight, raising=False)

    monkeypatch.setattr(ws, "MICROPYTHON", True)
    monkeypatch.setattr(ws, "bytearray", tight, raising=False)
    sock = ws.WebSocket(_Reader(_frame(1, big) + _frame(1, small)), None, 16384)

    async def main():
        with pytest.raises(ws.TooLarge) as e:
            await sock.recv(raw=True)
        assert e.value.size == len(big) and bytes(e.value.head) == big[:64]
        assert rpcmod._peek_call_id(e.value.head) == "m1"
        assert bytes(await sock.recv(raw=True)) == small  # still in step
        assert not sock.closed

    run(main())


def test_raw_receive_tells_text_from_binary():
    sock = ws.WebSocket(_Reader(_frame(1, b"[1]") + _frame(2, b"\x00\x01")), None, 16384)

    async def main():
        text = await sock.recv(raw=True)
        binary = await sock.recv(raw=True)
        assert isinstance(text, bytearray) and text == b"[1]"
        assert isinstance(binary, bytes) and binary == b"\x00\x01"

    run(main())
