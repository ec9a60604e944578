"""A response body for lib/httpd.py streamed from a file in pieces (the web page).

    return 200, File("/lib/web/index.html.gz", "text/html"), {"Content-Encoding": "gzip"}

`File(path, ctype)` raises OSError when the file is missing, so the handler can answer 404
instead. httpd sends the head with `ctype` and `size`, then awaits `stream(writer)`, which
reads the file into one buffer of _CHUNK bytes and writes it piece by piece: serving a
file costs that buffer, never the file's size. Imported on first use (a rare request).
"""

from compat import const

_CHUNK = const(512)


class File:
    def __init__(self, path, ctype):
        import os

        self.size = os.stat(path)[6]
        self.path = path
        self.ctype = ctype

    async def stream(self, writer):
        # One buffer for every piece. MicroPython's stream copies what the socket does not
        # take at once; CPython's transport keeps a view of it until sent, so there drain()
        # must wait for an empty transport buffer before the next read fills it again.
        t = getattr(writer, "transport", None)
        if t is not None:
            t.set_write_buffer_limits(0)
        buf = bytearray(_CHUNK)
        mv = memoryview(buf)
        with open(self.path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                writer.write(mv[:n])
                await writer.drain()  # also lets the charger's tick run between pieces
