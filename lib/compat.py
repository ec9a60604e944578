"""Tiny shim so the same source runs on MicroPython and CPython.

MicroPython: re-exports the native helpers. CPython: emulates them, including the
2**30 wrap of ticks_ms (MicroPython's TICKS_PERIOD on every port), so wrap bugs show
up in host tests too.
"""

import sys

MICROPYTHON = sys.implementation.name == "micropython"

# One scratch buffer for the two steady-state users of a ~1.5 KB block: the journal reading
# its next entry (firmware/transactions/journal.py) and the websocket building a frame
# (lib/ws.py). The firmware takes it at boot (firmware/app.py run()), while the heap is
# whole: later a fragmented heap may have many KiB free and no block this long. Each user
# holds it only in code without an await, so they never overlap.
SCRATCH_BYTES = 1536
_scratch = []


def scratch():
    if not _scratch:
        _scratch.append(bytearray(SCRATCH_BYTES))
    return _scratch[0]

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms
except ImportError:
    import time as _time

    _PERIOD = 1 << 30
    _HALF = 1 << 29
    _T0 = _time.monotonic()

    def ticks_ms():
        return int((_time.monotonic() - _T0) * 1000) & (_PERIOD - 1)

    def ticks_add(t, delta):
        return (t + delta) & (_PERIOD - 1)

    def ticks_diff(a, b):
        return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF

    def sleep_ms(ms):
        _time.sleep(ms / 1000)


def epoch_offset():
    """Seconds from 1970-01-01 to this port's time() epoch (2000 on the ESP32 port)."""
    import time

    y = time.gmtime(0)[0]
    return 946684800 if y == 2000 else 0


# Long synchronous work (an RSA or ECDSA check: up to a second on an ESP32, with no await
# in it) calls busy() between its steps. The charger sets BUSY[0] to a function that runs
# its safety tick when one is due, so the contactor logic keeps its 20 ms through such work.
BUSY = [None]


def busy():
    f = BUSY[0]
    if f is not None:
        f()


_up_last = ticks_ms()
_up_base = 0


def uptime_ms():
    """Milliseconds since boot, unwrapped. Any caller at least once a week keeps it exact
    (the firmware's main loop calls it every second)."""
    global _up_last, _up_base
    now = ticks_ms()
    _up_base += ticks_diff(now, _up_last)
    _up_last = now
    return _up_base


def _aio():
    import asyncio

    return asyncio


if hasattr(_aio(), "sleep_ms"):
    asleep_ms = _aio().sleep_ms
    wait_for_ms = _aio().wait_for_ms
else:

    def asleep_ms(ms):
        """await asleep_ms(n): asyncio.sleep_ms on MicroPython, emulated on CPython."""
        return _aio().sleep(ms / 1000)

    def wait_for_ms(aw, ms):
        """asyncio.wait_for with a timeout in ms (TimeoutError on expiry), both runtimes."""
        return _aio().wait_for(aw, ms / 1000)


_NAP_STEP_MS = const(100)


async def nap(ev, ms):
    """Until the asyncio.Event `ev` is set or `ms` passed, whichever comes first (True when
    set). For the loops that wait on a wake-up event with a timeout: in steps of at most
    100 ms instead of wait_for_ms, which on MicroPython holds a second task and coroutine for
    the whole wait (~440 bytes against ~80 here, 32-bit) and leaves both as garbage at
    every expiry. A set() is noticed within a step."""
    end = ticks_add(ticks_ms(), ms)
    while not ev.is_set():
        left = ticks_diff(end, ticks_ms())
        if left <= 0:
            return False
        await asleep_ms(left if left < _NAP_STEP_MS else _NAP_STEP_MS)
    return True


def lend(name):
    """The module `name` (dotted), imported for one use: it is already out of sys.modules
    and off its package when returned, so it goes once the caller lets go of it, and the
    next user imports it anew. For code a running charger needs only now and then (a
    connect, a configuration change), which from a .mpy file would otherwise hold its
    bytecode on the heap for good; frozen, it costs the module object for the while."""
    mod = __import__(name, None, None, ("_",))
    forget(name)
    return mod


def forget(name):
    """The module `name` (dotted) out of sys.modules and off its package: it goes once
    nothing else holds it (lend; the router's dropped message modules and helpers)."""
    if sys.modules.pop(name, None) is None:
        return
    i = name.rfind(".")
    pkg = sys.modules.get(name[:i]) if i > 0 else None
    if pkg is not None and getattr(pkg, name[i + 1 :], None) is not None:
        delattr(pkg, name[i + 1 :])


def intern_texts(board=False):
    """main.py's step before it imports the launcher (hal/esp32/board.py: board=True, or
    hal/sim.py), once the A/B slot is chosen, so that a slot installed by a firmware update
    brings its own: lib/_texts.py imported and dropped. Its names, the text constants of
    the modules that stay loaded, are interned as qstrs, and each such module loaded from
    a .mpy file after it refers to them instead of holding str copies on the heap (11 KB at
    idle, 32-bit); so are their longer texts (_texts.intern). Only heap is at stake: a
    board without the file, or with one that cannot be loaded, runs the same firmware on
    more heap."""
    try:
        lend("_texts").intern(board)
    except ImportError:
        pass
    except Exception as e:  # noqa: BLE001 - an .mpy of another version, a flash error
        print("W compat: text constants not interned:", repr(e))


# The id of the texts.bin these modules were built with (tools/build.py writes it into the
# .mpy build's compat; 0 in the source and in a frozen image, which keep their texts).
_TEXTS_ID = const(0)


def flash_text(k, *args):
    """Text k of texts.bin beside this module (`% args[0]` when given). A build from .mpy
    files (tools/build.py flash_texts()) leaves the texts a charger says only when something
    is worth a line, its log lines, exception messages and error answers, in that file
    instead of in the modules: a text in a module loaded from a .mpy file is a str object
    and a copy of the text on the heap for as long as the module is loaded (48 bytes for
    "not valid JSON" on the ESP32); read from flash it costs nothing until it is said.
    The file: the build's id (u32), then u16 offsets (entry k is where text k begins, entry
    k + 1 where it ends), then the texts in UTF-8, all little-endian. Never fails its caller
    for the file: with no file, one of another build, or no heap to read it, the text's
    number is said instead and nothing is formatted into it (a caller's
    `raise ValueError(...)` stays a ValueError)."""
    try:
        p = __file__
        with open(p[: p.rfind("/") + 1] + "texts.bin", "rb") as f:
            b = f.read(4)
            if b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 != _TEXTS_ID:
                raise ValueError
            f.seek(4 + 2 * k)
            b = f.read(4)
            a = b[0] | b[1] << 8
            f.seek(a)
            s = str(f.read((b[2] | b[3] << 8) - a), "utf-8")
    except Exception:  # noqa: BLE001 - no file, another build's, a flash error, no heap
        try:
            return "(text %d)" % k
        except Exception:  # noqa: BLE001 - not even that much heap
            return "(text)"
    return s % args[0] if args else s
