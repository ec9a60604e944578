"""End-to-end FirmwareManagement: the firmware on the MicroPython unix port against the demo
central system, a real HTTP/FTP file server on 127.0.0.1 and a real bundle of
tools/release.py. The firmware "reboots" by exiting with status 3; the test starts it again
on the same data directory, as tools/sim.py does. Every message is schema-checked."""

import json
import os
import sys
import time
from datetime import datetime, timezone

import pytest
from conftest import ROOT, check_ocpp
from e2e import CsmsThread, Firmware
from ocpp.v16 import call

sys.path.insert(0, os.path.join(ROOT, "tools"))

import build  # noqa: E402
import fileserver  # noqa: E402
import release  # noqa: E402

pytestmark = pytest.mark.e2e


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _segments(path):
    with open(path, "rb") as f:
        data = f.read()
    i = data.index(b"\n")
    m = json.loads(data[:i])
    out = []
    off = i + 1
    for e in m["files"]:
        out.append((e["path"], data[off : off + e["size"]]))
        off += e["size"]
    return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """The served directory: good.bundle (9.9.9), corrupt.bundle (a byte flipped),
    crash.bundle (9.9.8 whose firmware.app raises at import)."""
    root = tmp_path_factory.mktemp("served")
    good, _ = release.release("9.9.9", str(root))
    os.rename(good, root / "good.bundle")
    data = bytearray((root / "good.bundle").read_bytes())
    data[-10] ^= 0xFF  # inside the last file: its SHA-256 no longer matches
    (root / "corrupt.bundle").write_bytes(bytes(data))
    stage = tmp_path_factory.mktemp("crash")
    files = []
    import subprocess

    bad = stage / "bad.py"
    bad.write_text("raise RuntimeError('this version crashes at start')\n")
    for path, body in _segments(root / "good.bundle"):
        local = stage / path.replace("/", "_")
        if path == "lib/firmware/app.mpy":
            subprocess.run([build.mpy_cross(), "-march=xtensawin", "-o", str(local), str(bad)],
                           check=True)
        elif path == "lib/version.mpy":
            os.makedirs(stage / "v", exist_ok=True)
            release.compile_version("9.9.8", str(stage / "v"))
            local = stage / "v" / "lib" / "version.mpy"
        else:
            local.write_bytes(body)
        files.append((path, str(local)))
    release.write_bundle(str(root / "crash.bundle"), "9.9.8", files)
    return root


@pytest.fixture
def http(bundles):
    s = fileserver.serve_http(bundles)
    yield s
    s.stop()


@pytest.fixture
def csms():
    c = CsmsThread(heartbeat_interval=60)
    c.start()
    yield c
    c.close()


class Runner:
    """Starts the firmware again after each reboot, on the same data directory."""

    def __init__(self, url, data):
        self.url = url
        self.data = data
        self.all = []

    def start(self, setup=None):
        os.makedirs(self.data, exist_ok=True)
        if setup:
            (self.data / "setup.json").write_text(json.dumps(setup))
        # From source on the 64-bit VM the firmware, the transfer code and the crypto of a
        # signed update all sit on the heap: more than the simulator's default 512k.
        fw = Firmware(self.data, self.url, heap="1m")
        self.all.append(fw)
        return fw.start()

    def reboot(self, fw, timeout=60):
        assert fw.proc.wait(timeout) == 3, fw.output()
        return self.start()


@pytest.fixture
def runner(csms, tmp_path):
    r = Runner(csms.url(), tmp_path / "data")
    yield r
    for fw in r.all:
        fw.stop()
        print("---- firmware log ----\n" + fw.output())


def fw_statuses(csms, since=0):
    return [p["status"] for _, a, p in csms.csms.received[since:]
            if a == "FirmwareStatusNotification"]


def boots(csms):
    return [p for _, a, p in csms.csms.received if a == "BootNotification"]


def assert_all_valid(csms):
    for _, action, payload in csms.csms.received:
        check_ocpp(action, payload)
    for _, frame in csms.csms.answers:
        assert frame[0] == 3, frame


def update(csms, location, **kw):
    r = csms.call("CP1", call.UpdateFirmware(location=location, retrieve_date=_now(), **kw))
    check_ocpp("UpdateFirmware", {"location": location, "retrieveDate": _now()})
    return r


def wait_fw(csms, status, timeout=60):
    csms.wait_for(lambda: status in fw_statuses(csms), timeout)


def test_update_installs_the_new_version_and_reports_installed(csms, runner, http):
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    assert fw.status("fwv")["fwv"] != "9.9.9"
    update(csms, http.url("good.bundle"))
    wait_fw(csms, "Installing")
    fw = runner.reboot(fw)
    wait_fw(csms, "Installed")
    assert fw_statuses(csms) == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert fw.status("fwv")["fwv"] == "9.9.9"
    assert boots(csms)[-1]["firmwareVersion"] == "9.9.9"
    ptr = json.loads((runner.data / "slot.json").read_text())
    assert ptr["ok"] is True and ptr["run"] == "app_a"
    assert not (runner.data / "fwupdate.json").exists()
    assert not (runner.data / "fw.bundle").exists()
    # Nothing in progress any more: TriggerMessage gets Idle.
    r = csms.call("CP1", call.TriggerMessage(requested_message="FirmwareStatusNotification"))
    assert r.status == "Accepted"
    csms.wait_for(lambda: fw_statuses(csms)[-1:] == ["Idle"])
    # The new version keeps running after another restart (confirmed, no rollback).
    fw.stop()
    fw = runner.start()
    assert fw.status("fwv")["fwv"] == "9.9.9"
    assert_all_valid(csms)


def test_corrupt_bundle_is_download_failed_and_the_old_version_runs(csms, runner, http):
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    old = fw.status("fwv")["fwv"]
    update(csms, http.url("corrupt.bundle"))
    wait_fw(csms, "DownloadFailed")
    assert fw_statuses(csms) == ["Downloading", "DownloadFailed"]
    assert fw.proc.poll() is None
    assert fw.status("fwv")["fwv"] == old
    assert not (runner.data / "slot.json").exists()
    assert not (runner.data / "app_a").exists()  # no half slot left
    assert_all_valid(csms)


def test_unreachable_server_retries_then_download_failed(csms, runner, http):
    from e2e import free_port

    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    url = "http://127.0.0.1:%d/good.bundle" % free_port()
    update(csms, url, retries=3, retry_interval=1)
    wait_fw(csms, "DownloadFailed")
    assert fw_statuses(csms) == ["Downloading"] * 3 + ["DownloadFailed"]
    assert fw.wait_line("download failed", count=3) is not None, fw.output()
    assert fw.output().count("download failed") == 3
    assert_all_valid(csms)


def test_a_version_that_crashes_at_start_is_rolled_back(csms, runner, http):
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    old = fw.status("fwv")["fwv"]
    update(csms, http.url("crash.bundle"))
    wait_fw(csms, "Installing")
    assert fw.proc.wait(60) == 3
    for _ in range(6):  # the crashing boots (each exits 3), then the rollback boots
        try:
            fw = runner.start()
            break
        except RuntimeError as e:
            assert "exited 3" in str(e)
    else:
        raise AssertionError("no rollback")
    wait_fw(csms, "InstallationFailed")
    assert fw_statuses(csms) == ["Downloading", "Downloaded", "Installing",
                                 "InstallationFailed"]
    assert fw.status("fwv")["fwv"] == old
    assert "failed" not in json.loads((runner.data / "slot.json").read_text())
    assert_all_valid(csms)


def test_request_kept_across_a_reboot_before_retrieve_date(csms, runner, http):
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    later = datetime.fromtimestamp(time.time() + 8, timezone.utc)
    csms.call("CP1", call.UpdateFirmware(location=http.url("good.bundle"),
                                         retrieve_date=later.strftime("%Y-%m-%dT%H:%M:%SZ")))
    csms.wait_for(lambda: (runner.data / "fwupdate.json").exists())
    fw.kill()  # a power cut before the retrieveDate
    fw = runner.start()
    assert fw_statuses(csms) == []
    wait_fw(csms, "Installing", timeout=60)
    fw = runner.reboot(fw)
    wait_fw(csms, "Installed")
    assert fw.status("fwv")["fwv"] == "9.9.9"
    assert_all_valid(csms)


def diag_statuses(csms):
    return [p["status"] for _, a, p in csms.csms.received
            if a == "DiagnosticsStatusNotification"]


def _diagnostics(csms, runner, server, root, location):
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    r = csms.call("CP1", call.ChangeConfiguration(key="AuthorizationKey",
                                                  value="0123456789abcdef-secret"))
    assert r.status == "Accepted"
    fw.set(ocppu="ws://127.0.0.1:1/nowhere/CP2")  # an error for the log, then back
    deadline = time.monotonic() + 60  # a loaded machine: the first attempt may take a while
    while "nowhere/CP2 failed" not in fw.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "nowhere/CP2 failed" in fw.output(), "the failed connection was never logged"
    n = len(boots(csms))
    fw.set(ocppu=csms.url())
    csms.wait_for(lambda: len(boots(csms)) > n)
    r = csms.call("CP1", call.GetDiagnostics(location=location, retries=2, retry_interval=1))
    assert r.file_name and r.file_name.startswith("diagnostics-SIM-0001-")
    csms.wait_for(lambda: "Uploaded" in diag_statuses(csms) or
                  "UploadFailed" in diag_statuses(csms), 60)
    assert diag_statuses(csms) == ["Uploading", "Uploaded"]
    # The server notes an upload once its transfer is closed on its side, which may come a
    # moment after the firmware had its reply and said Uploaded (seen on a loaded machine).
    csms.wait_for(lambda: server.uploads, 10)
    assert [u[0] for u in server.uploads] == ["diag/" + r.file_name]
    text = (root / "diag" / r.file_name).read_text()
    assert "firmware 0.1.0" in text or "firmware " in text.splitlines()[0]
    assert "## log" in text and "connect to ws://127.0.0.1:1/nowhere/CP2 failed" in text
    assert "## fault counters" in text and "rcd_trips=" in text
    assert "AuthorizationKey=<redacted>" in text and "0123456789abcdef-secret" not in text
    assert "HeartbeatInterval=" in text and "## journal" in text
    r = csms.call("CP1", call.TriggerMessage(requested_message="DiagnosticsStatusNotification"))
    csms.wait_for(lambda: diag_statuses(csms)[-1:] == ["Idle"])
    assert_all_valid(csms)


def test_get_diagnostics_over_ftp(csms, runner, tmp_path):
    root = tmp_path / "ftproot"
    (root / "diag").mkdir(parents=True)
    ftp = fileserver.serve_ftp(root)
    try:
        _diagnostics(csms, runner, ftp, root, ftp.url("diag/"))
    finally:
        ftp.stop()


def test_get_diagnostics_over_http_put(csms, runner, tmp_path):
    root = tmp_path / "webroot"
    (root / "diag").mkdir(parents=True)
    srv = fileserver.serve_http(root)
    try:
        _diagnostics(csms, runner, srv, root, srv.url("diag"))
    finally:
        srv.stop()


def test_get_diagnostics_unreachable_retries_then_upload_failed(csms, runner):
    from e2e import free_port

    runner.start()
    csms.wait_for(lambda: boots(csms))
    r = csms.call("CP1", call.GetDiagnostics(location="ftp://u:p@127.0.0.1:%d/" % free_port(),
                                             retries=2, retry_interval=1))
    assert r.file_name
    csms.wait_for(lambda: "UploadFailed" in diag_statuses(csms), 60)
    assert diag_statuses(csms) == ["Uploading", "UploadFailed"]
    fw = runner.all[-1]
    assert fw.wait_line("diagnostics upload failed", count=2) is not None, fw.output()
    assert fw.output().count("diagnostics upload failed") == 2
    assert_all_valid(csms)


def test_update_during_a_charging_session_waits_for_its_end(csms, runner, http):
    fw = runner.start(setup={"acs": 1})
    csms.wait_for(lambda: boots(csms))
    fw.sim(cp="B")
    r = csms.call("CP1", call.RemoteStartTransaction(id_tag="CARD1", connector_id=1))
    assert r.status == "Accepted"
    csms.wait_for(lambda: "StartTransaction" in csms.csms.actions())
    fw.sim(cp="C")
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))  # charging
    update(csms, http.url("good.bundle"))
    wait_fw(csms, "Downloaded")
    time.sleep(3)
    assert fw_statuses(csms) == ["Downloading", "Downloaded"]  # not while charging
    assert fw.status("car")["car"] == 2 and fw.proc.poll() is None
    n = len(csms.csms.received)
    tx = max(csms.csms.transactions)
    csms.call("CP1", call.RemoteStopTransaction(transaction_id=tx))
    wait_fw(csms, "Installing")
    after = [a for _, a, _ in csms.csms.received[n:]]
    assert "StopTransaction" in after
    assert after.index("StopTransaction") < after.index("FirmwareStatusNotification")
    # No new session was offered meanwhile: the connector showed Unavailable.
    sts = [p["status"] for _, a, p in csms.csms.received[n:]
           if a == "StatusNotification" and p["connectorId"] == 1]
    assert "Unavailable" in sts, sts
    fw = runner.reboot(fw)
    wait_fw(csms, "Installed")
    assert fw.status("fwv")["fwv"] == "9.9.9"
    assert_all_valid(csms)


# -- power cuts (SIGKILL) during the download and the installation ---------------------------
@pytest.fixture
def slow_http(bundles):
    """good.bundle at about 40 KB/s: a download takes seconds, time to cut the power."""
    s = fileserver.serve_http(bundles, throttle=40000)
    yield s
    s.stop()


def _cut_while_downloading(csms, runner, srv, **kw):
    """Start an update, SIGKILL the firmware once a third of the bundle went over the wire,
    then start it again on the same data (the server at full speed) -> the new process."""
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    size = os.path.getsize(os.path.join(srv.httpd.root, "good.bundle"))
    update(csms, srv.url("good.bundle"), **kw)
    csms.wait_for(lambda: srv.httpd.sent > size // 3, 60)
    fw.kill()
    assert srv.httpd.sent < size, "the download ended before the power cut"
    assert fw_statuses(csms) == ["Downloading"]
    assert (runner.data / "fw.bundle").exists()  # a partial download lies on flash
    srv.httpd.throttle = None
    n = len(boots(csms))
    fw = runner.start()
    csms.wait_for(lambda: len(boots(csms)) > n)
    return fw


def test_power_cut_during_download_retries_and_installs(csms, runner, slow_http):
    fw = _cut_while_downloading(csms, runner, slow_http, retries=2, retry_interval=0)
    assert fw.status("fwv")["fwv"] != "9.9.9"  # the old version booted
    wait_fw(csms, "Installing")
    fw = runner.reboot(fw)
    wait_fw(csms, "Installed")
    assert fw_statuses(csms) == ["Downloading", "Downloading", "Downloaded", "Installing",
                                 "Installed"]
    assert fw.status("fwv")["fwv"] == "9.9.9"
    assert not (runner.data / "fw.bundle").exists()
    assert_all_valid(csms)


def test_power_cut_during_the_last_download_attempt_is_download_failed(csms, runner,
                                                                       slow_http):
    fw = _cut_while_downloading(csms, runner, slow_http)  # retries: 1 attempt, now used
    old = fw.status("fwv")["fwv"]
    assert old != "9.9.9"
    wait_fw(csms, "DownloadFailed")
    assert fw_statuses(csms) == ["Downloading", "DownloadFailed"]
    assert fw.proc.poll() is None and fw.status("fwv")["fwv"] == old
    # Nothing half-written is left, nothing can boot it.
    assert not (runner.data / "fw.bundle").exists()
    assert not (runner.data / "app_a").exists()
    assert not (runner.data / "slot.json").exists()
    assert not (runner.data / "fwupdate.json").exists()
    assert_all_valid(csms)


def _settle(csms, runner, fw, since, timeout=90):
    """Run the firmware (restarting it when it reboots) until the update after `since`
    ends with Installed or InstallationFailed -> (fw, that status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [s for s in fw_statuses(csms, since) if s in ("Installed", "InstallationFailed",
                                                              "DownloadFailed")]
        if done:
            return fw, done[0]
        if fw.proc.poll() is not None:
            assert fw.proc.returncode == 3, fw.output()  # a reboot, never a crash
            fw = runner.start()
        time.sleep(0.1)
    raise AssertionError("the update never ended: %s" % fw_statuses(csms))


@pytest.mark.parametrize("when", ["Installing", "pointer"])
def test_power_cut_while_installing_boots_a_working_version(csms, runner, http, when):
    """SIGKILL as Installing reaches the central system (the pointer not yet switched, or
    just being switched), or right after slot.json names the new slot (before the orderly
    reboot): the next start runs the old version or the new one, never a half slot, and the
    update ends with Installed (new version) or InstallationFailed (old version)."""
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    old = fw.status("fwv")["fwv"]
    update(csms, http.url("good.bundle"))
    if when == "Installing":
        wait_fw(csms, "Installing")
    else:
        ptr = runner.data / "slot.json"
        csms.wait_for(lambda: ptr.exists() and "app_a" in ptr.read_text(), 60)
    fw.kill()
    since = len(csms.csms.received)
    fw = runner.start()
    fw, end = _settle(csms, runner, fw, since)
    ver = fw.status("fwv")["fwv"]
    assert (end, ver) in (("Installed", "9.9.9"), ("InstallationFailed", old)), (end, ver)
    if when == "pointer":
        assert end == "Installed"
    assert boots(csms)[-1]["firmwareVersion"] == ver
    path = runner.data / "slot.json"
    if path.exists():
        assert json.loads(path.read_text())["ok"] is True
    else:  # killed before the pointer was ever written: the base image runs, as it did
        assert end == "InstallationFailed" and when == "Installing", end
    # Stable: another restart runs the same version, nothing more to report.
    n = len(csms.csms.received)
    fw.stop()
    fw = runner.start()
    csms.wait_for(lambda: len(boots(csms)) > 0 and fw.status("ocppa")["ocppa"])
    assert fw.status("fwv")["fwv"] == ver
    assert fw_statuses(csms, n) == []
    assert_all_valid(csms)
