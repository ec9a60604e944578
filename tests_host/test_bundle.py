"""lib/bundle.py: the streaming unpacker of release bundles, on CPython and MicroPython.

Bundles are written by tools/release.py's write_bundle (the same code `make release` uses),
then damaged on purpose: every damage must end in BundleError with a clear reason, and no
file may land outside the destination directory.
"""

import hashlib
import json
import os
import sys

import pytest
from conftest import ROOT
from scenarios import RUNTIMES, run

sys.path.insert(0, os.path.join(ROOT, "tools"))

import release  # noqa: E402

FILES = {
    "boot.py": b"# boot\n",
    "main.py": b"print('main')\n" * 50,
    "lib/version.mpy": b"M\x06\x00\x1f" + b"v" * 45,
    "lib/firmware/app.mpy": os.urandom(5000),
    "lib/firmware/ops/empty.mpy": b"",
}
ORDER = sorted(FILES)

CLIENT = r'''
import bundle

async def unpack(cfg, name):
    dest = cfg["out"] + "/" + name
    try:
        r = await bundle.unpack(cfg["bundles"][name], dest)
    except bundle.BundleError as e:
        return {"exc": "BundleError", "msg": e.reason, "escaped": exists(cfg["out"] + "/x")}
    return {"ok": list(r), "dest": dest}

async def info(cfg, name):
    return list(bundle.info(cfg["bundles"][name]))

async def main(cfg):
    jobs = [(n, unpack(cfg, n)) for n in sorted(cfg["bundles"])]
    jobs.append(("info", info(cfg, "good")))
    jobs.append(("info_bad", info(cfg, "dotdot")))
    return await run_all(jobs)
'''


def _write(tmp, name, version="1.2.3", files=None, entries=None, mutate=None):
    """A bundle of FILES (or files: [(path, bytes)]); entries: edit the manifest entries;
    mutate(data) -> data: damage the finished bundle."""
    src = tmp / ("src-" + name)
    pairs = []
    for i, (dst, data) in enumerate(files or [(p, FILES[p]) for p in ORDER]):
        local = src / ("%d.bin" % i)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        pairs.append((dst, str(local)))
    path = tmp / (name + ".bundle")
    release.write_bundle(str(path), version, pairs)
    data = path.read_bytes()
    if entries is not None:
        head, body = data.split(b"\n", 1)
        m = json.loads(head)
        entries(m["files"])
        data = json.dumps(m, separators=(",", ":")).encode() + b"\n" + body
    if mutate is not None:
        data = mutate(data)
    path.write_bytes(data)
    return str(path)


def _flip(data):
    """Flip one byte inside lib/firmware/app.mpy's data."""
    head = data.index(b"\n") + 1
    off = head + sum(len(FILES[p]) for p in ORDER[: ORDER.index("lib/firmware/app.mpy")])
    b = bytearray(data)
    b[off + 1234] ^= 0x01
    return bytes(b)


def _set(key, value, index=0):
    def edit(entries):
        entries[index][key] = value

    return edit


def _loose_json(data):
    head, body = data.split(b"\n", 1)
    return json.dumps(json.loads(head), indent=None).encode() + b"  \n" + body  # ", " and ": "


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    small = [("a.bin", b"a" * 10), ("b.bin", b"b" * 10)]
    return tmp, {
        "good": _write(tmp, "good"),
        "loose_json": _write(tmp, "loose_json", mutate=_loose_json),
        "flipped": _write(tmp, "flipped", mutate=_flip),
        "truncated": _write(tmp, "truncated", mutate=lambda d: d[:-100]),
        "truncated_manifest": _write(tmp, "truncated_manifest", mutate=lambda d: d[:200]),
        "trailing": _write(tmp, "trailing", mutate=lambda d: d + b"X"),
        "dotdot": _write(tmp, "dotdot", files=small, entries=_set("path", "../x", 1)),
        "absolute": _write(tmp, "absolute", files=small, entries=_set("path", "/x", 1)),
        "empty_part": _write(tmp, "empty_part", files=small, entries=_set("path", "lib//x")),
        "size_bigger": _write(tmp, "size_bigger", files=small, entries=_set("size", 11, 1)),
        "size_smaller": _write(tmp, "size_smaller", files=small, entries=_set("size", 9)),
        "bad_sha": _write(tmp, "bad_sha", files=small, entries=_set("sha256", "00" * 31)),
        "no_flash": _write(tmp, "no_flash", files=small, entries=_set("size", 10**15)),
        "not_json": _write(tmp, "not_json", mutate=lambda d: d.replace(b':"boot', b':boot', 1)),
        "not_manifest": _write(tmp, "not_manifest", mutate=lambda d: b"{nope\n" + d),
        "no_newline": _write(tmp, "no_newline", mutate=lambda d: d.split(b"\n")[0]),
        "format2": _write(tmp, "format2", mutate=lambda d: d.replace(b":1,", b":2,", 1)),
    }


_RESULTS = {}


@pytest.fixture(scope="module", params=RUNTIMES)
def res(request, bundles):
    rt = request.param
    tmp, paths = bundles
    if rt not in _RESULTS:
        out = tmp / ("out-" + rt)
        out.mkdir()
        cfg = {"bundles": paths, "out": str(out)}
        _RESULTS[rt] = run(CLIENT, cfg, rt, tmp, heap="256k")
    return _RESULTS[rt]


def _tree(dest):
    out = {}
    for dirpath, _, names in os.walk(dest):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, dest).replace(os.sep, "/")] = open(p, "rb").read()
    return out


def _err(r, words):
    assert r.get("exc") == "BundleError", r
    assert words in r["msg"], r
    assert r["escaped"] is False


def test_unpack_writes_every_file_identical(res):
    total = sum(len(d) for d in FILES.values())
    assert res["good"]["ok"] == ["1.2.3", len(FILES), total]
    assert _tree(res["good"]["dest"]) == FILES
    assert res["loose_json"]["ok"] == ["1.2.3", len(FILES), total]  # any JSON spacing
    assert res["info"] == ["1.2.3", len(FILES), total]


def test_flipped_byte_is_a_sha256_mismatch_and_the_file_is_removed(res):
    r = res["flipped"]
    _err(r, "sha256 mismatch in lib/firmware/app.mpy")
    dest = os.path.join(os.path.dirname(res["good"]["dest"]), "flipped")
    assert "lib/firmware/app.mpy" not in _tree(dest)


def test_truncated_bundle_refused(res):
    _err(res["truncated"], "truncated")
    _err(res["truncated_manifest"], "manifest")
    _err(res["no_newline"], "no manifest line")
    _err(res["size_bigger"], "truncated in b.bin")


def test_trailing_bytes_and_wrong_sizes_refused(res):
    _err(res["trailing"], "trailing bytes")
    _err(res["size_smaller"], "sha256 mismatch in a.bin")


@pytest.mark.parametrize("name,path", [("dotdot", "../x"), ("absolute", "/x"),
                                       ("empty_part", "lib//x")])
def test_path_escaping_the_destination_refused_before_anything_is_written(res, name, path):
    r = res[name]
    _err(r, "bad path in manifest: %r" % path)
    dest = os.path.join(os.path.dirname(res["good"]["dest"]), name)
    assert not os.path.exists(dest) or _tree(dest) == {}  # the manifest is checked first
    assert res["info_bad"]["exc"] == "BundleError"


def test_bad_manifest_refused(res):
    _err(res["bad_sha"], "bad sha256 for a.bin")
    _err(res["no_flash"], "not enough flash")
    _err(res["not_json"], "not JSON")
    _err(res["not_manifest"], 'manifest without "files"')
    _err(res["format2"], "not a format 1 bundle")


def test_write_bundle_layout():
    """The host writer and the documented layout agree (manifest line, then the data)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        a = os.path.join(d, "a")
        open(a, "wb").write(b"hello")
        path = os.path.join(d, "x.bundle")
        m = release.write_bundle(path, "9.9", [("lib/a.mpy", a)])
        data = open(path, "rb").read()
    sha = hashlib.sha256(b"hello").hexdigest()
    assert m == {"format": 1, "version": "9.9",
                 "files": [{"path": "lib/a.mpy", "size": 5, "sha256": sha}]}
    assert data == json.dumps(m, separators=(",", ":")).encode() + b"\nhello"
