"""RFID: an RDM6300-style 125 kHz EM4100 reader on a UART (9600 8N1, reader TX only).

Frame: STX 0x02, ten ASCII hex digits (version byte + 32-bit tag id), two ASCII hex digits
of checksum (XOR of the five data bytes), ETX 0x03. The reader repeats the frame while a card
is held; `poll()` reports each presentation once: the same tag again only after the card has
been away for `away_ms`. The idTag is the ten hex digits, upper case.
"""

from machine import UART

from compat import ticks_diff, ticks_ms

_FRAME = 14


def parse_frame(frame):
    """idTag from one 14-byte frame, or None when it is malformed."""
    if len(frame) != _FRAME or frame[0] != 2 or frame[13] != 3:
        return None
    try:
        data = bytes.fromhex(bytes(frame[1:13]).decode())
    except (ValueError, UnicodeError):
        return None
    x = 0
    for b in data[:5]:
        x ^= b
    if x != data[5]:
        return None
    return bytes(frame[1:11]).decode().upper()


class Reader:
    def __init__(self, uart, rx, tx=None, baud=9600, away_ms=1500):
        if tx is None:
            self._uart = UART(uart, baudrate=baud, rx=rx, timeout=0)
        else:
            self._uart = UART(uart, baudrate=baud, rx=rx, tx=tx, timeout=0)
        self._buf = bytearray(_FRAME)
        self._n = 0
        self._away = away_ms
        self._last = None
        self._last_ms = 0

    def poll(self):
        new = None
        for _ in range(4):  # bounded: at most 4 frames' worth a call
            chunk = self._uart.read(_FRAME)
            if not chunk:
                break
            for b in chunk:  # at most 14 bytes: framing is per byte by nature
                if b == 2:
                    self._n = 0
                if self._n < _FRAME:
                    self._buf[self._n] = b
                    self._n += 1
                if b == 3 and self._n == _FRAME:
                    tag = parse_frame(self._buf)
                    self._n = 0
                    if tag is not None:
                        now = ticks_ms()
                        if tag != self._last or ticks_diff(now, self._last_ms) > self._away:
                            new = tag
                        self._last = tag
                        self._last_ms = now
        return new
