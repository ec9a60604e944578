"""Host serial port (a USB RS-485 adapter or a pseudo-terminal) for `make sim METER=`.

Runs on the MicroPython unix port (its `termios` has tcgetattr/tcsetattr/setraw) and on
CPython. The tty is put in raw mode, 8N1, with VMIN=0/VTIME=0 so that a read returns at
once with whatever has arrived: `read` polls it from the event loop, no thread, no select.
Linux values are the fallback for termios constants MicroPython does not export.
"""

import asyncio
import termios

from compat import ticks_diff, ticks_ms

_VTIME = getattr(termios, "VTIME", 5)
_VMIN = getattr(termios, "VMIN", 6)
_CSTOPB = getattr(termios, "CSTOPB", 0o100)
_PARENB = getattr(termios, "PARENB", 0o400)
_CLOCAL = getattr(termios, "CLOCAL", 0o4000)
_CREAD = getattr(termios, "CREAD", 0o200)
_POLL_MS = 2  # about two characters at 9600 baud


class Serial:
    """`Serial(path, baud=9600)`: the stream `modbus.Master` expects."""

    def __init__(self, path, baud=9600):
        speed = getattr(termios, "B%d" % baud, None)
        if speed is None:
            raise ValueError("unsupported baud rate %d" % baud)
        self.baud = baud
        self._f = open(path, "r+b", buffering=0)
        fd = self._f.fileno()
        try:
            if hasattr(termios, "setraw"):  # MicroPython
                termios.setraw(fd)
            else:  # CPython keeps it in tty
                import tty

                tty.setraw(fd)
            attr = termios.tcgetattr(fd)
            attr[2] = (attr[2] & ~(_CSTOPB | _PARENB)) | _CLOCAL | _CREAD  # 8N1, no modem
            attr[4] = speed
            attr[5] = speed
            cc = attr[6]
            cc[_VMIN] = 0
            cc[_VTIME] = 0
            termios.tcsetattr(fd, termios.TCSANOW, attr)
        except Exception:
            self._f.close()
            raise

    def write(self, buf):
        n = 0
        while n < len(buf):  # a tty takes 8-byte frames whole; bounded by the frame length
            w = self._f.write(buf[n:] if n else buf)
            n += w if w else 0
            if not w:
                break
        return n

    def _read_now(self, n):
        try:
            return self._f.read(n) or b""
        except OSError:  # EAGAIN on some ports when nothing is there
            return b""

    async def read(self, n, timeout_ms):
        """Up to n bytes; b"" when nothing arrived within timeout_ms."""
        t0 = ticks_ms()
        while True:
            data = self._read_now(n)
            if data or ticks_diff(ticks_ms(), t0) >= timeout_ms:
                return data
            await asyncio.sleep(_POLL_MS / 1000)

    def close(self):
        self._f.close()


def open_meter(path, kind="sdm630", addr=1, baud=9600):
    """The HAL `meter` for a Modbus meter on a host serial port (`make sim METER=`)."""
    import modbus
    from hal.meters import ModbusMeter

    return ModbusMeter(modbus.Master(Serial(path, baud), baud), addr, kind)
