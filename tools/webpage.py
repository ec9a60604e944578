"""Build the charger's web page (host side): web/index.html -> index.html.gz.

    python tools/webpage.py [OUT]     default build/web/index.html.gz; prints the sizes
    python tools/webpage.py --heap    what serving it costs on the MicroPython unix port

The page is one HTML file with its CSS and JS inline. The build strips what costs bytes but
not meaning (indentation, blank lines, comments on lines of their own), keeping the line
breaks so that JS semantics never change, then gzips it deterministically (no name, no
time stamp). The firmware streams the .gz from flash as it is, with Content-Encoding: gzip
(lib/httpfile.py), so the board never decompresses or holds it.

Where it goes: `make deploy` copies it to /lib/web/index.html.gz on the board
(tools/build.py data_files); the simulator reads build/web/index.html.gz (WB_PAGE).
"""

import gzip
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "web", "index.html")
DEFAULT_OUT = os.path.join(ROOT, "build", "web", "index.html.gz")


def minify(text):
    """Drop indentation, blank lines, HTML comments and whole-line JS/CSS comments."""
    out = []
    in_comment = False
    for line in text.splitlines():
        s = line.strip()
        if in_comment:
            if "-->" in s:
                in_comment = False
            continue
        if s.startswith("<!--") and not s.startswith("<!DOCTYPE"):
            in_comment = "-->" not in s
            continue
        if not s or s.startswith("//") or (s.startswith("/*") and s.endswith("*/")):
            continue
        out.append(s)
    return "\n".join(out) + "\n"


def compress(data):
    """gzip at level 9 with no file name and time stamp 0: the same input, the same bytes."""
    import io

    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def build(out=DEFAULT_OUT, source=SOURCE):
    """Write the gzipped page to `out` atomically (tests build it in parallel); its size."""
    with open(source, encoding="utf-8") as f:
        data = compress(minify(f.read()).encode("utf-8"))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    tmp = "%s.%d.tmp" % (out, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    return len(data)


# Runs on MicroPython: lib/httpd.py and lib/httpfile.py serving `PATH` at / and a small JSON
# answer elsewhere.
# Requests alternate between two measurements: "alloc", everything the request allocates
# (the collector off: garbage included), and "live", the most it holds at once (a collection
# before every write to the socket). "kept" is what a collection leaves afterwards.
_SERVE = """
import asyncio, gc, httpd, httpfile
PATH = %r
N = [0, 0]
class W:
    def __init__(self, w):
        self.w = w
    def write(self, b):
        gc.collect()
        N[1] = max(N[1], gc.mem_alloc())
        self.w.write(b)
    def drain(self):
        return self.w.drain()
    def close(self):
        self.w.close()
    def wait_closed(self):
        return self.w.wait_closed()
class S(httpd.Server):
    async def _serve(self, r, w):
        live = N[0] %% 2
        N[0] += 1
        gc.collect()
        a0 = N[1] = gc.mem_alloc()
        if live:
            w = W(w)
        else:
            gc.disable()
        try:
            await super()._serve(r, w)
        finally:
            a1 = N[1] if live else gc.mem_alloc()
            gc.enable()
            gc.collect()
            print("served", "live" if live else "alloc", a1 - a0, gc.mem_alloc() - a0)
def h(path, q, hd):
    if path == "/":
        return 200, httpfile.File(PATH, "text/html"), {"Content-Encoding": "gzip"}
    return 200, {"car": 2, "amp": 16, "nrg": [230.0] * 16}
async def main():
    await S(h).start("127.0.0.1", %d)
    print("ready")
    await asyncio.sleep(60)
asyncio.run(main())
"""


def serve_heap(micropython, env, path, rounds=3):
    """Serve `path` from lib/httpd.py on MicroPython (binary `micropython`, environment
    `env` with its MICROPYPATH) and fetch it and a JSON answer `rounds` times each way.

    Returns, in bytes, for the last round: {"page": {"alloc": a, "live": l, "kept": k},
    "json": {...}, "page_body": the bytes received}: `alloc` everything serving allocated
    (garbage included), `live` the most it held at once, `kept` what stays afterwards."""
    import socket
    import subprocess
    import urllib.request

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([micropython, "-c", _SERVE % (path, port)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in p.stdout:
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError("the server did not start")
        out = {}
        for name, url in (("json", "/api/status"), ("page", "/")):
            fig = out[name] = {}
            for _ in range(rounds * 2):
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, url)) as r:
                    out[name + "_body"] = r.read()
                line = p.stdout.readline().split()
                while line[:1] != ["served"]:
                    if p.poll() is not None:
                        raise RuntimeError("the server stopped")
                    line = p.stdout.readline().split()
                fig[line[1]] = int(line[2])
                fig["kept"] = int(line[3])
        return out
    finally:
        p.kill()
        p.wait(5)
        p.stdout.close()


def main():
    if sys.argv[1:] == ["--heap"]:
        import shutil

        size = build()
        exe = shutil.which("micropython", path=os.path.dirname(sys.executable))
        env = dict(os.environ)
        env["MICROPYPATH"] = os.pathsep.join([".frozen", os.path.join(ROOT, "lib")])
        r = serve_heap(exe, env, DEFAULT_OUT)
        print("web page: %d bytes gzipped" % size)
        for name in ("page", "json"):
            f = r[name]
            print("serving %-4s on MicroPython: holds at most %5d bytes, allocates %5d "
                  "(garbage included), keeps %d" % (name, f["live"], f["alloc"], f["kept"]))
        return
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    size = build(out)
    with open(SOURCE, encoding="utf-8") as f:
        text = f.read()
    print("web page: %d bytes source, %d minified, %d gzipped -> %s"
          % (len(text.encode()), len(minify(text).encode()), size, out))


if __name__ == "__main__":
    main()
