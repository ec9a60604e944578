"""The manifests freeze exactly what runs: manifest.py (the ESP32 image) the modules
`make deploy` copies as .mpy, manifest_unix.py (`make image`, the simulator) the same with
the simulated hardware instead of the ESP32 drivers."""

import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))

import build  # noqa: E402


def _deployed():
    return {src for src, dst in build.board_files() if dst.startswith("lib/")}


def test_manifest_freezes_what_deploy_copies():
    assert set(build.manifest_files("manifest.py").values()) == _deployed()


def test_frozen_paths_are_the_import_paths_of_the_board():
    # /lib/firmware/app.mpy is imported as firmware.app, /lib/ws.mpy as ws: the frozen
    # copies must have the same names, or main.py would import something else when frozen.
    frozen = build.manifest_files("manifest.py")
    for path, src in frozen.items():
        assert "lib/" + path[:-3] + ".mpy" in {d for _, d in build.board_files()}, (path, src)


def test_unix_manifest_freezes_the_simulator_instead_of_the_esp32_drivers():
    frozen = build.manifest_files("manifest_unix.py")
    host = {src for src, _ in build.host_files()}
    expected = {s for s in _deployed() if not s.startswith("hal/esp32/")} | host
    assert host and set(frozen.values()) == expected
    assert frozen["ws.py"] == "lib/ws.py" and frozen["hal/sim.py"] == "hal/sim.py"


def test_host_only_modules_stay_off_the_board():
    deployed = {src for src, _ in build.board_files()}
    assert not any(s.startswith(("hal/sim", "hal/serial_unix", "tools/")) for s in deployed)
    assert "main.py" in deployed and "boot.py" in deployed
