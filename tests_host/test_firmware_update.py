"""Unit tests of the FirmwareManagement modules: the A/B slot pointer and its boot counter
(lib/slots.py), the flash log (lib/logfile.py), the four message modules and the request kept
on flash by cp.firmware. The whole path runs end to end in test_e2e_firmware.py."""

import asyncio
import importlib
import json
import os
import sys

import pytest
from conftest import check_ocpp, mp_run
from cpkit import FakeCP

import logfile
import slots
from firmware import clock
from firmware.firmware_update import install, service
from firmware.ops import diagnostics_status_notification as dsn
from firmware.ops import firmware_status_notification as fsn
from firmware.ops import get_diagnostics, trigger_message, update_firmware


# -- slots -----------------------------------------------------------------------------------
def _slot(data, name):
    (data / name / "lib").mkdir(parents=True)


@pytest.fixture
def path_saved():
    saved = list(sys.path)
    yield
    sys.path[:] = saved


def test_no_pointer_is_the_base_image(tmp_path, path_saved):
    before = list(sys.path)
    assert slots.boot(str(tmp_path))["run"] == ""
    assert sys.path == before


def test_corrupt_pointer_is_the_base_image(tmp_path, path_saved):
    (tmp_path / "slot.json").write_text("{not json")
    assert slots.boot(str(tmp_path))["run"] == ""


def test_trial_slot_runs_first_then_rolls_back_after_max_tries(tmp_path, path_saved):
    data = str(tmp_path)
    _slot(tmp_path, "app_a")
    slots.switch(data, "app_a")
    for n in range(1, slots.MAX_TRIES + 1):
        d = slots.boot(data)
        assert d["run"] == "app_a" and d["try"] == n
        assert sys.path[0] == data + "/app_a/lib"
        sys.path.pop(0)
    d = slots.boot(data)  # one boot too many without confirmation
    assert d["run"] == "" and d["failed"] == "app_a" and d["ok"] is True
    assert sys.path[0] != data + "/app_a/lib"


def test_confirmed_slot_stays(tmp_path, path_saved):
    data = str(tmp_path)
    _slot(tmp_path, "app_a")
    slots.switch(data, "app_a")
    slots.boot(data)
    assert slots.confirm(data)["ok"] is True
    for _ in range(slots.MAX_TRIES + 2):
        assert slots.boot(data)["run"] == "app_a"
    assert slots.inactive(data) == "app_b"
    # The next update goes on trial with the confirmed slot as its fallback.
    _slot(tmp_path, "app_b")
    slots.switch(data, "app_b")
    assert json.loads((tmp_path / "slot.json").read_text())["prev"] == "app_a"


def test_a_missing_slot_directory_falls_back(tmp_path, path_saved):
    data = str(tmp_path)
    slots.write(data, {"run": "app_b", "prev": "", "ok": False, "try": 0})
    d = slots.boot(data)
    assert d["run"] == "" and d["failed"] == "app_b"


def test_pointer_tmp_is_read_when_the_file_is_missing(tmp_path):
    (tmp_path / "slot.json.tmp").write_text(json.dumps({"run": "app_b", "ok": True}))
    assert slots.read(str(tmp_path))["run"] == "app_b"


# -- logfile ---------------------------------------------------------------------------------
def test_log_rotates_and_selects_a_window(tmp_path, monkeypatch):
    import log

    monkeypatch.setattr(logfile, "MAX_BYTES", 200)
    t = [1000]
    sink = logfile.attach(str(tmp_path), lambda: t[0])
    try:
        for i in range(40):
            t[0] = 1000 + i
            log.error("test", "line", i)
        log.info("test", "not kept")
    finally:
        log._sinks.remove(sink)
    assert (tmp_path / "log.1.txt").exists()
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total < 3 * 200
    got = [t for t, _ in logfile.lines(str(tmp_path), 1035, 1037)]
    assert got == [1035, 1036, 1037]
    assert all("not kept" not in line for _, line in logfile.lines(str(tmp_path)))


# -- message modules ---------------------------------------------------------------------------
@pytest.mark.parametrize("mod", [fsn, dsn])
def test_notification_payloads_are_valid(mod):
    for st in mod.STATUSES:
        check_ocpp(mod.ACTION, mod.payload(st))
    with pytest.raises(ValueError):
        mod.payload("Bogus")


def test_update_firmware_parse():
    p = {"location": "ftp://u:p@h/fw.bundle", "retrieveDate": "2030-01-01T00:00:00Z"}
    assert update_firmware.parse(p) == ("ftp://u:p@h/fw.bundle", clock.parse(p["retrieveDate"]),
                                        1, 0)
    p2 = dict(p, retries=3, retryInterval=30)
    assert update_firmware.parse(p2)[2:] == (3, 30)
    assert update_firmware.parse(dict(p, location="file:///etc/passwd")) is None
    assert update_firmware.parse(dict(p, retrieveDate="yesterday")) is None


class Session:
    def __init__(self):
        self.sent = []
        self.on_accepted = []
        self.accepted = asyncio.Event()

    async def call(self, action, payload):
        check_ocpp(action, payload)
        self.sent.append((action, payload))
        return {}


class CP(FakeCP):
    def __init__(self, data_dir):
        self._declare()
        self.data_dir = str(data_dir)
        self.info = {"vendor": "V", "model": "M", "serial": "S1", "fw": "1.0"}
        self.session = Session()


def test_request_is_kept_on_flash_and_corrupt_files_are_dropped(tmp_path):
    cp = CP(tmp_path)
    fw = service.Firmware(cp)
    assert fw.request("http://h/fw.bundle", 2000000000, 0, -5)
    st = json.loads((tmp_path / service.FILE).read_text())
    assert st["tries"] == 1 and st["gap"] == 0 and st["stage"] == "wait"
    assert service.Firmware(cp).state == st  # after a reboot
    (tmp_path / service.FILE).write_text(json.dumps({"v": 1, "loc": 5}))
    assert service.Firmware(cp).state is None


def test_get_diagnostics_answers_a_file_name_or_nothing(tmp_path, monkeypatch):
    cp = CP(tmp_path)
    import firmware.firmware_update as pkg

    for name in ("xfer", "firmware.firmware_update.diagnostics"):  # imported anew here
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.delattr(pkg, "diagnostics", raising=False)
    r = get_diagnostics.get_diagnostics(cp, {"location": "ftp://h/dir/"})
    assert "xfer" not in sys.modules  # the answer needs no transfer code (only the upload)
    assert r["fileName"].startswith("diagnostics-S1-")
    check_ocpp("GetDiagnostics", r, response=True)
    assert get_diagnostics.get_diagnostics(cp, {"location": "smb://h/dir"}) == {}
    cp.diagnostics = "an upload's task"
    assert get_diagnostics.get_diagnostics(cp, {"location": "ftp://h/dir/"}) == {}
    assert cp.firmware is None  # the firmware update was never woken for it


def _told(monkeypatch):
    from firmware.firmware_update import diagnostics

    told = []

    async def notify(cp, status):
        told.append(status)

    monkeypatch.setattr(diagnostics, "notify", notify)
    return told


def test_a_finished_diagnostics_task_is_let_go(tmp_path, monkeypatch):
    """Once its upload is over cp forgets the task: its coroutine (whose frame and function
    hold the diagnostics module and what it imported) is garbage at once. One started
    meanwhile is kept."""
    from firmware.firmware_update import diagnostics

    cp = CP(tmp_path)
    told = _told(monkeypatch)
    monkeypatch.setattr(diagnostics, "build", lambda *a: 10)

    async def ok(*a, **kw):
        return True

    monkeypatch.setattr(diagnostics, "upload", ok)

    async def go():
        get_diagnostics.get_diagnostics_after(cp, {"location": "http://h/d/"},
                                              {"fileName": "f.txt"})
        assert cp.firmware is None and cp.diagnostics is not None
        await cp.diagnostics
        assert cp.diagnostics is None
        diagnostics.begin(cp, "http://h/d/", "g.txt", None, None, 1, 0)
        first = cp.diagnostics
        cp.diagnostics = other = asyncio.ensure_future(asyncio.sleep(0))  # a newer one
        await first
        assert cp.diagnostics is other
        await other

    asyncio.run(go())
    assert told == ["Uploading", "Uploaded"] * 2


def test_trigger_reports_the_status_in_progress_else_idle(tmp_path):
    cp = CP(tmp_path)

    class Rpc:
        sent = []

        async def call(self, action, payload):
            check_ocpp(action, payload)
            self.sent.append((action, payload["status"]))

    rpc = Rpc()

    async def go():
        await trigger_message.send(cp, rpc, "FirmwareStatusNotification")
        await trigger_message.send(cp, rpc, "DiagnosticsStatusNotification")
        cp.firmware = service.Firmware(cp)
        await trigger_message.send(cp, rpc, "FirmwareStatusNotification")
        cp.firmware.current = "Downloading"
        await trigger_message.send(cp, rpc, "FirmwareStatusNotification")
        await trigger_message.send(cp, rpc, "DiagnosticsStatusNotification")
        cp.diagnostics = "an upload's task"
        await trigger_message.send(cp, rpc, "DiagnosticsStatusNotification")

    asyncio.run(go())
    assert [s for _, s in rpc.sent] == ["Idle", "Idle", "Idle", "Downloading", "Idle",
                                        "Uploading"]


@pytest.mark.parametrize("where", ["build", "upload"])
def test_diagnostics_short_of_memory_ends_upload_failed_and_is_counted(
        tmp_path, monkeypatch, where):
    import log
    from firmware.firmware_update import diagnostics

    cp = CP(tmp_path)
    told = _told(monkeypatch)

    def short(*a, **kw):
        raise MemoryError

    async def short_upload(*a, **kw):
        raise MemoryError

    if where == "build":
        monkeypatch.setattr(diagnostics, "build", short)
    else:
        monkeypatch.setattr(diagnostics, "build", lambda *a: 10)
        monkeypatch.setattr(importlib.import_module("xfer"), "upload", short_upload)
    oom = log.oom

    async def go():
        diagnostics.begin(cp, "http://h/d/", "f.txt", None, None, 2, 0)
        await cp.diagnostics

    asyncio.run(go())
    assert told == ["Uploading", "UploadFailed"]
    assert cp.diagnostics is None
    assert log.oom > oom


def test_a_transfer_error_of_another_copy_of_xfer_is_still_upload_failed(tmp_path, monkeypatch):
    """router.sweep drops the transfer helpers between attempts: ftp may then raise the
    TransferError of a newer copy of xfer than the one diagnostics imported. It is still a
    failed upload (UploadFailed), not an exception that ends the task unanswered."""
    from firmware.firmware_update import diagnostics

    cp = CP(tmp_path)
    told = _told(monkeypatch)

    class TransferError(Exception):  # the same name, another class
        def __init__(self, reason):
            super().__init__(reason)
            self.reason = reason

    async def refused(*a, **kw):
        raise TransferError("FTP STOR: 550 no")

    monkeypatch.setattr(diagnostics, "build", lambda *a: 10)
    monkeypatch.setattr(importlib.import_module("xfer"), "upload", refused)
    asyncio.run(diagnostics.run(cp, "ftp://h/d/", "f.txt", None, None, 2, 0))
    assert told == ["Uploading", "UploadFailed"] and cp.diagnostics is None


def _tree(root, files=30, depth=2):
    """A directory tree like a firmware slot: `files` files in each of the three levels."""
    d = root
    for level in range(depth + 1):
        d.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            (d / ("f%03d_%d.mpy" % (i, level))).write_bytes(b"x" * i)
        d = d / ("sub%d" % level)


@pytest.mark.parametrize("files", [0, 1, 7, 8, 9, 17, 40])
def test_rmtree_removes_a_whole_tree_and_tolerates_what_is_missing(tmp_path, files):
    _tree(tmp_path / "slot", files)
    (tmp_path / "keep").write_text("k")
    assert install.rmtree(str(tmp_path / "slot")) is True
    assert sorted(os.listdir(tmp_path)) == ["keep"]
    assert install.rmtree(str(tmp_path / "slot")) is True  # missing: nothing happens
    assert install.rmtree(str(tmp_path / "keep")) is True  # a file is removed
    assert os.listdir(tmp_path) == []


def test_rmtree_stops_on_what_cannot_be_removed(tmp_path, monkeypatch):
    _tree(tmp_path / "slot", 12, depth=0)
    real = os.remove

    def refuse(path):
        if path.endswith("f003_0.mpy"):
            raise OSError(13, "read-only")
        real(path)

    monkeypatch.setattr(install.os, "remove", refuse)
    # Returns (no endless loop), False; every other file removed.
    assert install.rmtree(str(tmp_path / "slot")) is False
    assert os.listdir(tmp_path / "slot") == ["f003_0.mpy"]


def test_rmtree_on_micropython_needs_no_list_of_a_directory(tmp_path):
    """On the VM, with the heap filled up to about 3 KiB, a directory of 300 files (its
    os.listdir() alone takes about 10 KiB: 300 names and the list) is removed whole."""
    _tree(tmp_path / "slot", 300, depth=1)
    code = """
from firmware.firmware_update import install
import gc, os
d = %r
hold = []
gc.collect()
try:
    while True:
        hold.append(bytearray(256))
except MemoryError:
    pass
for _ in range(12):
    hold.pop()
gc.collect()
try:
    os.listdir(d)
    print("room for listdir")
except MemoryError:
    print("no room for listdir")
gc.collect()
install.rmtree(d)
try:
    os.stat(d)
    print("still there")
except OSError:
    print("removed")
""" % str(tmp_path / "slot")
    r = mp_run(code, heap="256k")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:2] == ["no room for listdir", "removed"], r.stdout


def _fetch_rig(tmp_path, monkeypatch, fails):
    """install.fetch with the transfer and the unpacking faked: unpack raises MemoryError
    `fails` times, then stages version 9.9.9. Returns (run, seen)."""
    from firmware.ocpp import router

    seen = {"downloads": 0, "unpacks": 0, "shed": 0, "checks": []}

    async def download(url, path, tls=None):
        seen["downloads"] += 1
        with open(path, "wb") as f:
            f.write(b"bundle")
        return 6, "ab" * 32

    async def unpack(path, dest):
        seen["unpacks"] += 1
        if seen["unpacks"] <= fails:
            raise MemoryError("no room")
        return "9.9.9", 1, 6

    async def check(sha):
        seen["checks"].append(sha)

    monkeypatch.setattr(install, "_download", download)
    monkeypatch.setattr(install, "_unpack", unpack)
    monkeypatch.setattr(router, "shed", lambda: seen.__setitem__("shed", seen["shed"] + 1))

    def run():
        return asyncio.run(install.fetch(FakeCP(), "http://h/fw.bundle", str(tmp_path),
                                         check))

    return run, seen


def test_the_download_and_the_unpacking_never_hold_each_others_code(tmp_path, monkeypatch):
    """The transfer code is let go before the unpacking, and the unpacker is loaded only
    for it: the download's peak never holds both (issue 9), and neither stays after."""
    import types

    seen = []

    async def download(url, path, tls=None):
        seen.append(("download", "bundle" in sys.modules))
        with open(path, "wb") as f:
            f.write(b"bundle")
        monkeypatch.setitem(sys.modules, "bundle", fake_bundle)  # importable from now on
        return 6, "ab" * 32

    async def unpack(path, dest):
        seen.append(("unpack", "xfer" in sys.modules))
        return "9.9.9", 1, 6

    fake_xfer = types.ModuleType("xfer")
    fake_xfer.download = download
    fake_bundle = types.ModuleType("bundle")
    fake_bundle.unpack = unpack
    monkeypatch.setitem(sys.modules, "xfer", fake_xfer)
    monkeypatch.delitem(sys.modules, "bundle", raising=False)
    got = asyncio.run(install.fetch(FakeCP(), "http://h/fw.bundle", str(tmp_path)))
    assert got == {"ver": "9.9.9"}
    assert seen == [("download", False), ("unpack", False)]
    assert "xfer" not in sys.modules and "bundle" not in sys.modules


def test_a_download_short_of_memory_is_tried_once_more_after_shedding(tmp_path, monkeypatch):
    """A MemoryError is our want of room, not the file's fault: the attempt runs once more
    after router.shed(), and the signature check the same file passed is not run (nor its
    statuses sent) twice."""
    run, seen = _fetch_rig(tmp_path, monkeypatch, fails=1)
    assert run() == {"ver": "9.9.9"}
    assert (seen["downloads"], seen["unpacks"], seen["shed"]) == (2, 2, 1)
    assert seen["checks"] == ["ab" * 32]
    assert not os.path.exists(tmp_path / service.BUNDLE)  # the download removed


def test_a_second_memory_error_fails_the_attempt(tmp_path, monkeypatch):
    run, seen = _fetch_rig(tmp_path, monkeypatch, fails=2)
    with pytest.raises(MemoryError):
        run()
    assert (seen["downloads"], seen["unpacks"], seen["shed"]) == (2, 2, 1)
    assert not os.path.exists(tmp_path / service.BUNDLE)


def test_no_room_to_load_the_download_code_costs_no_attempt(tmp_path, monkeypatch):
    """The download step runs out of memory loading its code: the attempt is not counted
    (only a download cut short is: a power cut), router.shed() lets go what it can, and
    the step is tried again after 5 s, not a minute."""
    import builtins

    from firmware.ocpp import router

    cp = CP(tmp_path)
    fw = service.Firmware(cp)
    assert fw.request("http://h/fw.bundle", 0, 1, 0)
    tries = fw.state["tries"]
    real = builtins.__import__

    def no_room(name, *a, **k):
        if name == "firmware.firmware_update" and "install" in (a[2] if len(a) > 2 else ()):
            raise MemoryError("no room")
        return real(name, *a, **k)

    pauses, shed = [], []

    async def pause(ms):
        pauses.append(ms)

    monkeypatch.setattr(builtins, "__import__", no_room)
    monkeypatch.setattr(service, "asleep_ms", pause)
    monkeypatch.setattr(router, "shed", lambda: shed.append(1))
    asyncio.run(fw._step(fw._download, fw.state))
    monkeypatch.setattr(builtins, "__import__", real)
    assert pauses == [5000] and shed == [1]
    on_flash = json.loads((tmp_path / service.FILE).read_text())
    assert on_flash["tries"] == tries == fw.state["tries"]  # no attempt spent


@pytest.mark.parametrize("retries", [1, 2])
def test_a_heap_that_never_has_room_for_the_download_ends_in_download_failed(
        tmp_path, monkeypatch, retries):
    """Out of memory loading the download code step after step (a heap too small for it):
    after service._SHORT_TRIES steps in a row the attempt counts, so the last one ends in
    DownloadFailed rather than a Downloading the central system never hears the end of. A
    step that gets through starts the count again."""
    import builtins

    from firmware.ocpp import router

    cp = CP(tmp_path)
    fw = service.Firmware(cp)
    assert fw.request("http://h/fw.bundle", 0, retries, 30)
    real = builtins.__import__

    def no_room(name, *a, **k):
        if name == "firmware.firmware_update" and "install" in (a[2] if len(a) > 2 else ()):
            raise MemoryError("no room")
        return real(name, *a, **k)

    async def pause(ms):
        pass

    monkeypatch.setattr(service, "asleep_ms", pause)
    monkeypatch.setattr(router, "shed", lambda: None)
    monkeypatch.setattr(builtins, "__import__", no_room)

    async def steps(n):
        for _ in range(n):
            await fw._step(fw._download, fw.state)

    asyncio.run(steps(service._SHORT_TRIES - 1))
    assert fw.state["tries"] == retries and cp.session.sent == []  # not yet counted
    if retries == 2:  # another failure between breaks the row: the count starts again
        monkeypatch.setattr(builtins, "__import__", real)

        async def broken(st):
            raise OSError("flash")

        asyncio.run(fw._step(broken, fw.state))
        assert fw.short == 0
        monkeypatch.setattr(builtins, "__import__", no_room)
        asyncio.run(steps(service._SHORT_TRIES - 1))
        assert fw.state["tries"] == retries and cp.session.sent == []
    asyncio.run(steps(1))
    monkeypatch.setattr(builtins, "__import__", real)
    statuses = [p["status"] for a, p in cp.session.sent if a == "FirmwareStatusNotification"]
    if retries == 1:
        assert fw.state is None and statuses == ["DownloadFailed"]
        assert not (tmp_path / service.FILE).exists()
    else:
        assert fw.state["tries"] == 1 and statuses == []  # the next attempt, `gap` s later
        assert fw.state["at"] >= clock.now() + 30 - 1
        assert json.loads((tmp_path / service.FILE).read_text())["tries"] == 1
        assert fw.short == 0
