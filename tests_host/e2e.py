"""End-to-end harness: the firmware as a real process on the MicroPython unix port, the
demo central system (tools/csms.py, built on the `ocpp` package) in a background thread,
both on 127.0.0.1. Nothing here mocks a peer.

The fixtures (a pytest plugin, loaded by conftest.py's `pytest_plugins`):
- `start_csms(port=0, ssl_context=None, **options)` starts a demo central system and returns
  its CsmsThread; `options` go to DemoCSMS (heartbeat_interval, boot_statuses,
  retry_interval, cards, ...). Closed after the test; every CALL it received must then be
  valid for the official OCPP 1.6 schemas.
- `csms`: one started central system; its options from `@pytest.mark.csms(**options)` on
  the test or the module (`pytestmark`). The charge point id is CP1: `csms.url()`.
- `start_firmware(url="", data=None, setup=None, config=None, accepted=False, heap="512k",
  env=None, api_port=None)` starts the firmware and returns its Firmware, once the local API
  answers. `url` is the central system's ("" = OCPP off); `data` the directory that stands
  in for flash (default tmp_path/"data": a second start is a reboot on the same data);
  `setup` a dict written to setup.json before the start (first-time setup); `config`
  local-API settings applied after the start (`/api/set`); `accepted` waits until the
  central system accepted the boot; `env` extra environment; `api_port` the local API's
  port (default a free one). Every firmware started is stopped after the test and its log
  printed (pytest shows it when the test fails).

Helpers: `received(csms, action)`, `assert_all_valid(csms)`, `energy_wh(meter_values)`;
Firmware.status/wait_status (the local API), sim/wait_sim (the simulated hardware),
wait_accepted.
"""

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import ROOT, check_ocpp, free_port, micropython_binary, mp_env

sys.path.insert(0, os.path.join(ROOT, "tools"))

from csms import DemoCSMS  # noqa: E402

_PAGE = []


def web_page():
    """The gzipped web page (tools/webpage.py), built once per test process."""
    if not _PAGE:
        import webpage

        out = os.path.join(ROOT, "build", "web", "index.html.gz")
        webpage.build(out)
        _PAGE.append(out)
    return _PAGE[0]


class CsmsThread:
    """A DemoCSMS running on its own event loop in a daemon thread."""

    def __init__(self, **kw):
        kw.setdefault("quiet", True)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.csms = self.run(self._make(kw))
        self.port = None

    async def _make(self, kw):
        return DemoCSMS(**kw)

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, port=0, ssl_context=None):
        self.port = self.run(self.csms.start("127.0.0.1", port, ssl_context))
        return self.port

    def url(self, cp_id="CP1", scheme="ws", host="127.0.0.1"):
        return "%s://%s:%d/ocpp/%s" % (scheme, host, self.port, cp_id)

    def stop(self):
        self.run(self.csms.stop())

    def wait_for(self, predicate, timeout=20.0):
        return self.run(self.csms.wait_for(predicate, timeout), timeout + 5)

    def call(self, cp_id, payload, timeout=20):
        """Send a request (an ocpp.v16.call object) to a connected charge point."""

        async def go():
            cp = self.csms.charge_points[cp_id]
            return await cp.call(payload, suppress=False)

        return self.run(go(), timeout)

    def send_raw(self, cp_id, text):
        self.run(self.csms.charge_points[cp_id].send_raw(text))

    def close(self):
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class PortTaken(RuntimeError):
    """The firmware could not bind its local API port: another process took it first."""


class Firmware:
    """The firmware (main.py) on the MicroPython unix port, with the simulated hardware."""

    def __init__(self, data_dir, csms_url="", heap="512k", env=None, api_port=None):
        self.data_dir = str(data_dir)
        self.csms_url = csms_url
        self.heap = heap
        self.extra_env = env or {}
        self._own_port = api_port is None  # chosen here: another one if it is taken
        self.api_port = api_port or free_port()
        self.proc = None
        self.lines = []
        # Where main.py and the modules come from (bench: the .mpy build), and the folder
        # it runs in (mp_path may be relative to it).
        self.main_py = os.path.join(ROOT, "main.py")
        self.mp_path = None
        self.cwd = ROOT
        # The MicroPython binary (default: the unix port from the venv); `frozen` when the
        # firmware is frozen into it: then only its frozen modules are on the path.
        self.exe = None
        self.frozen = False
        self._reader = None

    def start(self):
        for _ in range(3):
            self._spawn()
            try:
                self.wait_api()
                return self
            except PortTaken:
                if not self._own_port:
                    raise
                self.api_port = free_port()
        raise RuntimeError("no free port for the local API:\n" + self.output())

    def _spawn(self):
        env = mp_env(
            {
                "WB_DATA": self.data_dir,
                "WB_API_PORT": str(self.api_port),
                "WB_API_HOST": "127.0.0.1",
                "WB_CSMS": self.csms_url,
                "WB_PAGE": web_page(),
            }
        )
        if self.frozen:
            env["MICROPYPATH"] = ".frozen"
        elif self.mp_path:
            env["MICROPYPATH"] = os.pathsep.join([".frozen", self.mp_path])
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [self.exe or micropython_binary(), "-X", "heapsize=" + self.heap, self.main_py],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=self.cwd,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc):
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def firmware_from(self):
        """Where firmware.app was loaded from, as main.py logs it at start: "firmware/app.py"
        when frozen into the binary, the file's path otherwise (None before that line)."""
        for line in list(self.lines):
            if line.startswith("I main: firmware "):
                return line.rsplit(" ", 1)[1]
        return None

    def output(self):
        return "\n".join(self.lines[-200:])

    def wait_line(self, text, timeout=10.0, count=1):
        """The count-th output line holding `text` (None after `timeout` s without it). Its
        output is read by a thread of its own: a line the firmware printed before it sent a
        message may come after the central system has that message."""
        end = time.monotonic() + timeout
        while True:
            found = [line for line in list(self.lines) if text in line]
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > end:
                return None
            time.sleep(0.05)

    def listening(self):
        """This process has bound its local API port (httpd logs it right after the bind)."""
        mine = " %d" % self.api_port
        return any(line.startswith("I httpd: listening on ") and line.endswith(mine)
                   for line in list(self.lines))

    def wait_api(self, timeout=20):
        """Until the local API of THIS process answers. free_port() only said the port was
        free a moment ago: a firmware started beside it (parallel tests) may bind it first,
        and would answer in its place; this one then exits with EADDRINUSE (PortTaken)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(5)  # the whole log, traceback included
                if "EADDRINUSE" in self.output():
                    raise PortTaken(self.output())
                code = self.proc.returncode
                raise RuntimeError("firmware exited %s:\n%s" % (code, self.output()))
            if self.listening():
                try:
                    self.get("/api/status?filter=rbt")  # a small answer: the API is up
                    return
                except (OSError, urllib.error.URLError, http.client.HTTPException):
                    pass
            time.sleep(0.05)
        raise TimeoutError("local API did not come up:\n" + self.output())

    def get(self, path, auth=None):
        """GET on the local API; returns (status, parsed JSON body)."""
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.api_port, path))
        if auth:
            import base64

            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def status(self, *keys):
        path = "/api/status" + ("?filter=" + ",".join(keys) if keys else "")
        code, body = self.get(path)
        assert code == 200, body
        return body

    def set(self, **values):
        from urllib.parse import quote

        q = "&".join("%s=%s" % (k, quote(json.dumps(v))) for k, v in values.items())
        return self.get("/api/set?" + q)

    def sim(self, **params):
        """Drive the simulated hardware (`/api/sim`, e.g. cp="C", card="TAG", rcd="trip");
        returns its state after the change (relay, duty, amps, cp, lock_state, ...)."""
        from urllib.parse import urlencode

        code, state = self.get("/api/sim?" + urlencode(params))
        assert code == 200, state
        return state

    def wait_sim(self, predicate, timeout=10.0):
        """Poll the simulated hardware until predicate(state); returns that state."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.sim()
            if predicate(last):
                return last
            time.sleep(0.05)
        raise TimeoutError("sim state never matched; last %r\n%s" % (last, self.output()))

    def wait_status(self, predicate, timeout=20.0, keys=()):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status(*keys)
            if predicate(last):
                return last
            time.sleep(0.1)
        raise TimeoutError("status never matched; last %r\n%s" % (last, self.output()))

    def wait_accepted(self, timeout=20.0):
        """Until the central system has accepted the boot (`ocppa`)."""
        return self.wait_status(lambda s: s["ocppa"], timeout, ("ocppa",))

    def kill(self):
        """SIGKILL: a power cut."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        """An orderly shutdown: SIGINT (KeyboardInterrupt on the unix port, which cannot
        catch SIGTERM), as `make sim` does on SIGTERM/SIGINT; SIGKILL if it hangs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---------------------------------------------------------------- what the CSMS saw


def received(csms, action, since=0):
    """The payloads of every `action` CALL the central system received, from index `since`
    of its record on."""
    return [p for _, a, p in csms.csms.received[since:] if a == action]


def assert_calls_valid(csms):
    """Every CALL the central system received is valid for the OCPP 1.6 schemas."""
    for _, action, payload in csms.csms.received:
        check_ocpp(action, payload)


def assert_all_valid(csms):
    """Every CALL received is schema-valid and every request was answered by a CALLRESULT."""
    assert_calls_valid(csms)
    for _, frame in csms.csms.answers:
        assert frame[0] == 3, frame


def energy_wh(meter_values):
    """The Energy.Active.Import.Register values (Wh) of a MeterValues payload."""
    out = []
    for m in meter_values["meterValue"]:
        for sv in m["sampledValue"]:
            if sv.get("measurand") == "Energy.Active.Import.Register":
                assert sv["unit"] == "Wh", sv
                out.append(int(sv["value"]))
    return out


# ---------------------------------------------------------------- fixtures


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "csms(**options): DemoCSMS options of the `csms` fixture (tests_host/e2e.py)"
    )


@pytest.fixture
def start_csms():
    """start_csms(port=0, ssl_context=None, **DemoCSMS options) -> a started CsmsThread."""
    started = []

    def start(port=0, ssl_context=None, **options):
        c = CsmsThread(**options)
        started.append(c)
        c.start(port, ssl_context)
        return c

    yield start
    for c in started:
        c.close()
    for c in started:
        assert_calls_valid(c)


@pytest.fixture
def csms(request, start_csms):
    """A started central system; options from @pytest.mark.csms(**options)."""
    marker = request.node.get_closest_marker("csms")
    return start_csms(**(marker.kwargs if marker else {}))


@pytest.fixture
def start_firmware(tmp_path):
    """start_firmware(url="", data=None, setup=None, config=None, accepted=False,
    heap="512k", env=None, api_port=None) -> a started Firmware (see the module docstring)."""
    started = []

    def start(url="", data=None, setup=None, config=None, accepted=False, heap="512k",
              env=None, api_port=None):
        data = data or tmp_path / "data"
        os.makedirs(data, exist_ok=True)
        if setup is not None:
            with open(os.path.join(data, "setup.json"), "w") as f:
                json.dump(setup, f)
        fw = Firmware(data, url, heap=heap, env=env, api_port=api_port)
        started.append(fw)
        fw.start()
        if config:
            code, body = fw.set(**config)
            assert code == 200, body
        if accepted:
            fw.wait_accepted()
        return fw

    yield start
    for fw in started:
        fw.stop()
    for fw in started:
        print("---- firmware log (%s) ----\n%s" % (fw.data_dir, fw.output()))
