"""manifest.py (frozen build) freezes exactly the modules `make deploy` copies as .mpy."""

import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))

import build  # noqa: E402


def _frozen_modules():
    """Execute manifest.py with recording stand-ins for MicroPython's manifest functions."""
    out = set()

    def freeze(path, script=None, opt=None):
        base = os.path.join(ROOT, path)
        for name in os.listdir(base):
            if name.endswith(".py"):
                out.add(path + "/" + name)

    def package(path, files=None, base_path=".", opt=None):
        base = os.path.join(ROOT, path)
        if files is None:
            files = []
            for dirpath, _, names in os.walk(base):
                for name in names:
                    if name.endswith(".py"):
                        rel = os.path.relpath(os.path.join(dirpath, name), base)
                        files.append(rel.replace(os.sep, "/"))
        for f in files:
            assert os.path.exists(os.path.join(base, f)), "manifest names a missing file " + f
            out.add(path + "/" + f)

    def include(path, **kw):
        assert path.startswith("$(PORT_DIR)")

    with open(os.path.join(ROOT, "manifest.py")) as f:
        exec(f.read(), {"freeze": freeze, "package": package, "include": include})
    return out


def test_manifest_freezes_what_deploy_copies():
    deployed = {src for src, dst in build.board_files() if dst.startswith("lib/")}
    assert _frozen_modules() == deployed


def test_host_only_modules_stay_off_the_board():
    deployed = {src for src, _ in build.board_files()}
    assert not any(s.startswith(("hal/sim", "hal/serial_unix", "tools/")) for s in deployed)
    assert "main.py" in deployed and "boot.py" in deployed
