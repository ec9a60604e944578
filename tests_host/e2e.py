"""End-to-end harness: the firmware as a real process on the MicroPython unix port, the
demo central system (tools/csms.py, built on the `ocpp` package) in a background thread,
both on 127.0.0.1. Nothing here mocks a peer.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from conftest import ROOT, micropython_binary, mp_env

sys.path.insert(0, os.path.join(ROOT, "tools"))

from csms import DemoCSMS  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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


class Firmware:
    """The firmware (main.py) on the MicroPython unix port, with the simulated hardware."""

    def __init__(self, data_dir, csms_url="", heap="512k", env=None):
        self.data_dir = str(data_dir)
        self.csms_url = csms_url
        self.heap = heap
        self.extra_env = env or {}
        self.api_port = free_port()
        self.proc = None
        self.lines = []
        # Where main.py and the modules come from (bench: the .mpy build).
        self.main_py = os.path.join(ROOT, "main.py")
        self.mp_path = None
        self._reader = None

    def start(self):
        env = mp_env(
            {
                "WB_DATA": self.data_dir,
                "WB_API_PORT": str(self.api_port),
                "WB_API_HOST": "127.0.0.1",
                "WB_CSMS": self.csms_url,
            }
        )
        if self.mp_path:
            env["MICROPYPATH"] = os.pathsep.join([".frozen", self.mp_path])
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", "heapsize=" + self.heap, self.main_py],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        self.wait_api()
        return self

    def _read(self, proc):
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines[-200:])

    def wait_api(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError("firmware exited %s:\n%s" % (code, self.output()))
            try:
                self.get("/api/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
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
        from urllib.parse import urlencode

        return self.get("/api/sim?" + urlencode(params))

    def wait_status(self, predicate, timeout=20.0, keys=()):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status(*keys)
            if predicate(last):
                return last
            time.sleep(0.1)
        raise TimeoutError("status never matched; last %r\n%s" % (last, self.output()))

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
