"""File servers for firmware downloads and diagnostics uploads (host side: demo central
system, tests). Each runs in a daemon thread on its own port.

    http = serve_http(root)                      GET files under root, PUT stores under root
    ftp = serve_ftp(root, "cp", "secret")        pyftpdlib: RETR/STOR/SIZE, passive only
    url = http.url("fw.bundle")                  http://127.0.0.1:PORT/fw.bundle
    url = ftp.url("diag/cp1.log")                ftp://cp:secret@127.0.0.1:PORT/diag/cp1.log
    http.uploads / ftp.uploads                   [(path relative to root, size, sha256)]
    http.stop(); ftp.stop()

serve_http(..., ssl_context=ctx) serves https; chunked=True answers every GET with chunked
transfer encoding; redirects={"/old": (302, "/new")} answers those paths with a redirect;
throttle=N sends GET bodies at about N bytes/s (1 KiB pieces: a slow link, for power-cut
tests), `http.httpd.sent` counting the body bytes sent so far.
A path outside root is refused (403). PUT takes a Content-Length or a chunked body, streamed
to `<file>.part` and renamed into place once complete.

    python tools/fileserver.py ROOT [--http-port 8000] [--ftp-port 2121] [--user cp
                                     --password secret]
"""

import argparse
import hashlib
import http.server
import logging
import os
import threading
import time
import warnings

_BLOCK = 16384


def _local(root, urlpath):
    """File system path for a URL path under root, or None when it escapes root."""
    from urllib.parse import unquote

    rel = unquote(urlpath.split("?", 1)[0]).lstrip("/")
    full = os.path.realpath(os.path.join(root, rel))
    base = os.path.realpath(root)
    if full != base and not full.startswith(base + os.sep):
        return None
    return full


class FileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked answers need it; every answer closes anyway

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            super().log_message(fmt, *args)

    def _plain(self, code, text):
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        srv = self.server
        self.server.requests.append(("GET", self.path))
        redirect = srv.redirects.get(self.path.split("?", 1)[0])
        if redirect:
            self.send_response(redirect[0])
            self.send_header("Location", redirect[1])
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        path = _local(srv.root, self.path)
        if path is None:
            return self._plain(403, "outside the served directory")
        if not os.path.isfile(path):
            return self._plain(404, "not found")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if srv.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(os.path.getsize(path)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if self.command == "HEAD":
            return
        size = 1024 if srv.throttle else _BLOCK if not srv.chunked else 777  # odd chunks
        try:
            self._send(path, size)
        except (BrokenPipeError, ConnectionResetError):  # the client went away (power cut)
            return
        if srv.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _send(self, path, size):
        srv = self.server
        with open(path, "rb") as f:
            while True:
                block = f.read(size)
                if not block:
                    break
                if srv.chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                else:
                    self.wfile.write(block)
                if srv.throttle:
                    self.wfile.flush()
                    time.sleep(len(block) / srv.throttle)
                srv.sent += len(block)

    do_HEAD = do_GET

    def _blocks(self, n):
        while n:
            block = self.rfile.read(min(n, _BLOCK))
            if not block:
                raise ConnectionError("body truncated")
            n -= len(block)
            yield block

    def _body(self):
        """The request body as an iterator of blocks (Content-Length or chunked)."""
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._blocks(int(self.headers.get("Content-Length", "0")))
            return
        while True:
            n = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if n == 0:
                while self.rfile.readline().strip():
                    pass
                return
            yield from self._blocks(n)
            self.rfile.readline()

    def do_PUT(self):
        srv = self.server
        srv.requests.append(("PUT", self.path))
        path = _local(srv.root, self.path)
        if path is None or os.path.isdir(path):
            for _ in self._body():  # read it first: closing on unread data resets the link
                pass
            return self._plain(403, "not writable")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        h = hashlib.sha256()
        size = 0
        with open(path + ".part", "wb") as f:
            for block in self._body():
                f.write(block)
                h.update(block)
                size += len(block)
        os.replace(path + ".part", path)
        rel = os.path.relpath(path, srv.root).replace(os.sep, "/")
        srv.uploads.append((rel, size, h.hexdigest()))
        self._plain(201, "stored %d bytes" % size)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Server:
    """A running file server: `port`, `url(path)`, `uploads`, `stop()`."""

    def __init__(self, scheme, port, stop, uploads, user=None, password=None):
        self.scheme = scheme
        self.port = port
        self.uploads = uploads
        self._stop = stop
        self.user = user
        self.password = password

    def url(self, path="", host="127.0.0.1", user=None, password=None):
        user = self.user if user is None else user
        password = self.password if password is None else password
        cred = "%s:%s@" % (user, password) if user else ""
        return "%s://%s%s:%d/%s" % (self.scheme, cred, host, self.port, path.lstrip("/"))

    def stop(self):
        self._stop()


def serve_http(root, host="127.0.0.1", port=0, ssl_context=None, chunked=False,
               redirects=None, handler=FileHandler, quiet=True, throttle=None):
    """Start the HTTP(S) file server for `root` in a thread -> Server."""
    srv = _HTTPServer((host, port), handler)
    if ssl_context is not None:
        srv.socket = ssl_context.wrap_socket(srv.socket, server_side=True)
    srv.root = str(root)
    srv.chunked = chunked
    srv.throttle = throttle
    srv.sent = 0
    srv.redirects = dict(redirects or {})
    srv.quiet = quiet
    srv.uploads = []
    srv.requests = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()

    def stop():
        srv.shutdown()
        srv.server_close()

    s = Server("https" if ssl_context else "http", srv.server_address[1], stop, srv.uploads)
    s.httpd = srv
    return s


def serve_ftp(root, user="cp", password="secret", host="127.0.0.1", port=0, epsv=True,
              quiet=True):
    """Start a pyftpdlib FTP server for `root` (one user, read/write) in a thread -> Server.
    epsv=False: a server that does not know EPSV (clients must fall back to PASV)."""
    with warnings.catch_warnings():  # pyftpdlib on Python 3.11 uses asyncore, deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

    root = str(root)
    uploads = []
    auth = DummyAuthorizer()
    auth.add_user(user, password, root, perm="elradfmwMT")

    class Handler(FTPHandler):
        authorizer = auth
        banner = "wallbox test FTP"

        def on_file_received(self, file):
            h = hashlib.sha256()
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(_BLOCK), b""):
                    h.update(block)
            rel = os.path.relpath(file, root).replace(os.sep, "/")
            uploads.append((rel, os.path.getsize(file), h.hexdigest()))

    if not epsv:
        Handler.proto_cmds = {k: v for k, v in FTPHandler.proto_cmds.items() if k != "EPSV"}
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING if quiet else logging.INFO)
    srv = FTPServer((host, port), Handler, ioloop=IOLoop())  # own loop: one per thread
    port = srv.address[1]
    done = threading.Event()

    def loop():
        while not done.is_set():
            srv.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        srv.close_all()

    t = threading.Thread(target=loop, daemon=True)
    t.start()

    def stop():
        done.set()
        t.join(5)

    return Server("ftp", port, stop, uploads, user, password)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--ftp-port", type=int, default=2121)
    ap.add_argument("--user", default="cp")
    ap.add_argument("--password", default="secret")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.makedirs(a.root, exist_ok=True)
    h = serve_http(a.root, a.host, a.http_port, quiet=False)
    f = serve_ftp(a.root, a.user, a.password, a.host, a.ftp_port, quiet=False)
    print("serving", a.root, "at", h.url(host=a.host), "and", f.url(host=a.host))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        h.stop()
        f.stop()


if __name__ == "__main__":
    main()
