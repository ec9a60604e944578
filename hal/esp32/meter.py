"""Modbus RTU over `machine.UART` with an RS-485 driver-enable pin, and the meter on it."""

import asyncio

from machine import UART, Pin

from compat import ticks_diff, ticks_ms

_POLL_MS = 2


class UartStream:
    """The stream `modbus.Master` expects. DE is raised for the write and dropped only once
    the last stop bit has left (`flush()` waits for the TX FIFO and shift register)."""

    def __init__(self, uart, tx, rx, baud=9600, de_pin=None):
        self._uart = UART(uart, baudrate=baud, bits=8, parity=None, stop=1, tx=tx, rx=rx,
                          timeout=0, rxbuf=512)  # fmt: skip
        self._de = None if de_pin is None else Pin(de_pin, Pin.OUT, value=0)

    def write(self, buf):
        de = self._de
        if de is not None:
            de.value(1)
        try:
            n = self._uart.write(buf)
            self._uart.flush()  # blocks ~1 ms a byte at 9600: 8 ms for a request
        finally:
            if de is not None:
                de.value(0)
        return n

    async def read(self, n, timeout_ms):
        t0 = ticks_ms()
        while True:
            if self._uart.any():
                return self._uart.read(n) or b""
            if ticks_diff(ticks_ms(), t0) >= timeout_ms:
                return b""
            await asyncio.sleep(_POLL_MS / 1000)


def make_meter(uart, tx, rx, kind="sdm630", addr=1, baud=9600, de_pin=None):
    import modbus
    from hal.meters import ModbusMeter

    stream = UartStream(uart, tx, rx, baud, de_pin)
    return ModbusMeter(modbus.Master(stream, baud), addr, kind)
