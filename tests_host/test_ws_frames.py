"""Frame writing: a frame up to 4 KiB leaves in one write (one TCP segment), because a
frame split over segments waits for the peer's delayed ACK (Nagle): +40 ms per answer."""

import asyncio

import pytest

import ws


class Writer:
    def __init__(self):
        self.writes = []

    def write(self, data):
        self.writes.append(bytes(data))

    async def drain(self):
        pass


def _unmask(frame):
    n = frame[1] & 0x7F
    i = 2
    if n == 126:
        n = int.from_bytes(frame[2:4], "big")
        i = 4
    elif n == 127:
        n = int.from_bytes(frame[2:10], "big")
        i = 10
    mask = frame[i : i + 4]
    body = frame[i + 4 :]
    assert len(body) == n
    return bytes(b ^ mask[j % 4] for j, b in enumerate(body))


@pytest.mark.parametrize("size", [0, 5, 125, 511, 512, 3500, 4096])
def test_frames_up_to_4k_leave_in_one_write(size):
    w = Writer()
    sock = ws.WebSocket(None, w, 16384)
    msg = ("x" * size).encode()
    asyncio.run(sock._write_frame(1, msg))
    assert len(w.writes) == 1
    assert _unmask(w.writes[0]) == msg


def test_large_frames_are_chunked_but_intact():
    w = Writer()
    sock = ws.WebSocket(None, w, 1 << 20)
    msg = bytes(range(256)) * 40  # 10 KiB
    asyncio.run(sock._write_frame(2, msg))
    assert len(w.writes) > 1
    assert _unmask(b"".join(w.writes)) == msg
