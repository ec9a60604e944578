"""Modbus RTU master: read holding (0x03) and input (0x04) registers.

Runs over any async byte stream with `write(buf)` and `async read(n, timeout_ms)` -> bytes
(b"" when nothing arrived in time): `hal/esp32/meter.py` wraps `machine.UART` (+ RS-485
direction pin), `hal/serial_unix.py` a host tty. Frames per the Modbus over serial line spec
V1.02: address, function, data, CRC-16/MODBUS low byte first; 3.5 character silent interval
between frames; exception responses set the function's high bit.
"""

import asyncio
import struct

from compat import const, ticks_diff, ticks_ms

READ_HOLDING = const(0x03)
READ_INPUT = const(0x04)
_MAX_REGS = const(125)  # spec limit for 0x03/0x04 in one request
_BUF = const(5 + 2 * 125)  # addr, fc, count, data, crc

# CRC-16/MODBUS (reflected poly 0xA001), four bits a step: a 32-byte table instead of 512
# bytes for the byte-wise one, two lookups per byte (about 1 ms for a 40-byte reply on an
# ESP32); a bit-wise loop would cost eight Python iterations per byte.
_CRC_NIB = (
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
)  # fmt: skip


def crc16(data, crc=0xFFFF):
    """CRC-16/MODBUS of `data` (bytes-like); the wire order is the low byte first."""
    t = _CRC_NIB
    for b in data:
        crc ^= b
        crc = (crc >> 4) ^ t[crc & 15]
        crc = (crc >> 4) ^ t[crc & 15]
    return crc


class ModbusError(Exception):
    """The slave answered with an exception response (function | 0x80)."""

    NAMES = {
        1: "illegal function",
        2: "illegal data address",
        3: "illegal data value",
        4: "slave device failure",
        5: "acknowledge",
        6: "slave device busy",
        10: "gateway path unavailable",
        11: "gateway target failed to respond",
    }

    def __init__(self, code, function=0, addr=0):
        super().__init__(
            "modbus exception %d (%s), fc 0x%02x addr %d"
            % (code, self.NAMES.get(code, "?"), function, addr)
        )
        self.code = code
        self.function = function
        self.addr = addr


class ModbusIOError(Exception):
    """No valid answer after every retry (base of the two below)."""


class ModbusTimeout(ModbusIOError):
    """Nothing (or an incomplete frame) within the timeout."""


class ModbusFrameError(ModbusIOError):
    """A reply that is not a valid answer to our request (CRC, address, length)."""


def build_request(addr, function, start, count, buf=None):
    """The 8-byte RTU request frame for a read of `count` registers at `start`."""
    if not 1 <= addr <= 247 or function not in (READ_HOLDING, READ_INPUT):
        raise ValueError("bad address or function")
    if not 1 <= count <= _MAX_REGS or not 0 <= start <= 0xFFFF:
        raise ValueError("bad register range")
    if buf is None:
        buf = bytearray(8)
    struct.pack_into(">BBHH", buf, 0, addr, function, start, count)
    c = crc16(memoryview(buf)[:6])
    buf[6] = c & 0xFF
    buf[7] = c >> 8
    return buf


def parse_response(frame, addr, function, count):
    """Validate one reply frame; return a memoryview of its register data (2*count bytes).

    Raises ModbusError for an exception response, ModbusFrameError for anything else wrong.
    """
    n = len(frame)
    if n < 5:
        raise ModbusFrameError("short frame")
    mv = memoryview(frame)
    if crc16(mv[: n - 2]) != frame[n - 2] | (frame[n - 1] << 8):
        raise ModbusFrameError("bad crc")
    if frame[0] != addr:
        raise ModbusFrameError("wrong address %d" % frame[0])
    if frame[1] == function | 0x80:
        if n != 5:
            raise ModbusFrameError("bad exception length")
        raise ModbusError(frame[2], function, addr)
    if frame[1] != function:
        raise ModbusFrameError("wrong function 0x%02x" % frame[1])
    if frame[2] != 2 * count or n != 5 + 2 * count:
        raise ModbusFrameError("bad byte count")
    return mv[3 : 3 + 2 * count]


def silent_ms(baud):
    """The 3.5-character gap in ms, rounded up (11 bits a character; 1.75 ms above 19200)."""
    if baud > 19200:
        return 2
    return (38500 + baud - 1) // baud


class Master:
    """One RTU master on one bus. Requests are serialised with a lock.

    `timeout_ms` bounds the wait for each complete reply, `retries` the extra attempts after a
    timeout or a garbled reply (an exception response is an answer and is not retried).
    """

    def __init__(self, stream, baud=9600, timeout_ms=300, retries=2):
        self.stream = stream
        self.timeout_ms = timeout_ms
        self.retries = retries
        self._gap = silent_ms(baud)
        self._req = bytearray(8)
        self._buf = bytearray(_BUF)
        self._last = ticks_ms()
        self._lock = asyncio.Lock()
        self.stats = [0, 0, 0]  # requests, timeouts, bad frames

    async def _quiet(self):
        # Throw away stale bytes (a late answer to an earlier request) and keep the line
        # silent for 3.5 characters before we talk.
        for _ in range(8):
            if not await self.stream.read(_BUF, 0):
                break
            self._last = ticks_ms()
        wait = self._gap - ticks_diff(ticks_ms(), self._last)
        if wait > 0:
            await asyncio.sleep(wait / 1000)

    async def _receive(self, count):
        buf = self._buf
        mv = memoryview(buf)
        need = 5 + 2 * count
        got = 0
        t0 = ticks_ms()
        while got < need:
            left = self.timeout_ms - ticks_diff(ticks_ms(), t0)
            if left <= 0:
                break
            chunk = await self.stream.read(need - got, left)
            if chunk:
                mv[got : got + len(chunk)] = chunk
                got += len(chunk)
                if got >= 2 and buf[1] & 0x80:
                    need = 5  # exception response
        self._last = ticks_ms()
        return mv[:got]

    async def read_registers(self, addr, function, start, count):
        """Read `count` registers; returns a memoryview of 2*count big-endian bytes, valid
        until the next request on this master."""
        async with self._lock:
            req = build_request(addr, function, start, count, self._req)
            err = None
            for _ in range(1 + self.retries):
                await self._quiet()
                self.stats[0] += 1
                self.stream.write(req)
                self._last = ticks_ms()
                frame = await self._receive(count)
                if not frame:
                    self.stats[1] += 1
                    err = ModbusTimeout("no reply from %d" % addr)
                    continue
                try:
                    return parse_response(frame, addr, function, count)
                except ModbusFrameError as e:
                    self.stats[2] += 1
                    err = e
            raise err

    async def read_holding(self, addr, start, count):
        return await self.read_registers(addr, READ_HOLDING, start, count)

    async def read_input(self, addr, start, count):
        return await self.read_registers(addr, READ_INPUT, start, count)


# Decoding helpers. `data` is register data as returned above, `reg` the register index
# inside it (0 = first register). `swap=True` for low word first devices.


def _words(data, reg, n, swap):
    i = 2 * reg
    if not swap:
        return data[i : i + 2 * n]
    out = bytearray(2 * n)
    for w in range(n):
        j = 2 * (n - 1 - w)
        out[2 * w] = data[i + j]
        out[2 * w + 1] = data[i + j + 1]
    return out


def u16(data, reg):
    return (data[2 * reg] << 8) | data[2 * reg + 1]


def i16(data, reg):
    v = u16(data, reg)
    return v - 0x10000 if v & 0x8000 else v


def f32(data, reg, swap=False):
    """IEEE 754 float32, big-endian, high word first unless `swap`."""
    return struct.unpack(">f", _words(data, reg, 2, swap))[0]


def i32(data, reg, swap=False):
    return struct.unpack(">i", _words(data, reg, 2, swap))[0]


def u32(data, reg, swap=False):
    return struct.unpack(">I", _words(data, reg, 2, swap))[0]


def u64(data, reg, swap=False):
    b = _words(data, reg, 4, swap)
    return (struct.unpack(">I", b[:4])[0] << 32) | struct.unpack(">I", b[4:8])[0]
