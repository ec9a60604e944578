"""Settings written often (amp, frc, psm, fup) cost no flash write each time, end to end:
the firmware on the MicroPython unix port, `make sim`'s launcher around it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from conftest import ROOT
from e2e import Firmware, free_port

pytestmark = pytest.mark.e2e


def _get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.status, json.loads(r.read())


def _config(data):
    try:
        with open(os.path.join(str(data), "config.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _stat(data):
    try:
        st = os.stat(os.path.join(str(data), "config.json"))
        return (st.st_mtime_ns, st.st_ino, st.st_size)
    except FileNotFoundError:
        return None


def test_ten_amp_changes_write_nothing_and_survive_make_sim_shutdown(tmp_path):
    data = tmp_path / "d"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "sim.py"), "--data", str(data),
         "--api-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/api/status?filter=ocppa")[1]["ocppa"]:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the simulator did not come up"
            time.sleep(0.2)
        before = _stat(data)  # WB_CSMS wrote ocppu/ocppe at start
        assert before is not None
        t0 = time.monotonic()
        for amps in (6, 7, 8, 9, 10, 11, 12, 13, 14, 15):
            assert _get(port, "/api/set?amp=%d" % amps) == (200, {"amp": True})
        assert _get(port, "/api/set?frc=2&psm=1") == (200, {"frc": True, "psm": True})
        assert time.monotonic() - t0 < 2.0
        assert _get(port, "/api/status?filter=amp,frc,psm")[1] == {"amp": 15, "frc": 2,
                                                                   "psm": 1}
        time.sleep(0.5)
        assert _stat(data) == before  # nothing written to flash
        assert "amp" not in _config(data)
    finally:
        proc.send_signal(signal.SIGTERM)  # `make sim`: an orderly shutdown
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    cfg = _config(data)
    assert (cfg.get("amp"), cfg.get("frc"), cfg.get("psm")) == (15, 2, 1), out


def test_settings_survive_an_orderly_stop_and_a_reboot(tmp_path):
    fw = Firmware(tmp_path / "data", "")
    fw.start()
    try:
        assert fw.set(amp=9)[0] == 200
        assert "amp" not in _config(fw.data_dir)
    finally:
        fw.stop()  # SIGINT: the orderly shutdown of the unix port
    assert _config(fw.data_dir).get("amp") == 9
    fw.start()
    try:
        assert fw.status("amp") == {"amp": 9}
        assert fw.set(amp=11)[0] == 200
        # rst (a reboot) writes them too: the unix port exits with status 3 to be restarted.
        assert fw.get("/api/set?rst=true")[0] == 200
        fw.proc.wait(20)
        assert fw.proc.returncode == 3, fw.output()
    finally:
        fw.stop()
    assert _config(fw.data_dir).get("amp") == 11
