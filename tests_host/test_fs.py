"""lib/fs.py: atomic replacement, JSON fallback, cleanup, makedirs, free space."""

import json
import os

import pytest
from conftest import mp_run

import fs
import log


@pytest.fixture
def errors():
    seen = []

    def sink(ch, tag, text):
        if ch == "E":
            seen.append((tag, text))

    log.add_sink(sink)
    yield seen
    log._sinks.remove(sink)


def test_write_atomic_replaces_content_and_leaves_no_temp(tmp_path):
    p = str(tmp_path / "a.json")
    fs.write_atomic(p, "one")
    fs.write_atomic(p, b"two")
    assert open(p).read() == "two"
    assert os.listdir(tmp_path) == ["a.json"]


def test_write_failure_keeps_old_file_and_removes_temp(tmp_path):
    p = str(tmp_path / "a.json")
    fs.write_json(p, {"v": 1})

    with pytest.raises(TypeError):
        fs.write_atomic(p, 12345)  # neither str nor bytes: open succeeds, write fails
    assert fs.read_json(p) == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_read_json_missing_is_silent_default(tmp_path, errors):
    assert fs.read_json(str(tmp_path / "nope.json"), {"d": 1}) == {"d": 1}
    assert errors == []


def test_read_json_missing_but_expected_logs_error(tmp_path, errors):
    assert fs.read_json(str(tmp_path / "nope.json"), 7, expected=True) == 7
    assert errors and errors[0][0] == "fs"


def test_read_json_corrupt_logs_error_and_returns_default(tmp_path, errors):
    p = tmp_path / "c.json"
    p.write_text('{"a": 1')
    assert fs.read_json(str(p), {}) == {}
    assert errors and "corrupt" in errors[0][1]


def test_read_json_recovers_complete_temp_when_target_missing(tmp_path):
    # The FAT path of write_atomic removes the target before the rename.
    (tmp_path / "c.json.tmp").write_text(json.dumps({"n": 2}))
    assert fs.read_json(str(tmp_path / "c.json"), None) == {"n": 2}


def test_saved_is_what_read_json_would_find(tmp_path):
    p = str(tmp_path / "c.json")
    assert not fs.saved(p) and fs.read_json(p, "none") == "none"
    (tmp_path / "c.json.tmp").write_text(json.dumps({"n": 2}))  # only the temporary file
    assert fs.saved(p) and fs.read_json(p, None) == {"n": 2}
    os.remove(p + ".tmp")
    fs.write_atomic(p, json.dumps({"n": 3}))
    assert fs.saved(p) and not os.path.exists(p + ".tmp")


def test_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    # littlefs out of space (or EIO) while committing the rename: the old version must
    # survive; only FAT's "target exists" refusal may remove it first.
    import errno

    p = str(tmp_path / "m.json")
    fs.write_json(p, {"v": 1})

    def full(src, dst):
        raise OSError(errno.ENOSPC, "no space")

    monkeypatch.setattr(fs.os, "rename", full)
    try:
        fs.write_json(p, {"v": 2})
    except OSError:
        pass
    else:
        raise AssertionError("the failure must be reported")
    monkeypatch.undo()
    assert fs.read_json(p) == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_fat_rename_path_never_deletes_the_only_copy(tmp_path, monkeypatch):
    import errno

    p = str(tmp_path / "m.json")
    fs.write_json(p, {"v": 1})
    real = os.rename
    calls = []

    def fat(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            raise OSError(errno.EEXIST, "exists")  # FAT: target exists
        raise OSError(errno.EIO, "io error")  # and then the second rename fails too

    monkeypatch.setattr(fs.os, "rename", fat)
    try:
        fs.write_json(p, {"v": 2})
    except OSError:
        pass
    monkeypatch.setattr(fs.os, "rename", real)
    # The old file is gone (FAT path), but the complete new one survives as .tmp.
    assert fs.read_json(p) == {"v": 2}


def test_cleanup_removes_stale_temp_only_when_target_exists(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "a.json.tmp").write_text("{partial")
    (tmp_path / "b.json.tmp").write_text("{}")  # only copy: kept
    assert fs.cleanup(str(tmp_path)) == 1
    assert sorted(os.listdir(tmp_path)) == ["a.json", "b.json.tmp"]
    assert fs.cleanup(str(tmp_path / "missing")) == 0


def test_makedirs_creates_parents_and_tolerates_existing(tmp_path):
    d = str(tmp_path / "x" / "y" / "z")
    fs.makedirs(d)
    fs.makedirs(d)
    assert os.path.isdir(d)
    rel = os.path.relpath(str(tmp_path / "r" / "s"))
    fs.makedirs(rel)
    assert os.path.isdir(rel)


def test_free_bytes_reports_space(tmp_path):
    n = fs.free_bytes(str(tmp_path))
    assert isinstance(n, int) and n > 0
    assert fs.free_bytes(str(tmp_path / "missing")) is None


def test_same_behaviour_on_micropython(tmp_path):
    d = str(tmp_path / "m" / "n")
    code = """
import fs, os
d = %r
fs.makedirs(d)
p = d + "/c.json"
fs.write_json(p, {"a": [1, 2]})
fs.write_json(p, {"a": [3]})
print(fs.read_json(p, None))
f = open(p, "w"); f.write("{bad"); f.close()
print(fs.read_json(p, "dflt"))
f = open(p + ".tmp", "w"); f.write("x"); f.close()
print(fs.cleanup(d), sorted(os.listdir(d)))
print(fs.free_bytes(d) > 0)
""" % (d,)
    r = mp_run(code)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "{'a': [3]}"
    assert lines[1].startswith("E fs: corrupt")
    assert lines[2] == "dflt"
    assert lines[3] == "1 ['c.json']"
    assert lines[4] == "True"


def test_read_json_never_takes_want_of_room_for_a_bad_file(tmp_path, monkeypatch):
    """No room to read a file says nothing about it: MemoryError goes up (a caller taking
    the default would overwrite the file with less). A file that is there but cannot be read
    now (no file handle left) gives the default, or raises when `strict`."""
    import fs

    p = str(tmp_path / "a.json")
    fs.write_json(p, {"k": 1})

    def no_room(path):
        raise MemoryError("memory allocation failed")

    def no_handle(path):
        raise OSError(24, "EMFILE")

    with monkeypatch.context() as m:
        m.setattr(fs, "_load", no_room)
        with pytest.raises(MemoryError):
            fs.read_json(p, {})
    with monkeypatch.context() as m:
        m.setattr(fs, "_load", no_handle)
        assert fs.read_json(p, "default") == "default"
        with pytest.raises(OSError):
            fs.read_json(p, "default", strict=True)
        assert fs.read_json(str(tmp_path / "missing.json"), "d", strict=True) == "d"
    assert fs.read_json(p) == {"k": 1}
