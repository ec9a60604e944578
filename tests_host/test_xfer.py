"""lib/xfer.py and lib/ftp.py against real servers on 127.0.0.1, on CPython and MicroPython.

The peers are tools/fileserver.py: stdlib http.server (plain, chunked, TLS with the test CA)
and pyftpdlib (with and without EPSV), plus a socket that accepts and never answers and a
port nobody listens on. The same client script runs on both runtimes (tests_host/scenarios);
each test checks the client's result against the files the servers hold. On MicroPython
the heap is smaller than the firmware file, so a download that held the file would fail.
"""

import hashlib
import os
import socket
import sys
import time

import pytest
from conftest import ROOT
from e2e import free_port
from scenarios import RUNTIMES, run
from tlsutil import make_pki, server_context

sys.path.insert(0, os.path.join(ROOT, "tools"))

import fileserver  # noqa: E402

FW_SIZE = 300_000  # larger than the MicroPython heap of the run
# Still smaller than the file, so a transfer that held it would fail. Every transfer of the
# module runs in one VM (TLS contexts included): at 192k the heap was fragmented enough that a
# 3 KB allocation of a late HTTPS PUT failed once on a loaded machine.
MP_HEAP = "256k"
assert FW_SIZE > 256 * 1024

CLIENT = r'''
import xfer

async def get(cfg, name, url, **kw):
    out = cfg["out"] + "/" + name
    try:
        size, sha = await xfer.download(url, out, **kw)
    except xfer.TransferError as e:
        return {"exc": "TransferError", "msg": e.reason, "left": exists(out)}
    return {"size": size, "sha": sha, "file": out}

async def put(url, source, **kw):
    size, sha = await xfer.upload(url, source, **kw)
    return {"size": size, "sha": sha}

def chunks():
    for i in range(40):
        yield bytes((i,)) * (100 + 37 * i)

async def main(cfg):
    u = cfg["urls"]
    ca = {"cadata": cfg["ca"]}
    wrong = {"cadata": cfg["wrong_ca"]}
    prog = {"calls": 0}

    def progress(done, total):
        prog["calls"] += 1
        prog["last"] = [done, total]

    async def plain_with_progress():
        r = await get(cfg, "plain", u["http"] + "fw.bin", progress=progress)
        r["progress"] = prog
        return r

    rt = cfg["rt"]
    jobs = [
        ("plain", plain_with_progress()),
        ("chunked", get(cfg, "chunked", u["chunked"] + "fw.bin")),
        ("redirect_302", get(cfg, "r302", u["http"] + "r302")),
        ("redirect_307_absolute", get(cfg, "r307", u["http"] + "r307")),
        ("redirect_relative", get(cfg, "rrel", u["http"] + "sub/rel")),
        ("redirect_loop", get(cfg, "loop", u["http"] + "loop")),
        ("not_found", get(cfg, "nf", u["http"] + "missing.bin")),
        ("refused", get(cfg, "refused", u["refused"] + "fw.bin")),
        ("silent", get(cfg, "silent", u["silent"] + "fw.bin", timeout_ms=300)),
        ("bad_scheme", get(cfg, "scheme", "gopher://127.0.0.1/fw.bin")),
        ("https", get(cfg, "https", u["https"] + "fw.bin", tls=ca)),
        ("https_wrong_ca", get(cfg, "https_wrong", u["https"] + "fw.bin", tls=wrong)),
        ("https_no_ca", get(cfg, "https_noca", u["https"] + "fw.bin")),
        ("https_to_http", get(cfg, "down", u["https"] + "down", tls=ca)),
        ("max_bytes_announced", get(cfg, "max1", u["http"] + "fw.bin", max_bytes=1000)),
        ("max_bytes_chunked", get(cfg, "max2", u["chunked"] + "fw.bin", max_bytes=5000)),
        ("no_flash", get(cfg, "huge", u["http"] + "huge")),
        ("ftp", get(cfg, "ftp", u["ftp"] + "fw.bin")),
        ("ftp_pasv", get(cfg, "ftp_pasv", u["ftp_pasv"] + "fw.bin")),
        ("ftp_bad_password", get(cfg, "ftp_pw", u["ftp_badpw"] + "fw.bin")),
        ("ftp_missing", get(cfg, "ftp_nf", u["ftp"] + "missing.bin")),
        ("ftp_max_bytes", get(cfg, "ftp_max", u["ftp"] + "fw.bin", max_bytes=1000)),
        ("put_file", put(u["http"] + "up/%s-file.bin" % rt, cfg["src"])),
        ("put_chunks", put(u["http"] + "up/%s-chunks.bin" % rt, chunks())),
        ("put_https", put(u["https"] + "up/%s-tls.bin" % rt, cfg["src"], tls=ca)),
        ("put_outside", put(u["http"] + "../%s-escape.bin" % rt, cfg["src"])),
        ("stor_file", put(u["ftp"] + "%s-file.bin" % rt, cfg["src"])),
        ("stor_chunks", put(u["ftp_pasv"] + "%s-chunks.bin" % rt, chunks())),
        ("stor_no_dir", put(u["ftp"] + "nodir/%s.bin" % rt, cfg["src"])),
        ("stor_no_source", put(u["ftp"] + "%s-none.bin" % rt, cfg["src"] + ".none")),
    ]
    return await run_all(jobs)
'''


class _Handler(fileserver.FileHandler):
    def do_GET(self):
        if self.path == "/huge":  # announces more than any flash holds, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(10**15))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        super().do_GET()


def _chunks():
    return b"".join(bytes((i,)) * (100 + 37 * i) for i in range(40))


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xfer")
    root = tmp / "root"
    (root / "up").mkdir(parents=True)
    (root / "sub").mkdir()
    fw = os.urandom(FW_SIZE)
    (root / "fw.bin").write_bytes(fw)
    pki = make_pki(tmp)
    http = fileserver.serve_http(root, handler=_Handler)
    base = "http://127.0.0.1:%d" % http.port
    http.httpd.redirects.update({
        "/r302": (302, "/fw.bin"),
        "/r307": (307, base + "/fw.bin"),
        "/sub/rel": (301, "../fw.bin"),
        "/loop": (302, "/loop"),
    })
    servers = {
        "http": http,
        "chunked": fileserver.serve_http(root, chunked=True),
        "https": fileserver.serve_http(
            root, ssl_context=server_context(pki), redirects={"/down": (302, base + "/fw.bin")}
        ),
        "ftp": fileserver.serve_ftp(root, "cp", "s3cr:t"),
        "ftp_pasv": fileserver.serve_ftp(root, "cp", "s3cr:t", epsv=False),
    }
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never answers
    urls = {k: s.url() for k, s in servers.items()}
    # The password has a ":" in it: percent-encoded in the URL.
    urls["ftp"] = servers["ftp"].url(password="s3cr%3At")
    urls["ftp_pasv"] = servers["ftp_pasv"].url(password="s3cr%3At")
    urls["ftp_badpw"] = servers["ftp"].url(password="wrong")
    urls["silent"] = "http://127.0.0.1:%d/" % silent.getsockname()[1]
    urls["refused"] = "http://127.0.0.1:%d/" % free_port()
    p = {"tmp": tmp, "root": root, "fw": fw, "pki": pki, "urls": urls, "servers": servers}
    yield p
    silent.close()
    for s in servers.values():
        s.stop()


_RESULTS = {}


@pytest.fixture(scope="module", params=RUNTIMES)
def run_(request, peers):
    rt = request.param
    if rt not in _RESULTS:
        out = peers["tmp"] / ("out-" + rt)
        out.mkdir()
        cfg = {
            "rt": rt,
            "urls": peers["urls"],
            "out": str(out),
            "src": str(peers["root"] / "fw.bin"),
            "ca": peers["pki"]["ca_pem"],
            "wrong_ca": peers["pki"]["wrong_ca_pem"],
        }
        _RESULTS[rt] = run(CLIENT, cfg, rt, peers["tmp"], heap=MP_HEAP)
    return _RESULTS[rt], rt


def _same(res, data):
    assert "exc" not in res, res
    assert res["size"] == len(data)
    assert res["sha"] == hashlib.sha256(data).hexdigest()
    with open(res["file"], "rb") as f:
        assert f.read() == data


def _refused(res, words, left=False):
    assert res.get("exc") == "TransferError", res
    assert words in res["msg"], res
    if "left" in res:
        assert res["left"] is left  # a failed download leaves no partial file


def _uploaded(peers, server, rel, timeout=5.0):
    """The server's record of an upload (pyftpdlib records a moment after its 226)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in peers["servers"][server].uploads:
            if r[0] == rel:
                return r
        time.sleep(0.02)
    return None


def test_http_get_streams_the_file_with_its_sha256_and_progress(run_, peers):
    res, _ = run_
    _same(res["plain"], peers["fw"])
    prog = res["plain"]["progress"]
    assert prog["last"] == [FW_SIZE, FW_SIZE] and prog["calls"] >= FW_SIZE // 1024


def test_http_get_chunked_transfer_encoding(run_, peers):
    res, _ = run_
    _same(res["chunked"], peers["fw"])


def test_http_redirects_followed_and_bounded(run_, peers):
    res, _ = run_
    for name in ("redirect_302", "redirect_307_absolute", "redirect_relative"):
        _same(res[name], peers["fw"])
    _refused(res["redirect_loop"], "redirects")


def test_http_error_status_is_a_transfer_error(run_):
    res, _ = run_
    _refused(res["not_found"], "HTTP 404")


def test_connection_refused_and_silent_server_are_transfer_errors(run_):
    res, _ = run_
    _refused(res["refused"], "ECONNREFUSED")
    _refused(res["silent"], "timed out")
    _refused(res["bad_scheme"], "unsupported URL")


def test_https_verified_with_the_ocpp_tls_settings(run_, peers):
    res, _ = run_
    _same(res["https"], peers["fw"])
    assert res["https_wrong_ca"]["exc"] == "TransferError"
    assert res["https_wrong_ca"]["left"] is False
    _refused(res["https_no_ca"], "no CA")  # never downloads unverified


def test_https_never_redirects_to_plain_http(run_):
    res, _ = run_
    _refused(res["https_to_http"], "refused")


def test_size_limits_refuse_before_or_while_writing(run_):
    res, _ = run_
    _refused(res["max_bytes_announced"], "larger than the 1000 bytes")
    _refused(res["max_bytes_chunked"], "larger than the 5000 bytes")
    _refused(res["no_flash"], "not enough flash")


def test_ftp_retr_with_user_password_passive_epsv_and_pasv(run_, peers):
    res, _ = run_
    _same(res["ftp"], peers["fw"])
    _same(res["ftp_pasv"], peers["fw"])  # the server without EPSV: PASV


def test_ftp_errors_and_password_kept_out_of_messages(run_):
    res, _ = run_
    _refused(res["ftp_bad_password"], "login")
    assert "wrong" not in res["ftp_bad_password"]["msg"]
    _refused(res["ftp_missing"], "550")
    _refused(res["ftp_max_bytes"], "larger than the 1000 bytes")  # from SIZE, before RETR


def test_http_put_file_and_chunked_iterable_arrive_intact(run_, peers):
    res, rt = run_
    fw = peers["fw"]
    sha = hashlib.sha256(fw).hexdigest()
    assert res["put_file"] == {"size": FW_SIZE, "sha": sha}
    assert res["put_https"] == {"size": FW_SIZE, "sha": sha}
    assert (peers["root"] / "up" / (rt + "-file.bin")).read_bytes() == fw
    assert (peers["root"] / "up" / (rt + "-tls.bin")).read_bytes() == fw
    data = _chunks()
    assert res["put_chunks"] == {"size": len(data), "sha": hashlib.sha256(data).hexdigest()}
    assert (peers["root"] / "up" / (rt + "-chunks.bin")).read_bytes() == data
    assert _uploaded(peers, "http", "up/%s-chunks.bin" % rt)[2] == res["put_chunks"]["sha"]


def test_http_put_refused_by_server_is_a_transfer_error(run_, peers):
    res, rt = run_
    _refused(res["put_outside"], "HTTP 403")
    assert not (peers["tmp"] / (rt + "-escape.bin")).exists()


def test_ftp_stor_file_and_iterable_arrive_intact(run_, peers):
    res, rt = run_
    fw = peers["fw"]
    assert res["stor_file"] == {"size": FW_SIZE, "sha": hashlib.sha256(fw).hexdigest()}
    assert _uploaded(peers, "ftp", rt + "-file.bin")[1:] == (FW_SIZE, res["stor_file"]["sha"])
    assert (peers["root"] / (rt + "-file.bin")).read_bytes() == fw
    data = _chunks()
    assert res["stor_chunks"]["sha"] == hashlib.sha256(data).hexdigest()
    assert _uploaded(peers, "ftp_pasv", rt + "-chunks.bin") is not None
    assert (peers["root"] / (rt + "-chunks.bin")).read_bytes() == data
    _refused(res["stor_no_dir"], "550")
    _refused(res["stor_no_source"], "no such file")
    assert not (peers["root"] / (rt + "-none.bin")).exists()  # refused before STOR


def test_split_url():
    import xfer

    assert xfer.split_url("ftp://u%40x:p%3Aw@h:2121/d/f.bin") == (
        "ftp", "u@x", "p:w", "h", 2121, "/d/f.bin")
    assert xfer.split_url("HTTPS://h") == ("https", None, None, "h", 443, "/")
    assert xfer.split_url("http://[::1]:8080?x=1") == ("http", None, None, "::1", 8080, "/?x=1")
    assert xfer.split_url("http://a:b@h/p#frag") == ("http", "a", "b", "h", 80, "/p")
    for bad in ("gopher://h/x", "http://:80/x", "http://h:port/x", "h/x"):
        with pytest.raises(xfer.TransferError):
            xfer.split_url(bad)
