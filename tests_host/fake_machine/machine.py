"""A small fake of MicroPython's `machine` for host tests of hal/esp32 (CPython and the
unix port). Tests reach the created objects through `PINS`, `PWMS`, `ADCS`, `UARTS`, `WDTS`,
`TIMERS` and script inputs: `Pin.hook` (called on every output write), `ADC.source`."""

PINS = {}
PWMS = {}
ADCS = {}
UARTS = {}
WDTS = []
TIMERS = {}


def reset():
    for d in (PINS, PWMS, ADCS, UARTS, TIMERS):
        d.clear()
    del WDTS[:]


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    PULL_DOWN = 1

    def __init__(self, id, mode=-1, pull=-1, *, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.history = []  # every value written, in order
        self.hook = None
        self._v = 0 if value is None else int(value)
        if value is not None:
            self.history.append(self._v)
        self.created_value = self._v if value is not None else None
        PINS[id] = self

    def value(self, x=None):
        if x is None:
            return self._v
        self._v = 1 if x else 0
        self.history.append(self._v)
        if self.hook:
            self.hook(self._v)
        return None

    def set_input(self, v):  # test side: what the outside world drives
        self._v = v


class PWM:
    def __init__(self, dest, *, freq=0, duty_u16=0, invert=False):
        self.pin = dest
        self._freq = freq
        self._duty = duty_u16
        self.invert = invert
        PWMS[dest.id] = self

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 out of range")
        self._duty = d


class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3

    def __init__(self, pin, *, atten=0):
        self.pin = pin
        self.atten = atten
        self.source = None  # iterable of u16 counts (cycled) or a callable
        self.uv = 0
        self._i = 0
        ADCS[pin.id] = self

    def read_u16(self):
        s = self.source
        if callable(s):
            return s()
        v = s[self._i % len(s)]
        self._i += 1
        return v

    def read_uv(self):
        return self.uv


class UART:
    def __init__(self, id, baudrate=9600, bits=8, parity=None, stop=1, **kw):
        self.id = id
        self.baudrate = baudrate
        self.kw = kw
        self.rx = bytearray()
        self.tx = bytearray()
        self.flushed = 0
        self.on_write = None
        UARTS[id] = self

    def any(self):
        return len(self.rx)

    def read(self, n=-1):
        if not self.rx:
            return None
        n = len(self.rx) if n < 0 else n
        out = bytes(self.rx[:n])
        del self.rx[:n]
        return out

    def write(self, buf):
        self.tx += buf
        if self.on_write:
            self.on_write(bytes(buf))
        return len(buf)

    def flush(self):
        self.flushed += 1


class WDT:
    def __init__(self, *, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        WDTS.append(self)

    def feed(self):
        self.feeds += 1


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id, **kw):
        self.id = id
        self.callback = None
        self.period = None
        TIMERS[id] = self

    def init(self, *, mode=PERIODIC, period=-1, callback=None):
        self.mode = mode
        self.period = period
        self.callback = callback

    def fire(self):  # test side: the period elapsed
        cb, self.callback = self.callback, None
        if cb:
            cb(self)

    def deinit(self):
        self.callback = None
