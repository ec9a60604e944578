"""The manifests freeze exactly what runs: manifest.py (the ESP32 image) the modules
`make deploy` copies as .mpy, manifest_unix.py (`make image`, the simulator) the same with
the simulated hardware instead of the ESP32 drivers."""

import os
import subprocess
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))

import build  # noqa: E402


def _deployed():
    return {src for src, dst in build.board_files() if dst.startswith("lib/")}


def test_manifest_freezes_what_deploy_copies():
    # and the module names as qstrs (firmware/_qnames.py): never imported, nothing on a board
    assert set(build.manifest_files("manifest.py").values()) == _deployed() | {build.QNAMES}
    assert build.QNAMES not in {src for src, _ in build.board_files()}


def test_frozen_paths_are_the_import_paths_of_the_board():
    # /lib/firmware/app.mpy is imported as firmware.app, /lib/ws.mpy as ws: the frozen
    # copies must have the same names, or main.py would import something else when frozen.
    frozen = build.manifest_files("manifest.py")
    for path, src in frozen.items():
        if src == build.QNAMES:
            continue
        assert "lib/" + path[:-3] + ".mpy" in {d for _, d in build.board_files()}, (path, src)


def test_unix_manifest_freezes_the_simulator_instead_of_the_esp32_drivers():
    frozen = build.manifest_files("manifest_unix.py")
    host = {src for src, _ in build.host_files()}
    expected = {s for s in _deployed() if not s.startswith("hal/esp32/")} | host
    expected.add(build.QNAMES)
    assert host and set(frozen.values()) == expected
    assert frozen["ws.py"] == "lib/ws.py" and frozen["hal/sim.py"] == "hal/sim.py"


def test_host_only_modules_stay_off_the_board():
    deployed = {src for src, _ in build.board_files()}
    assert not any(s.startswith(("hal/sim", "hal/serial_unix", "tools/")) for s in deployed)
    assert "main.py" in deployed and "boot.py" in deployed


def test_qnames_names_every_frozen_module_with_its_prefixes_and_components():
    # Generated: `python tools/build.py qnames` after adding or moving a module.
    with open(os.path.join(ROOT, build.QNAMES)) as f:
        text = f.read()
    assert text == build.qnames_source(), "run: python tools/build.py qnames"
    mods = build.module_names("manifest.py") | build.module_names("manifest_unix.py")
    assert {"firmware.ops.certificate_signed", "hal.esp32.pilot", "hal.sim"} <= mods
    for name in mods - {"firmware._qnames"}:
        assert "    import %s\n" % name in text
        if "." in name:  # the component, bound on the package ("ops" of firmware.ops)
            parent, leaf = name.rsplit(".", 1)
            assert "    from %s import %s\n" % (parent, leaf) in text
    assert "    import asyncio.stream\n" in text  # MicroPython's own frozen submodules


def test_qnames_is_never_imported_by_the_firmware():
    # Importing it would import every module of the image.
    for src, _ in build.board_files() + build.host_files():
        with open(os.path.join(ROOT, src)) as f:
            assert "_qnames" not in f.read(), src


def test_texts_are_the_text_constants_of_the_resident_modules():
    # Generated: `python tools/build.py texts` after changing a resident module's strings.
    with open(os.path.join(ROOT, build.TEXTS)) as f:
        text = f.read()
    assert text == build.texts_source(), "run: python tools/build.py texts"
    resident = build.resident_modules()
    # the launchers, the app and what they run; the FEATURES and what those import at top
    assert {"hal.sim", "hal.esp32.board", "firmware.app", "firmware.ocpp.session", "ws",
            "firmware.transactions.journal", "firmware.smart_charging.service",
            "firmware.ops.heartbeat", "firmware", "firmware.ocpp"} <= set(resident)
    # a rare request's code loads on demand: its texts are not interned at every boot
    assert not {"firmware.ops.get_configuration", "firmware.firmware_update.service", "x509",
                "firmware.smart_charging.profiles", "firmware.reservation"} & set(resident)
    assert resident["ws"] == "lib/ws.py"
    # a driver imports its bus in a function (hal/esp32/meter.py: the Modbus master)
    assert {"hal.meters", "modbus", "hal.esp32.meter"} <= set(resident)
    # keys (in the key tables' tuples), dotted names, short tuple elements
    for line in ("        o.MeterValueSampleInterval,\n", "        o.ocppe,\n",
                 "    import Energy.Active.Import.Register\n",
                 "    import firmware.authorization.service\n"):
        assert line in text
    # The longer texts the .mpy build keeps, by the launchers that run their modules: a
    # text of the safety loop (firmware/evse keeps its texts), a table's (httpd's reasons), a
    # board driver's. Not: a text said only (on flash: build.flash_texts), a docstring, a
    # name, a short text (mpy-cross interns those), a lent module's (the simulator's
    # /api/sim, hal/sim_control.py).
    ns = {}
    exec(text, ns)  # noqa: S102 - the generated module, checked above
    both, sim, board = ns["_BOTH"], ns["_SIM"], ns["_BOARD"]
    assert "RCD reset refused: too many retries" in both and "Method Not Allowed" in both
    assert "not an ESP32 application image" in board
    kept = set(both) | set(sim) | set(board)
    assert "cp: A, B, C, D or E" not in kept
    assert len(kept) == len(both) + len(sim) + len(board)
    assert "housekeeping ended; restarting" not in kept  # firmware/app.py, a log line
    assert not [t for t in kept if len(t.encode()) <= 10 or build._is_name(t)
                or t.startswith(("Wiring: ", "Transaction journal: "))]


def test_texts_spare_the_heap_of_modules_loaded_from_mpy(tmp_path):
    # The launchers import lib/_texts.py first: the resident modules loaded from .mpy files after
    # it hold their (dotted) identifier constants as its qstrs, not as str copies. Measured
    # on the unix port (64-bit) with the same .mpy files as `make deploy` compiles.
    from conftest import mp_run

    files = [(s, d) for s, d in build.board_files() + build.host_files()
             if d.startswith("lib/") and d.endswith(".mpy")]
    build.compile_files(files, str(tmp_path), "x64")
    code = """
import gc, sys
if %s:
    __import__("_texts")
    del sys.modules["_texts"]
gc.collect()
a = gc.mem_alloc()
import firmware.keys, firmware.transactions.service, firmware.evse.api_keys
gc.collect()
print("held", gc.mem_alloc() - a, "_texts" in sys.modules)
"""
    path = {"MICROPYPATH": os.pathsep.join([".frozen", str(tmp_path / "lib")])}
    held = {}
    for first in (False, True):
        r = mp_run(code % first, env=path, cwd=str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        word, n, kept = r.stdout.split()
        assert word == "held" and kept == "False"
        held[first] = int(n)
    # 133 KB without, 115 KB with (64-bit), when this was written
    assert held[True] < held[False] - 8000, held


def test_the_longer_texts_are_interned_only_for_modules_loaded_from_mpy(tmp_path):
    # _texts.intern (main.py, through compat.intern_texts, before the launcher loads): from a
    # .mpy file it interns the kept longer texts, and a module loaded from .mpy after it
    # holds them as those qstrs; loaded from source or frozen (as firmware modules then
    # are too) it interns nothing, which would only cost heap. Unix port, 64-bit.
    from conftest import mp_run

    files = [(s, d) for s, d in build.board_files() + build.host_files()
             if d.startswith("lib/") and d.endswith(".mpy")]
    build.compile_files(files, str(tmp_path), "x64")
    code = """
import gc, sys, micropython
import _texts
del sys.modules["_texts"]
def count():
    micropython.qstr_info()
count()
if %s:
    _texts.intern(False)
count()
print(len(_texts._BOTH) + len(_texts._SIM))
del _texts
gc.collect()
a = gc.mem_alloc()
import httpd, firmware.ocpp.specs
gc.collect()
print("held", gc.mem_alloc() - a)
"""
    held = {}
    for lib, interning in ((tmp_path / "lib", False), (tmp_path / "lib", True),
                           (os.path.join(ROOT, "lib"), True)):
        path = {"MICROPYPATH": os.pathsep.join([".frozen", str(lib), ROOT])}
        r = mp_run(code % interning, env=path, cwd=str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        pools = [int(x.split("n_qstr=")[1].split(",")[0]) for x in r.stdout.splitlines()
                 if x.startswith("qstr pool")]
        n = int(r.stdout.splitlines()[-2])
        word, b = r.stdout.splitlines()[-1].split()
        assert word == "held"
        if lib == os.path.join(ROOT, "lib"):
            assert pools[1] == pools[0], r.stdout  # source: nothing interned
        elif interning:  # each text that was not a qstr yet (a few are MicroPython's own)
            assert n - 5 <= pools[1] - pools[0] <= n, r.stdout
        else:
            assert pools[1] == pools[0], r.stdout
        held[lib, interning] = int(b)
    held = {k[1]: v for k, v in held.items() if k[0] != os.path.join(ROOT, "lib")}
    # httpd's reasons and headers, the specs' answers: 1,856 bytes less (64-bit) when written
    assert held[True] < held[False] - 1200, held


def test_an_mpy_names_its_module_by_the_dotted_name_it_is_imported_as(tmp_path, monkeypatch):
    # build.mpy_command: a .mpy's source name (interned when it loads) is the module's
    # __name__, so each module costs one qstr for both, and a traceback says which module;
    # at OPT 3 its line reads 1 (no line-number table on the heap), at 0 the real line.
    from conftest import mp_run

    src = tmp_path / "src.py"
    src.write_text("import sys\n\n\ndef f():\n    raise ValueError(len(sys.argv))\n")
    out = tmp_path / "out"
    dst = "lib/firmware/ops/probe.mpy"
    code = """
import sys
try:
    __import__("firmware.ops.probe", None, None, ("f",)).f()
except ValueError as e:
    sys.print_exception(e)
"""
    (out / "lib" / "firmware" / "ops").mkdir(parents=True)
    for pkg in ("firmware", "firmware/ops"):
        (out / "lib" / pkg / "__init__.py").write_text("")
    lines = {}
    for opt in (0, 3):
        monkeypatch.setattr(build, "OPT", opt)
        subprocess.run(build.mpy_command("x64", str(out), dst, "src.py", str(src)), check=True)
        r = mp_run(code, env={"MICROPYPATH": str(out / "lib")}, cwd=str(tmp_path))
        assert r.returncode == 0, r.stdout + r.stderr
        lines[opt] = [x.strip() for x in r.stdout.splitlines() if "firmware" in x]
    assert lines[0] == ['File "firmware.ops.probe", line 5, in f'], lines
    assert lines[3] == ['File "firmware.ops.probe", line 1, in f'], lines


def test_interning_the_texts_never_stops_a_boot(tmp_path, monkeypatch, capsys):
    # compat.intern_texts, the launchers' first step: no file costs only heap, silently; a
    # file that cannot be loaded (an .mpy of another version, a flash error) is said and
    # costs only heap too; it is never kept in sys.modules.
    import compat

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "_texts", raising=False)
    (tmp_path / "_texts.py").write_text("raise ValueError('incompatible .mpy file')\n")
    compat.intern_texts()
    assert "text constants not interned: ValueError" in capsys.readouterr().out
    (tmp_path / "_texts.py").write_text("import no_such_module_here\n")
    compat.intern_texts()
    assert capsys.readouterr().out == "" and "_texts" not in sys.modules
    (tmp_path / "_texts.py").write_text("A = 1\n")  # one without intern()
    monkeypatch.delitem(sys.modules, "_texts", raising=False)
    compat.intern_texts(True)
    assert "text constants not interned: AttributeError" in capsys.readouterr().out
    assert "_texts" not in sys.modules
