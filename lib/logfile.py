"""A bounded log on flash for GetDiagnostics: warnings and errors (not every info line:
flash wear) appended to `<data>/log.txt` as `<unix s> <level> <tag>: <text>`; when it
passes MAX_BYTES it becomes `log.1.txt` (the older one is dropped), so at most twice
MAX_BYTES are kept. The time is the wall clock (0 while it is not set yet), so the lines
keep their date across reboots and GetDiagnostics startTime/stopTime can select them.

    logfile.attach(data_dir, now)      log.add_sink; now() -> unix s or 0
    for t, line in logfile.lines(data_dir, start, stop): ...
"""

import os

MAX_BYTES = 16384
NAME = "log.txt"
OLD = "log.1.txt"
_LEVELS = "WE"


def attach(data_dir, now):
    import log

    base = data_dir.rstrip("/") + "/"

    def sink(ch, tag, text):
        if ch not in _LEVELS:
            return
        path = base + NAME
        try:
            size = os.stat(path)[6]
        except OSError:
            size = 0
        if size > MAX_BYTES:
            for fn, args in ((os.remove, (base + OLD,)), (os.rename, (path, base + OLD))):
                try:
                    fn(*args)
                except OSError:
                    pass
        with open(path, "a") as f:
            f.write("%d %s %s: %s\n" % (now(), ch, tag, text.replace("\n", " ")[:200]))

    log.add_sink(sink)
    return sink


def lines(data_dir, start=None, stop=None):
    """(unix s, line) of the kept log in order, those of [start, stop] (None: open);
    lines from before the clock was set (time 0) are always included."""
    base = data_dir.rstrip("/") + "/"
    for name in (OLD, NAME):
        try:
            f = open(base + name)
        except OSError:
            continue
        with f:
            for line in f:
                try:
                    t = int(line.split(" ", 1)[0])
                except ValueError:
                    continue
                if t and ((start is not None and t < start) or (stop is not None and t > stop)):
                    continue
                yield t, line.rstrip("\n")
