"""`make release`: one bundle with everything `make deploy` copies, carrying VERSION, that
lib/bundle.py unpacks on MicroPython into files identical to the build's, and whose unpacked
.mpy modules load and report the version."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, mp_run

sys.path.insert(0, os.path.join(ROOT, "tools"))

import release  # noqa: E402


def _make_release(out, *args):
    # -o: never rebuild the (shared) virtual environment from inside a test.
    p = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "release", "RELEASE_DIR=" + str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.strip().splitlines()


def _segments(path):
    with open(path, "rb") as f:
        data = f.read()
    i = data.index(b"\n")
    m = json.loads(data[:i])
    out = {}
    off = i + 1
    for e in m["files"]:
        out[e["path"]] = data[off : off + e["size"]]
        off += e["size"]
    assert off == len(data)
    return m, out


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    lines = _make_release(out, "VERSION=1.2.3")
    return lines[-1]


def test_make_release_prints_the_bundle_path_last(bundle_path):
    assert os.path.isabs(bundle_path) and os.path.isfile(bundle_path)
    assert os.path.basename(bundle_path) == "wallbox-1.2.3.bundle"


def test_bundle_holds_every_deployed_file_with_the_version(bundle_path):
    m, seg = _segments(bundle_path)
    assert m["format"] == 1 and m["version"] == "1.2.3"
    files = release.build.board_files() + release.build.host_files()
    assert [e["path"] for e in m["files"]] == [d for _, d in files] + ["lib/texts.bin"]
    for src in ("boot.py", "main.py"):  # sources, unchanged
        with open(os.path.join(ROOT, src), "rb") as f:
            assert seg[src] == f.read()
    assert all(d.endswith(".mpy") for d in seg if d.startswith("lib/") and d != "lib/texts.bin")
    # The texts the modules read from flash, of this very build (compat.flash_text).
    assert int.from_bytes(seg["lib/texts.bin"][:4], "little") != 0
    assert seg["lib/version.mpy"][:1] == b"M" and b"1.2.3" in seg["lib/version.mpy"]


def test_unpacked_on_micropython_identical_and_reports_the_version(bundle_path, tmp_path):
    _, seg = _segments(bundle_path)
    dest = tmp_path / "flash"
    code = (
        "import asyncio, bundle, sys\n"
        "r = asyncio.run(bundle.unpack(%r, %r))\n"
        "print('unpacked', r[0], r[1])\n"
        # What the board imports after the update: the bundle's own .mpy files.
        "sys.path[:] = ['.frozen', %r]\n"
        "for k in list(sys.modules):\n"
        "    if k not in ('asyncio',) and not k.startswith('asyncio'):\n"
        "        del sys.modules[k]\n"
        "import version, xfer, bundle as b2\n"
        "print('version', version.VERSION, b2.__file__)\n"
    ) % (bundle_path, str(dest), str(dest / "lib"))
    p = mp_run(code, heap="512k")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "unpacked 1.2.3 %d" % len(seg) in p.stdout
    assert re.search(r"version 1\.2\.3 .*flash/lib/bundle\.mpy", p.stdout), p.stdout
    for rel, data in seg.items():
        assert (dest / rel).read_bytes() == data, rel


def test_default_version_is_the_current_one_plus_dev(tmp_path):
    lines = _make_release(tmp_path)
    m, _ = _segments(lines[-1])
    cur = release.current_version()
    assert re.match(re.escape(cur) + r"\+dev(\.[0-9a-f]{4,40}(\.dirty)?)?$", m["version"])


def test_bad_version_refused(tmp_path):
    p = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "release.py"), "--version", "1.0 beta",
         "--out", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert p.returncode != 0 and "bad VERSION" in p.stderr
    assert os.listdir(tmp_path) == []
