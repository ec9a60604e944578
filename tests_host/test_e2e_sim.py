"""`make sim` (tools/sim.py) and first-time setup (setup.json), end to end."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from e2e import free_port

pytestmark = pytest.mark.e2e


def _get(port, path):
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def test_make_sim_runs_the_firmware_against_the_bundled_central_system(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "sim.py"), "--data", str(tmp_path / "d"),
         "--api-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            try:
                status = _get(port, "/api/status?filter=ocppa,ocppu")
                if status["ocppa"]:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status and status["ocppa"] is True, status
        assert status["ocppu"].startswith("ws://127.0.0.1:")
        state = _get(port, "/api/sim?cp=B")
        assert isinstance(state, dict)
        # The data directory stands in for flash: the URL was persisted there.
        assert os.path.exists(str(tmp_path / "d" / "config.json"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, out
    # The demo central system logs every message readably.
    assert "BootNotification" in out


def test_setup_file_is_applied_once_and_removed(csms, start_firmware, tmp_path):
    setup = {"ocppu": csms.url(), "ocppe": True, "apw": "s3cret-pw", "wss": "home"}
    # The API answers (401 now that the password is set): it is up.
    fw = start_firmware(setup=setup)
    csms.wait_for(lambda: "BootNotification" in csms.csms.actions())
    assert not (tmp_path / "data" / "setup.json").exists()
    code, _ = fw.get("/api/status")
    assert code == 401
    code, body = fw.get("/api/status?filter=ocppu,apw,wss", auth="any:s3cret-pw")
    assert code == 200 and body == {"ocppu": csms.url(), "apw": True, "wss": "home"}


def test_bad_setup_file_changes_nothing_and_is_set_aside(start_firmware, tmp_path):
    fw = start_firmware(setup={"ocppu": "http://not-websocket", "apw": "x"})
    st = fw.status("ocppu", "apw", "ocpple")
    assert st["ocppu"] == "" and st["apw"] is False
    assert "setup" in st["ocpple"]
    data = tmp_path / "data"
    assert (data / "setup.json.rejected").exists() and not (data / "setup.json").exists()
