"""Minimal logging: a line per event on stdout, and the last error kept for the API.

`last_error` / `last_error_ms` back the `ocpple` / `ocpplea` status keys.
"""

from compat import uptime_ms

last_error = None
last_error_ms = None
oom = 0  # MemoryErrors survived (the `oom` status key): work refused, never data invented
on_memory = None  # fn() at the first MemoryError after boot (the security event)
_sinks = []
level = 1  # 0 debug, 1 info, 2 warning, 3 error


def add_sink(fn):
    """fn(level_char, tag, text) is called for every emitted line (remote logging, tests)."""
    _sinks.append(fn)


def remove_sink(fn):
    if fn in _sinks:
        _sinks.remove(fn)


def _emit(lv, ch, tag, args):
    if lv < level:
        return None
    text = " ".join(str(a) for a in args)
    print(ch, tag + ":", text)
    for fn in _sinks:
        try:
            fn(ch, tag, text)
        except Exception:  # a broken sink must not break the caller
            pass
    return text


def debug(tag, *args):
    _emit(0, "D", tag, args)


def info(tag, *args):
    _emit(1, "I", tag, args)


def warning(tag, *args):
    _emit(2, "W", tag, args)


def memory(tag, *args):
    """A MemoryError that was caught: counted, logged as an error (so `ocpple` shows it)."""
    global oom, on_memory
    oom += 1
    error(tag, "out of memory:", *args)
    fn, on_memory = on_memory, None  # once per boot: a shortage must not flood the flash
    if fn is not None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - no room even for that: the count stands
            pass


def failed(tag, what, e):
    """A task step that raised: a MemoryError is counted as one, anything else an error."""
    if isinstance(e, MemoryError):
        memory(tag, what)
    else:
        error(tag, what, repr(e))


def error(tag, *args):
    global last_error, last_error_ms
    text = _emit(3, "E", tag, args)
    last_error = tag + ": " + (text if text is not None else " ".join(str(a) for a in args))
    last_error_ms = uptime_ms()
