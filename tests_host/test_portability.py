"""The logic must not touch hardware modules: only hal/ drivers and main.py may."""

import ast
import os

from conftest import ROOT

HARDWARE = {"machine", "network", "esp32", "ntptime"}
ALLOWED = ("main.py", "boot.py", "hal/esp32/")
SOURCE_DIRS = ("lib", "firmware", "hal")


def _sources():
    for top in SOURCE_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def _imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


def test_only_hal_drivers_and_main_import_hardware_modules():
    offenders = []
    for rel, path in _sources():
        if rel.startswith(ALLOWED):
            continue
        bad = HARDWARE.intersection(_imports(path))
        if bad:
            offenders.append((rel, sorted(bad)))
    assert offenders == []


def test_no_cpython_only_modules_in_device_code():
    # Modules MicroPython does not ship; device code must not depend on them.
    cpython_only = {"dataclasses", "enum", "typing", "logging", "inspect", "threading"}
    offenders = []
    for rel, path in _sources():
        if rel.startswith("hal/sim"):
            continue
        bad = cpython_only.intersection(_imports(path))
        if bad:
            offenders.append((rel, sorted(bad)))
    assert offenders == []


def test_portability_scan_sees_the_tree():
    # Guard against the two tests above passing on an empty walk.
    names = {rel for rel, _ in _sources()}
    assert "lib/compat.py" in names


def test_compat_ticks_wrap_like_micropython():
    import compat

    period = 1 << 30
    assert compat.ticks_diff(compat.ticks_add(period - 5, 10), period - 5) == 10
    assert compat.ticks_diff(3, period - 2) == 5
    assert compat.ticks_diff(period - 2, 3) == -5
    assert compat.ticks_add(period - 1, 1) == 0
    assert 0 <= compat.ticks_ms() < period
