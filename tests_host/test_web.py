"""The web page at GET /: built on the host (tools/webpage.py), streamed from flash in
pieces (lib/httpfile.py), behind the API password. The browser test is
test_web_browser.py."""

import asyncio
import base64
import gzip
import os
import socket
import sys

import pytest
from conftest import MICROPYPATH, ROOT, micropython_binary, mp_env
from e2e import Firmware, web_page

import httpd
import httpfile
from firmware.api import Api
from firmware.config import Config

sys.path.insert(0, os.path.join(ROOT, "tools"))

import webpage  # noqa: E402


def _source():
    with open(webpage.SOURCE, encoding="utf-8") as f:
        return f.read()


def _raw_get(port, path, headers=""):
    """(status, {lower-case header: value}, body bytes) of one GET over a plain socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, headers)).encode())
        with s.makefile("rb") as f:
            data = f.read()  # to the end: the server closes after the answer
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    out = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        out[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), out, body


# -- the build ---------------------------------------------------------------------------


def test_page_build_is_small_deterministic_and_complete(tmp_path):
    a, b = str(tmp_path / "a.gz"), str(tmp_path / "b.gz")
    size = webpage.build(a)
    webpage.build(b)
    with open(a, "rb") as f:
        data = f.read()
    with open(b, "rb") as f:
        assert f.read() == data  # no time stamp, no name: the same source, the same bytes
    assert size == len(data) < 6 * 1024
    html = gzip.decompress(data).decode()
    assert html == webpage.minify(_source())
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for api in ("/api/status", "/api/set?", "/api/sim"):
        assert api in html


def test_minify_drops_comments_and_indentation_but_keeps_code():
    src = (
        "<!DOCTYPE html>\n<!--\n  about\n-->\n<p>x</p>\n<script>\n"
        "  // a comment\n  const u = \"wss://host/ocpp\"; // trailing stays\n\n"
        "  /* block */\n  f();\n</script>\n"
    )
    assert webpage.minify(src) == (
        "<!DOCTYPE html>\n<p>x</p>\n<script>\n"
        "const u = \"wss://host/ocpp\"; // trailing stays\nf();\n</script>\n"
    )


def test_deploy_copies_the_page_as_data_not_as_mpy(tmp_path):
    import build

    assert ("web/index.html", "lib/web/index.html.gz") in build.data_files()
    assert not any(src.startswith("web/") for src, _ in build.board_files())
    assert "lib/web/index.html.gz" in build.deploy_files()
    assert "lib/firmware/api.mpy" in build.deploy_files()
    assert build.deploy_files(frozen=True) == ["boot.py", "main.py", "lib/web/index.html.gz"]
    out = str(tmp_path / "board")
    build.build_data(out)
    with open(os.path.join(out, "lib", "web", "index.html.gz"), "rb") as f:
        assert gzip.decompress(f.read()).decode() == webpage.minify(_source())


def test_make_sim_builds_the_page_and_points_the_firmware_at_it(tmp_path):
    import sim

    env = sim.firmware_env(str(tmp_path), 8080)
    with open(env["WB_PAGE"], "rb") as f:
        assert gzip.decompress(f.read()).decode() == webpage.minify(_source())


# -- serving -----------------------------------------------------------------------------


def test_missing_page_is_404_json_and_other_paths_stay_json(tmp_path):
    api = Api(Config(str(tmp_path)), page=str(tmp_path / "none.gz"))
    assert api.handle("/", {}, {}) == (404, {"error": "no web page on flash"})
    assert Api(Config(str(tmp_path))).handle("/", {}, {})[0] == 404  # no page configured
    page = tmp_path / "p.gz"
    page.write_bytes(b"x")
    api = Api(Config(str(tmp_path)), page=str(page))
    status, body, headers = api.handle("/", {}, {})
    assert status == 200 and isinstance(body, httpfile.File) and body.size == 1
    assert headers["Content-Encoding"] == "gzip"
    assert api.handle("/index.html", {}, {}) == (404, {"error": "not found"})


@pytest.mark.e2e
def test_firmware_serves_the_page_gzipped_and_keeps_the_api_json(tmp_path):
    fw = Firmware(tmp_path).start()
    try:
        status, headers, body = _raw_get(fw.api_port, "/")
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["content-encoding"] == "gzip"
        assert headers["connection"] == "close"
        assert int(headers["content-length"]) == len(body) == os.path.getsize(web_page())
        assert gzip.decompress(body).decode() == webpage.minify(_source())
        for path in ("/index.html", "/api", "/favicon.ico"):
            status, headers, body = _raw_get(fw.api_port, path)
            assert status == 404 and headers["content-type"] == "application/json", path
    finally:
        fw.stop()


@pytest.mark.e2e
def test_page_needs_the_api_password_once_set(tmp_path):
    fw = Firmware(tmp_path).start()
    try:
        assert fw.set(apw="s3cret")[0] == 200
        status, headers, body = _raw_get(fw.api_port, "/")
        assert status == 401 and headers["content-type"] == "application/json"
        assert headers["www-authenticate"].startswith("Basic")
        auth = "Authorization: Basic %s\r\n" % base64.b64encode(b"admin:s3cret").decode()
        status, headers, body = _raw_get(fw.api_port, "/", auth)
        assert status == 200 and gzip.decompress(body).startswith(b"<!DOCTYPE html>")
    finally:
        fw.stop()


def test_page_is_streamed_in_pieces_on_micropython(tmp_path):
    """A 64 KiB file goes out whole while the server holds about a kilobyte more than for
    a JSON answer: it is read in pieces, never as a whole."""
    big = tmp_path / "big.gz"
    big.write_bytes(os.urandom(64 * 1024))
    env = mp_env({"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH})
    r = webpage.serve_heap(micropython_binary(), env, str(big), rounds=2)
    assert r["page_body"] == big.read_bytes()
    extra = r["page"]["live"] - r["json"]["live"]
    assert extra < 2048, r
    assert r["page"]["kept"] < 1024, r  # nothing of it stays


def test_file_body_survives_a_slow_reader_on_cpython(tmp_path):
    """The one buffer is reused for every piece: a reader slower than the server must still
    get every byte as on disk (CPython's transport keeps views of written data)."""
    data = os.urandom(2 * 1024 * 1024)
    path = tmp_path / "f.bin"
    path.write_bytes(data)

    def handler(p, q, h):
        return 200, httpfile.File(str(path), "application/octet-stream")

    async def main():
        srv = httpd.Server(handler, timeout_ms=20000)
        await srv.start("127.0.0.1", 0)
        try:
            r, w = await asyncio.open_connection("127.0.0.1", srv.port, limit=1024)
            w.write(b"GET / HTTP/1.1\r\n\r\n")
            await w.drain()
            got = b""
            while True:
                chunk = await r.read(64 * 1024)
                if not chunk:
                    break
                got += chunk
                await asyncio.sleep(0.001)
            w.close()
            return got
        finally:
            await srv.close()

    got = asyncio.run(asyncio.wait_for(main(), 60))
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(data) in head
    assert b"Content-Encoding" not in head
    assert body == data
