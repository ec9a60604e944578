"""The firmware frozen into the official MicroPython unix port built 32-bit (`make image`,
tools/mp32.py: the ESP32's word size), as a frozen ESP32 image runs it.

The binary is built once and cached under build/ (again only when a frozen file changes).
Skipped where ../shared/tools/micropython32/build is absent. main.py logs where
firmware.app came from: "firmware/app.py" for a frozen module, a file path otherwise.
"""

import http.client
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, check_ocpp
from e2e import CsmsThread, Firmware, free_port

sys.path.insert(0, os.path.join(ROOT, "tools"))

import mp32  # noqa: E402

pytestmark = pytest.mark.e2e

FROZEN = "firmware/app.py"
# The heap of the session below: what a plain ESP32 leaves MicroPython with WiFi and one TLS
# link up (about 100-110 KB), with a margin. `make bench` measures the real minimum.
HEAP = "128k"


@pytest.fixture(scope="session")
def frozen32():
    reason = mp32.skip_reason()
    if reason:
        pytest.skip(reason)
    return mp32.frozen()


def test_frozen_build_runs_a_charging_session(tmp_path, frozen32):
    csms = CsmsThread(heartbeat_interval=2)
    csms.start()
    fw = Firmware(tmp_path / "data", csms.url(), heap=HEAP)
    fw.exe = frozen32
    fw.frozen = True
    c = csms.csms
    try:
        fw.start()
        assert fw.firmware_from() == FROZEN, fw.output()
        fw.wait_status(lambda s: s["ocppa"], keys=("ocppa",), timeout=30)
        assert fw.set(ocppi=5)[0] == 200
        fw.sim(cp="B")
        fw.sim(card="FROZEN32")
        fw.sim(cp="C", load=16)
        fw.wait_status(lambda s: s["car"] == 2, keys=("car",), timeout=30)
        csms.wait_for(lambda: any(a == "MeterValues" and "transactionId" in p
                                  for _, a, p in c.received), timeout=30)
        fw.sim(cp="B")
        fw.sim(cp="A")
        csms.wait_for(lambda: "StopTransaction" in c.actions(), timeout=30)
        assert fw.proc.poll() is None, fw.output()
    finally:
        fw.stop()
        csms.close()
        print("---- firmware log ----\n" + fw.output())  # shown when the test fails
    boots = [p for _, a, p in c.received if a == "BootNotification"]
    starts = [p for _, a, p in c.received if a == "StartTransaction"]
    stops = [p for _, a, p in c.received if a == "StopTransaction"]
    assert len(boots) == 1 and len(starts) == 1 and len(stops) == 1
    assert starts[0]["idTag"] == "FROZEN32"
    assert stops[0]["meterStop"] > starts[0]["meterStart"]
    for _, action, payload in c.received:
        check_ocpp(action, payload)
    assert not [line for line in fw.lines if "Error" in line or "Traceback" in line]


def test_frozen_copy_wins_over_source_files_on_the_path(tmp_path, frozen32):
    # The worst case: the repository itself on MICROPYPATH, and beside main.py (MicroPython
    # puts the script's folder first on sys.path). main.py must still run the frozen copy.
    fw = Firmware(tmp_path / "data", "", heap=HEAP)
    fw.exe = frozen32
    fw.mp_path = os.pathsep.join([os.path.join(ROOT, "lib"), ROOT])
    try:
        fw.start()
        assert fw.firmware_from() == FROZEN, fw.output()
    finally:
        fw.stop()


def test_make_sim_runs_the_frozen_firmware_of_the_given_binary(tmp_path, frozen32):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "sim.py"), "--data", str(tmp_path / "d"),
         "--api-port", str(port), "--micropython", frozen32, "--heap", HEAP],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )
    try:
        import json
        import urllib.request

        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = "http://127.0.0.1:%d/api/status?filter=ocppa" % port
                with urllib.request.urlopen(url, timeout=5) as r:
                    status = json.loads(r.read())
                if status["ocppa"]:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == {"ocppa": True}
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, out
    assert "I main: firmware " in out and " from %s\n" % FROZEN in out, out


def test_static_heap_is_measured_for_every_frozen_module(frozen32):
    total, rows = mp32.static_heap(frozen32)
    measured = {name for name, _, ours in rows if ours}
    assert measured == set(mp32.frozen_modules())
    # Each import charged with its own heap: the parts add up to the whole.
    assert abs(sum(size for _, size, _ in rows) - total) < 1024, (total, rows)
    assert all(size >= 0 for _, size, _ in rows)


_QSTRS = """
import micropython
def n():
    micropython.qstr_info()  # "qstr pool: n_pool=1, n_qstr=N, ..."
n()
for m in MODS:
    __import__(m)
n()
"""


def test_importing_a_frozen_module_by_its_dotted_name_interns_nothing(frozen32):
    # Every module of the image, by the names the firmware imports them with (the router's
    # message modules, the lazy features, asyncio's submodules): no qstr interned on the
    # heap, where its pool would stay for good (firmware/_qnames.py).
    mods = sorted(set(mp32.frozen_modules()) - {"firmware._qnames"})
    mods += ["asyncio." + m for m in ("core", "event", "funcs", "lock", "stream")]
    code = _QSTRS.replace("MODS", repr(mods))
    r = subprocess.run([frozen32, "-X", "heapsize=4m", "-c", code], capture_output=True,
                       text=True, env=dict(os.environ, MICROPYPATH=".frozen"),
                       cwd=os.path.dirname(frozen32), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    counts = [line.split("n_qstr=")[1].split(",")[0] for line in r.stdout.splitlines()
              if line.startswith("qstr pool:")]
    assert len(counts) == 2 and counts[0] == counts[1], r.stdout


# Short of memory during a session: the simulator's `ballast` control holds heap in 256-byte
# blocks, raised step by step until the firmware runs out (wherever its minimum lies today),
# then let go. It may refuse work meanwhile (an API request answered 503 or its connection
# dropped, a sample not taken), never lose journaled data silently.
_SHORT = (http.client.HTTPException, ConnectionError)


def _status(fw, pred, keys, timeout):
    """Poll the status; an answer refused for want of memory (503) is asked again."""
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        try:
            code, body = fw.get("/api/status?filter=" + ",".join(keys))
        except _SHORT:  # an answer cut short, a connection dropped, for want of memory
            time.sleep(0.3)
            continue
        if code == 200 and pred(body):
            return body
        assert code in (200, 503), (code, body)
        time.sleep(0.3)
    raise AssertionError("status never became true: %r" % (body,))


def _again(ask):
    """ask() -> (code, body), asked again while the firmware is short of memory (503, or
    the connection dropped), up to 50 times."""
    for _ in range(50):
        try:
            code, body = ask()
        except _SHORT:
            code, body = 503, None
        if code != 503:
            break
        time.sleep(0.3)
    return code, body


def _set(fw, **kw):
    return _again(lambda: fw.set(**kw))[0]


def _sim(fw, **kw):
    code, body = _again(
        lambda: fw.get("/api/sim?" + "&".join("%s=%s" % kv for kv in kw.items())))
    if code != 503:
        assert code == 200, body


def test_short_of_memory_nothing_journaled_is_lost_and_the_shortage_shows(tmp_path, frozen32):
    csms = CsmsThread(heartbeat_interval=300)
    csms.start()
    data = tmp_path / "data"
    fw = Firmware(data, csms.url(), heap=HEAP)
    fw.exe = frozen32
    fw.frozen = True
    c = csms.csms
    try:
        fw.start()
        _status(fw, lambda s: s["ocppa"], ("ocppa",), 60)
        assert _set(fw, ocppi=1) == 200  # a sample a second: a journal write and a send
        _sim(fw, cp="B")
        _sim(fw, card="TIGHT80")
        _sim(fw, cp="C", load=16)
        _status(fw, lambda s: s["car"] == 2, ("car",), 60)
        csms.wait_for(lambda: "StartTransaction" in c.actions(), timeout=30)
        # Squeeze: more ballast each time (held 4 s, then let go by the simulator itself)
        # until the firmware reports a shortage; then once more at that level, charging on.
        st = {"oom": 0}
        for kib in range(8, 200, 4):
            _sim(fw, ballast="%d:4" % kib)
            time.sleep(1)
            st = _status(fw, lambda s: True, ("oom",), 30)
            if st["oom"] > 0:
                break
        time.sleep(4)
        _sim(fw, ballast="%d:6" % (kib + 4))  # a little tighter: the sends fail too
        time.sleep(8)
        _sim(fw, cp="B")
        _sim(fw, cp="A")
        deadline = time.monotonic() + 60
        while "I txn: stopped" not in fw.output() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "I txn: stopped" in fw.output()  # the Stop is journaled
        st = _status(fw, lambda s: True, ("jq", "oom", "mvm", "ocpple"), 30)
        assert fw.proc.poll() is None, fw.output()  # it was short of memory, still running
    finally:
        fw.stop()
        print("---- firmware log (squeezed) ----\n" + fw.output())
    # The shortage was noticed and told, not hidden: counted, and shown as the last error.
    assert st["oom"] > 0, st
    assert "out of memory" in fw.output()
    # Power back with room to spare (a reboot frees the heap): everything journaled arrives.
    fw2 = Firmware(data, csms.url(), heap=HEAP)  # a reboot, as after a shortage
    fw2.exe = frozen32
    fw2.frozen = True
    try:
        fw2.start()
        fw2.wait_status(lambda s: s["ocppa"] and s["jq"] == 0, keys=("ocppa", "jq"),
                        timeout=120)
    finally:
        fw2.stop()
        csms.close()
    mvs = [p for _, a, p in c.received if a == "MeterValues" and "transactionId" in p]
    starts = [p for _, a, p in c.received if a == "StartTransaction"]
    stops = [p for _, a, p in c.received if a == "StopTransaction"]
    assert len(starts) == 1 and len(stops) == 1 and stops[0]["reason"] == "EVDisconnected"
    # Every sample is either delivered or counted as not taken (about one a second).
    assert len(mvs) + st["mvm"] >= 8, (len(mvs), st)
    # Nothing journaled went to quarantine as "damaged" for want of memory.
    assert not (data / "journal" / "bad.log").exists()
    for _, action, payload in c.received:
        check_ocpp(action, payload)
