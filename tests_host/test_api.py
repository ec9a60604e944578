"""firmware/api.py served for real on 127.0.0.1 and queried with urllib (go-e API v2 style)."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import MICROPYPATH, free_port, micropython_binary, mp_env

from firmware.api import Api
from firmware.config import Config

SECRET_PEM = "-----BEGIN PRIVATE KEY-----\nMIIsecretkey\n-----END PRIVATE KEY-----\n"


class Runtime:
    """Keys of a runtime part of the firmware: `car` read-only, `led` writable."""

    def __init__(self):
        self.led = 0

    def status(self, out):
        out["car"] = 1
        out["led"] = self.led

    def owns(self, key):
        return key in ("car", "led")

    def check(self, key, value):
        if key == "car":
            return "read-only"
        return None if value in (0, 1) else "expected 0 or 1"

    def apply(self, changes):
        self.led = changes["led"]


class Sim:
    def control(self, params):
        if params.get("cp") not in ("A", "B", "C"):
            raise ValueError("bad cp")
        return {"cp": params["cp"]}


class Served:
    """The API on its own event loop in a thread; urllib calls from the test thread."""

    def __init__(self, tmp_path, sim=None):
        self.config = Config(str(tmp_path))
        self.runtime = Runtime()
        self.api = Api(self.config, (self.runtime,), sim=sim)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.api.start("127.0.0.1", 0))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        self.port = self.api.server.port

    def get(self, path, auth=None, raw=False):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path))
        if auth is not None:
            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            r = urllib.request.urlopen(req, timeout=5)
            code, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            code, headers, body = e.code, e.headers, e.read()
        assert headers["Content-Type"] == "application/json"
        self.bodies.append(body)
        return (code, json.loads(body), headers) if raw else (code, json.loads(body))

    def close(self):
        asyncio.run_coroutine_threadsafe(self.api.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    bodies = None


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path, sim=Sim())
    s.bodies = []
    yield s
    s.close()


def q(**kw):
    return "&".join(k + "=" + urllib.parse.quote(json.dumps(v)) for k, v in kw.items())


def test_status_has_config_and_provider_keys(served):
    code, body = served.get("/api/status")
    assert code == 200
    for k in ("ocppe", "ocppu", "ocpph", "ocppr", "amp", "ama", "frc", "dwo", "car", "led"):
        assert k in body
    assert body["amp"] == 16 and body["ocpph"] == 300 and body["dwo"] is None


def test_filter_returns_only_the_named_keys(served):
    assert served.get("/api/status?filter=amp,car,nosuchkey") == (200, {"amp": 16, "car": 1})
    assert served.get("/api/status?filter=") == (200, {})


def test_set_applies_json_values_across_providers(served):
    code, body = served.get("/api/set?" + q(amp=10, ocppu="wss://h.example/ocpp/CP1", led=1))
    assert (code, body) == (200, {"amp": True, "ocppu": True, "led": True})
    assert served.config.get("ocppu") == "wss://h.example/ocpp/CP1"
    assert served.runtime.led == 1
    assert served.get("/api/status?filter=amp,ocpph")[1] == {"amp": 10, "ocpph": 300}
    assert served.get("/api/set?" + q(ocpph=60))[0] == 200
    assert served.config.get("HeartbeatInterval") == 60


@pytest.mark.parametrize(
    "bad,reason",
    [
        ("frc=9", "out of range"),
        ("nosuch=1", "unknown key"),
        ("car=2", "read-only"),
        ("led=5", "expected 0 or 1"),
        ("ocppu=ws%3A%2F%2Fnot-json", "malformed JSON"),
        ("HeartbeatInterval=60", "unknown key"),
    ],
)
def test_one_bad_key_makes_400_and_applies_nothing(served, bad, reason):
    code, body = served.get("/api/set?" + q(amp=10, led=1) + "&" + bad)
    key = bad.split("=")[0]
    assert code == 400 and list(body) == [key] and body[key].startswith(reason)
    assert served.config.get("amp") == 16 and served.runtime.led == 0


def test_rules_across_keys_see_the_whole_request(served):
    code, body = served.get("/api/set?" + q(ama=32, amp=20))
    assert code == 200
    code, body = served.get("/api/set?" + q(ama=16, amp=20, led=5))
    assert code == 400 and list(body) == ["led"]
    assert served.config.get("ama") == 32 and served.runtime.led == 0


def test_amp_up_to_32_and_dwo_as_a_number_as_go_e_clients_send_them(served):
    # evcc sends its own maximum (amp=32) where ama is 16; goecharger-api-lite dwo=2500.0.
    assert served.get("/api/set?amp=32&dwo=2500.0") == (200, {"amp": True, "dwo": True})
    assert served.get("/api/status?filter=amp,ama,dwo")[1] == {"amp": 32, "ama": 16,
                                                               "dwo": 2500.0}
    assert served.get("/api/set?dwo=null")[0] == 200 and served.config.get("dwo") is None


def test_set_without_keys_is_400(served):
    assert served.get("/api/set")[0] == 400


def test_unknown_path_is_404_json(served):
    assert served.get("/nope") == (404, {"error": "not found"})
    assert served.get("/api/statusx")[0] == 404


def test_malformed_percent_encoding_is_400(served):
    assert served.get("/api/set?amp=%G0") == (400, {"error": "malformed query"})
    assert served.config.get("amp") == 16


def test_oversized_headers_are_431(served):
    s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    s.sendall(b"GET /api/status HTTP/1.1\r\nX-Pad: " + b"x" * 6000 + b"\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 431 ")
    assert b"application/json" in data


def test_secrets_are_write_only(served):
    code, body = served.get(
        "/api/set?" + q(ocppck=SECRET_PEM, wke="wifi-secret-1", ocppcc="-----BEGIN CERT")
    )
    assert code == 200
    assert served.config.ocpp_set("AuthorizationKey", "authkey-secret-1234") == "Accepted"
    code, body = served.get("/api/status")
    assert body["ocppck"] is True and body["wke"] is True and body["apw"] is False
    assert body["ocppcc"] == "-----BEGIN CERT"  # not a secret
    served.get("/api/status?filter=ocppck,wke,apw")
    served.get("/api/set?" + q(ocppck=SECRET_PEM, amp=99))  # 400 must not echo the value
    for raw in served.bodies:
        for secret in (b"MIIsecretkey", b"wifi-secret-1", b"authkey-secret"):
            assert secret not in raw


def test_api_password_requires_basic_auth(served):
    assert served.get("/api/set?" + q(apw="s3cret"))[0] == 200
    code, body, headers = served.get("/api/status", raw=True)
    assert code == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert served.get("/api/status", auth="anyone:wrong")[0] == 401
    code, body = served.get("/api/status?filter=apw", auth="anyone:s3cret")
    assert (code, body) == (200, {"apw": True})
    assert served.get("/api/set?" + q(amp=8), auth="x:s3cret")[0] == 200
    assert served.get("/api/set?" + q(amp=9))[0] == 401
    assert served.config.get("amp") == 8
    assert served.get("/nope", auth="x:s3cret")[0] == 404
    assert b"s3cret" not in b"".join(served.bodies)


def test_sim_control(served):
    assert served.get("/api/sim?cp=C") == (200, {"cp": "C"})
    assert served.get("/api/sim?cp=Z") == (400, {"error": "bad cp"})


def test_sim_is_404_without_a_simulator(tmp_path):
    s = Served(tmp_path, sim=None)
    s.bodies = []
    try:
        assert s.get("/api/sim?cp=C")[0] == 404
    finally:
        s.close()


def test_api_on_micropython(tmp_path):
    port = free_port()
    code = """
import asyncio
from firmware.config import Config
from firmware.api import Api
async def main():
    api = Api(Config(%r))
    await api.start("127.0.0.1", %d)
    print("ready")
    await asyncio.sleep(10)
asyncio.run(main())
""" % (str(tmp_path), port)
    p = subprocess.Popen(
        [micropython_binary(), "-X", "heapsize=512k", "-c", code],  # from source, every feature
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=mp_env({"MICROPYPATH": ".frozen" + os.pathsep + MICROPYPATH}),
    )
    s = Served.__new__(Served)
    s.port, s.bodies = port, []
    try:
        deadline = time.monotonic() + 10
        while b"ready" not in p.stdout.readline():
            assert time.monotonic() < deadline and p.poll() is None, p.stderr.read()
        assert s.get("/api/set?" + q(amp=10, ocppu="ws://127.0.0.1:9000/CP1")) == (
            200,
            {"amp": True, "ocppu": True},
        )
        assert s.get("/api/set?" + q(amp=10, frc=7))[0] == 400
        assert s.get("/api/set?" + q(ocppck=SECRET_PEM))[0] == 200
        code, body = s.get("/api/status?filter=amp,ocppu,ocppck,frc")
        assert body == {"amp": 10, "ocppu": "ws://127.0.0.1:9000/CP1", "ocppck": True, "frc": 0}
        assert s.get("/x")[0] == 404
        assert s.get("/api/set?" + q(apw="pw"))[0] == 200
        assert s.get("/api/status")[0] == 401
        assert s.get("/api/status?filter=amp", auth="u:pw") == (200, {"amp": 10})
        assert b"MIIsecretkey" not in b"".join(s.bodies)
    finally:
        p.kill()
        p.wait(5)
        p.stdout.close()
        p.stderr.close()
    assert Config(str(tmp_path)).get("amp") == 10  # the board wrote the same file format


@pytest.mark.parametrize("text", ["[" * 5000, "{\"a\":" * 3000, "1e400", "-" + "9" * 5000])
def test_set_with_nested_or_huge_json_is_a_400_and_changes_nothing(tmp_path, text):
    """Issue 14 item 4, the same cause on the local API: json.loads of a deep nesting raises
    RecursionError (MemoryError on MicroPython), not ValueError."""
    api = Api(Config(str(tmp_path)), (Runtime(),))
    status, body = api.set({"amp": text, "led": "1"})
    assert status == 400 and "amp" in body
    assert api.config.get("amp") == 16


def test_a_filtered_read_asks_only_the_providers_of_its_keys(tmp_path):
    class Costly(Runtime):
        calls = 0

        def status(self, out):
            Costly.calls += 1
            out["cards"] = [{}] * 10

        def owns(self, key):
            return key == "cards"

    api = Api(Config(str(tmp_path)), (Runtime(), Costly()))
    assert api.status(["car", "amp", "nope"]) == {"car": 1, "amp": 16}
    assert Costly.calls == 0
    assert api.status(["cards"]) == {"cards": [{}] * 10} and Costly.calls == 1
    assert "cards" in api.status() and Costly.calls == 2
