"""tools/mp32.py: where the 32-bit build script is looked for, and `skipped` without it."""

import os
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))

import bench  # noqa: E402
import mp32  # noqa: E402


def _tree(tmp_path):
    """/main (a checkout with .git/), /shared/tools/micropython32/build, /wt (a worktree)."""
    (tmp_path / "main" / ".git" / "worktrees" / "wt").mkdir(parents=True)
    script = tmp_path / "shared" / "tools" / "micropython32" / "build"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(
        "gitdir: %s\n" % (tmp_path / "main" / ".git" / "worktrees" / "wt"))
    return script


def test_build_script_found_beside_the_checkout_and_beside_a_worktrees_main(
        tmp_path, monkeypatch):
    script = _tree(tmp_path)
    monkeypatch.delenv("MP32_BUILD", raising=False)
    monkeypatch.setattr(mp32, "ROOT", str(tmp_path / "main"))
    assert mp32.build_script() == str(script)
    monkeypatch.setattr(mp32, "ROOT", str(tmp_path / "wt"))
    assert mp32.build_script() == str(script)
    assert mp32.skip_reason() is None


def test_no_build_script_without_shared(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.delenv("MP32_BUILD", raising=False)
    (tmp_path / "shared" / "tools" / "micropython32" / "build").unlink()
    monkeypatch.setattr(mp32, "ROOT", str(tmp_path / "wt"))
    assert mp32.build_script() is None
    assert "micropython32" in mp32.skip_reason()


def test_32bit_bench_rows_say_skipped_without_the_build_script(monkeypatch):
    monkeypatch.setenv("MP32_BUILD", "")
    monkeypatch.setattr(bench, "rows", [])
    bench.heap32([], detail=True)
    assert bench.rows == [("heap32_static_kib", "skipped", "KiB"),
                          ("heap32_frozen_kib", "skipped", "KiB"),
                          ("heap32_mpy_kib", "skipped", "KiB")]


def test_frozen_modules_are_named_as_imported():
    mods = mp32.frozen_modules()
    assert mods["ws"] == "lib/ws.py"
    assert mods["firmware"] == "firmware/__init__.py"
    assert mods["firmware.app"] == "firmware/app.py"
    assert "hal.sim" in mods and not any(m.startswith("hal.esp32") for m in mods)


def test_import_order_puts_each_module_after_what_it_imports_at_load_time():
    order = [m for m, _ in mp32.import_order(mp32.frozen_modules())]
    pos = {m: i for i, m in enumerate(order)}
    assert pos["firmware"] < pos["firmware.app"]  # the package before its modules
    assert pos["compat"] < pos["log"]  # log.py: from compat import uptime_ms
    assert len(order) == len(set(order))


def test_a_rebuild_freezes_anew_what_the_manifest_names_now(tmp_path, monkeypatch):
    # makemanifest keeps frozen_content.c while no frozen file is newer: a removed module
    # would stay in the image. ensure() removes it before every build it makes.
    monkeypatch.setenv("MP32_CACHE", str(tmp_path))
    path = mp32.frozen_content(mp32.MANIFEST)
    assert path.startswith(str(tmp_path)) and path.endswith("/frozen_content.c")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("// stale")
    mp32._stale_frozen(mp32.MANIFEST)
    assert not os.path.exists(path)
    mp32._stale_frozen(mp32.MANIFEST)  # none there: nothing to do
    script = mp32.build_script()
    if script:  # the folder named as the build script names it
        with open(script) as f:
            text = f.read()
        assert "md5sum | cut -c1-12" in text and 'build=build-$(basename "$wrap" .py)' in text
