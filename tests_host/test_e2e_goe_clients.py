"""The three go-e API v2 clients people run against a charger, against the firmware on the
MicroPython unix port (the simulator), sending and reading exactly what their sources do:

- goecharger-api-lite (PyPI, pinned in requirements.txt) runs for real: its own HTTP session
  (aiohttp 3.9, created outside a running event loop), its status mapper, its set calls.
- evcc (Go, charger/go-e.go, charger/go-e/api.go, types2.go): the probe `filter=alw`, the
  poll `filter=alw,car,eto,nrg,wh,trx,cards,modelStatus` decoded with Go's encoding/json
  rules into evcc's typed struct (an int field refuses 2.5 or 16.0, a bool field refuses 1,
  keys match case-insensitively), and its set calls frc=2/1, amp=32, psm=1|2, su=1.
- The Home Assistant integration for the go-e API v2 (custom_components/goecharger_api2):
  its setup reads (oem,sse,typ,var; then the versions with fwv parsed as a version), its
  state and config polls, and its writes as it encodes them (aiohttp params: ints and bools
  as str(value).lower(), None as `key=null`, objects as compact JSON).
Plus: idle and slow-drip connections held open while a client polls.
"""

import asyncio
import json
import time
import urllib.request

import pytest
from e2e import CsmsThread, Firmware

pytestmark = pytest.mark.e2e


@pytest.fixture
def fw(tmp_path):
    f = Firmware(tmp_path / "data", "")  # OCPP off: standalone
    f.start()
    yield f
    f.stop()
    print("---- firmware log ----\n" + f.output())


def raw_get(fw, path):
    """(status, body text): the request line as a client writes it, nothing re-encoded."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (fw.api_port, path))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Content-Type"] == "application/json"
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def until(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise TimeoutError("condition not met")


# -- goecharger-api-lite, for real -----------------------------------------------------------
LITE = """
import json, sys
from goecharger_api_lite import GoeCharger
from goecharger_api_lite.exception import GoeChargerError
charger = GoeCharger(sys.argv[1])  # no event loop running, as in its users' scripts
out = {}
def step(name, fn):
    try:
        out[name] = fn()
    except GoeChargerError as e:
        out[name] = "GoeChargerError: %s" % e
"""


def lite(host, steps):
    """Run goecharger-api-lite in a process of its own (its session needs the main thread's
    event loop, which an earlier asyncio.run() in this test process would have closed)."""
    import subprocess
    import sys

    code = LITE + steps + "\nprint(json.dumps(out))\ndel charger\n"
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code, host],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_goecharger_api_lite(fw):
    out = lite("127.0.0.1:%d" % fw.api_port, """
step("status", lambda: charger.get_status())  # STATUS_DEFAULT through its mapper
step("full", lambda: sorted(charger.get_status(GoeCharger.STATUS_FULL)))
step("dwo", lambda: charger.set_charge_limit(2500))  # sent as dwo=2500.0
step("dwo_read", lambda: charger.get_charge_limit())
step("dwo_null", lambda: charger.set_charge_limit(None))
step("dwo_read2", lambda: charger.get_charge_limit())
step("amp", lambda: charger.set_ampere(10))
step("amp_read", lambda: charger.get_ampere())
step("frc", lambda: charger.set_charging_mode(GoeCharger.SettableValueEnum.ChargingMode.on))
step("psm", lambda: charger.set_phase_mode(GoeCharger.SettableValueEnum.PhaseMode.three))
step("ust", lambda: charger.set_cable_lock_mode(
    GoeCharger.SettableValueEnum.CableLockMode.automatic))
step("ama", lambda: charger.set_absolute_max_current(16))
step("after", lambda: charger.get_status())
step("fna", lambda: charger.set_key("fna", "garage"))  # a key this charger does not have
""")
    s = out["status"]
    assert s["car_state"] == "Idle" and s["device_model"] == "11KW/16A"
    assert s["charging_mode"] == "neutral" and s["error"] is None
    assert "energy" in out["full"] and "temperature" in out["full"]
    assert out["dwo"] is None and out["dwo_read"] == {"charge_limit": 2500.0}
    assert out["dwo_read2"] == {"charge_limit": None}
    assert out["amp"] is None and out["amp_read"] == {"ampere_allowed": 10}
    assert out["frc"] is None and out["psm"] is None and out["ust"] is None
    assert out["ama"] is None
    a = out["after"]
    assert (a["charging_mode"], a["phase_mode"], a["cable_lock_mode"]) == (
        "on", "three", "automatic")
    # The contract's 400 for an unknown key, which the client reports as an error.
    assert out["fna"].startswith("GoeChargerError")


# -- evcc: Go's typed decoding -----------------------------------------------------------------
class GoError(Exception):
    pass


class Num:
    """A JSON number as written (Go decides by the literal, not by the value)."""

    def __init__(self, text):
        self.text = text
        self.integral = not any(ch in text for ch in ".eE")


INT, UINT, FLOAT, BOOL, STR = "int", "uint64", "float64", "bool", "string"
# charger/go-e/types2.go (the older Card.Energy int is the stricter of its two versions).
CARD = {"Name": STR, "Energy": INT, "CardID": BOOL}
STATUS2 = {"Fwv": STR, "Car": INT, "Alw": BOOL, "Amp": INT, "Err": INT, "Eto": UINT,
           "Psm": INT, "Stp": INT, "Tmp": INT, "Trx": INT, "Nrg": [FLOAT], "Wh": FLOAT,
           "Cards": [CARD]}


def go_decode(text, schema):
    """json.Unmarshal(text, &struct) for evcc's StatusResponse2: raises GoError where Go
    returns an error."""
    return _go(json.loads(text, parse_int=Num, parse_float=Num), schema, "")


def _go(v, t, where):
    if v is None:
        return None  # null leaves Go's zero value
    if isinstance(t, dict):
        if not isinstance(v, dict):
            raise GoError("cannot unmarshal into struct at " + where)
        out = {}
        for key in v:
            field = next((f for f in t if f == key), None)
            field = field or next((f for f in t if f.lower() == key.lower()), None)
            if field is not None:
                out[field] = _go(v[key], t[field], where + "." + key)
        return out
    if isinstance(t, list):
        if not isinstance(v, list):
            raise GoError("cannot unmarshal into slice at " + where)
        return [_go(x, t[0], where) for x in v]
    if t == BOOL:
        if not isinstance(v, bool):
            raise GoError("cannot unmarshal %r into bool at %s" % (v, where))
        return v
    if t == STR:
        if not isinstance(v, str):
            raise GoError("cannot unmarshal into string at " + where)
        return v
    if not isinstance(v, Num):
        raise GoError("cannot unmarshal %r into %s at %s" % (v, t, where))
    if t == FLOAT:
        return float(v.text)
    if not v.integral or (t == UINT and v.text.startswith("-")):
        raise GoError("cannot unmarshal number %s into %s at %s" % (v.text, t, where))
    return int(v.text)


class Evcc:
    """What evcc's go-e charger does on the local API v2, request by request."""

    POLL = "/api/status?filter=alw,car,eto,nrg,wh,trx,cards,modelStatus"

    def __init__(self, fw):
        self.fw = fw
        code, text = raw_get(fw, "/api/status?filter=alw")  # upgradeV2: the v2 probe
        assert code == 200
        go_decode(text, STATUS2)

    def status(self):
        code, text = raw_get(self.fw, self.POLL)
        assert code == 200, text
        return go_decode(text, STATUS2)

    def charge_status(self):
        car = self.status().get("Car") or 0
        states = {1: "A", 2: "C", 3: "B", 4: "B"}
        if car not in states:
            raise GoError("car unknown result: %d" % car)
        return states[car]

    def update(self, payload):
        code, text = raw_get(self.fw, "/api/set?" + payload)
        if not 200 <= code < 300:  # evcc's GetJSON: a non-2xx answer is an error
            raise GoError("%d %s" % (code, text))
        return json.loads(text)  # UpdateResponse map[string]any

    def enable(self, on):
        return self.update("frc=%d" % (2 if on else 1))

    def max_current(self, amps):
        return self.update("amp=%d" % amps)

    def phases(self, n):
        return self.update("psm=%d" % (2 if n == 3 else n))

    def wakeup(self):
        return self.update("su=1")

    def identify(self):
        s = self.status()
        trx = s.get("Trx") or 0
        return s["Cards"][trx - 1]["Name"] if trx > 0 else ""

    def power(self):
        nrg = self.status().get("Nrg") or []
        return nrg[11] if len(nrg) == 16 else 0


def test_evcc_controls_a_standalone_charge(fw):
    ev = Evcc(fw)
    s = ev.status()
    assert s["Car"] == 1 and s["Alw"] is False and len(s["Nrg"]) == 16 and s["Eto"] == 0
    assert s["Cards"] and all(c == {"Name": "", "Energy": 0, "CardID": False}
                              for c in s["Cards"])
    assert ev.charge_status() == "A" and ev.identify() == ""
    fw.sim(cp="B")
    until(lambda: ev.charge_status() == "B")
    assert ev.enable(True) == {"frc": True}
    assert ev.max_current(32) == {"amp": True}  # its maximum where the installation has 16
    fw.sim(cp="C", load=32)
    until(lambda: ev.charge_status() == "C")
    until(lambda: fw.status("acu")["acu"] == 16)  # min(amp, ama, cable, ...)
    assert ev.status()["Alw"] is True and until(lambda: ev.power() > 10000)
    assert ev.phases(1) == {"psm": True} and ev.phases(3) == {"psm": True}
    assert fw.status("psm") == {"psm": 2}
    assert ev.wakeup() == {"su": True}
    until(lambda: fw.status("modelStatus")["modelStatus"] == 22)  # simulate unplugging
    until(lambda: ev.status()["Alw"] is True, timeout=20)  # and back
    assert ev.enable(False) == {"frc": True}
    until(lambda: ev.status()["Alw"] is False and ev.power() == 0)
    s = ev.status()
    assert s["Wh"] > 0 and isinstance(s["Eto"], int)


def test_evcc_identifies_the_card_of_the_session(fw):
    ev = Evcc(fw)
    assert fw.set(acs=1, cards=[{}, {"name": "Anna", "rfid": "04A1B2"}])[0] == 200
    fw.sim(cp="B")
    until(lambda: ev.charge_status() == "B")
    assert ev.status()["Trx"] is None and ev.identify() == ""
    fw.sim(card="04A1B2")  # standalone: a stored card authorizes
    until(lambda: ev.status()["Trx"] == 2)
    assert ev.identify() == "Anna"
    fw.sim(cp="C", load=10)
    until(lambda: ev.power() > 0)
    time.sleep(1.5)
    fw.sim(cp="A")
    until(lambda: ev.status()["Cards"][1]["Energy"] > 0)


def test_evcc_with_ocpp_every_enable_is_a_transaction(tmp_path):
    csms = CsmsThread(heartbeat_interval=300)
    csms.start()
    fw = Firmware(tmp_path / "data", csms.url("CP1"))
    fw.start()
    try:
        until(lambda: fw.status("ocppa")["ocppa"])
        ev = Evcc(fw)
        fw.sim(cp="B")
        until(lambda: ev.charge_status() == "B")
        # No card, no ocppd: frc=2 does not bypass the authorization.
        assert ev.enable(True) == {"frc": True}
        fw.sim(cp="C", load=16)
        time.sleep(2)
        s = fw.status("alw", "acu", "modelStatus")
        assert s == {"alw": False, "acu": None, "modelStatus": 2}
        assert ev.power() == 0 and "StartTransaction" not in csms.csms.actions()
        # The dummy card: evcc's enable now starts a transaction the central system sees.
        assert fw.set(ocppd="EVCC")[0] == 200
        assert ev.enable(False) == {"frc": True} and ev.enable(True) == {"frc": True}
        csms.wait_for(lambda: "StartTransaction" in csms.csms.actions())
        until(lambda: ev.power() > 0)
        start = [p for _, a, p in csms.csms.received if a == "StartTransaction"]
        assert start[0]["idTag"] == "EVCC"
        assert ev.enable(False) == {"frc": True}
        csms.wait_for(lambda: "StopTransaction" in csms.csms.actions())
        stop = [p for _, a, p in csms.csms.received if a == "StopTransaction"]
        assert stop[0]["reason"] == "Local"
        until(lambda: ev.power() == 0)
    finally:
        fw.stop()
        csms.close()
        print("---- firmware log ----\n" + fw.output())


# -- Home Assistant (goecharger_api2) --------------------------------------------------------
FILTER_SYSTEMS = "oem,sse,typ,var"
FILTER_VERSIONS = ("ccrv,fwc,fwv,var,cards,c0i,c1i,c2i,c3i,c4i,c5i,c6i,c7i,c8i,c9i")
FILTER_MIN_STATES = "car,modelStatus,err,nrg,tma,trx"
FILTER_IDS_ADDON = ",pakku,ppv,pgrid"
FILTER_TIMES_ADDON = ",rbt,fsptws,inva,lbp,lccfc,lccfi,lcctc,lfspt,lmsc,lpsc,lcs"
FILTER_ALL_STATES = [
    "alw,acu,adi,amt,atp,awcp,car,cards,cbl,ccu,ccw,cdi,cll,cus,ctrls,deltaa,deltap,di1,err,"
    "eto,ffb,fhz,fsp,fsptws,inva,lbp,lccfc",
    "lccfi,lcctc,lck,lfspt,lmsc,loa,lpsc,mcpea,mmp,modelStatus,nif,nrg,pakku,pgrid,pha,pnp,ppv,"
    "pvopt_averagePAkku,pvopt_averagePGrid,pvopt_averagePPv,pwm,rbc,rbt,rfb,rssi,rst,tlf,tls,"
    "tma,tpa,trx,wh,wsms,wst",
]
FILTER_ALL_CONFIG = [
    "acp,acs,ama,amp,ara,ate,att,awc,awe,awp,bac,cards,cch,cco,cfi,cid,clp,cmse,ct,cwc,cwe,"
    "dwo,esk",
    "fmt,fna,frc,frm,fst,fup,fzf,hsa,lbr,lmo,loe,lof,log,lop,lot,loty,lse,map,mca,mci,mcpd,"
    "mptwt,mpwst,nmo,pgt,po,psh,psm,psmd,rdbf,rdbs,rdef,rdes,rdre,rdpl,sch_satur,sch_sund,"
    "sch_week,sdp,sh,spl3,su,sua,sumd,tds,tof,upo,ust,zfo",
]


class HomeAssistant:
    """pygoecharger_ha.GoeChargerApiV2Bridge's requests, with its aiohttp session."""

    def __init__(self, session, port):
        self.session = session
        self.host_url = "http://127.0.0.1:%d" % port

    async def read(self, filters):
        async with self.session.get(self.host_url + "/api/status",
                                    params={"filter": filters}) as res:
            assert res.status in (200, 400)
            return await res.json()

    async def write(self, key, value):
        if value is None:
            args = f"{key}=null"
        elif isinstance(value, (bool, int, float)):
            args = {key: str(value).lower()}
        elif isinstance(value, dict):
            args = {key: json.dumps(value).replace(" ", "")}
        else:
            args = {key: '"' + str(value) + '"'}
        async with self.session.get(self.host_url + "/api/set", params=args) as res:
            body = await res.json()
            ok = res.status == 200 and key in body and body[key]
            return {key: value} if ok else {"err": body}


def test_home_assistant_setup_poll_and_writes(fw):
    import aiohttp
    from packaging.version import Version

    async def go():
        async with aiohttp.ClientSession() as session:
            ha = HomeAssistant(session, fw.api_port)
            ret = await ha.read(FILTER_SYSTEMS)  # config_flow._test_host
            assert ret and len(ret) > 0
            typ = str(ret["typ"]).replace("_", " ")
            model = f"{ret['var']} kW"
            serial = ret["sse"]
            assert (typ, model, serial) == ("OWB-11", "11 kW", "SIM-0001")
            assert ret["oem"] == "OpenWallbox"
            versions = await ha.read(FILTER_VERSIONS)
            fwv = versions["fwv"]
            fwv = fwv[: fwv.index("-")] if "-" in fwv else fwv
            assert Version(fwv) < Version("60.0") and len(versions["cards"]) == 10
            states = await ha.read(FILTER_MIN_STATES + FILTER_IDS_ADDON + FILTER_TIMES_ADDON)
            assert {"car", "modelStatus", "err", "nrg", "tma", "trx", "rbt"} <= set(states)
            for f in FILTER_ALL_STATES + FILTER_ALL_CONFIG:
                got = await ha.read(f)
                assert set(got) <= set(f.split(",")) and got  # unknown keys left out
            every = {}
            for f in FILTER_ALL_STATES + FILTER_ALL_CONFIG:
                every.update(await ha.read(f))
            assert len(every["pha"]) == 6 and every["pnp"] in (1, 2, 3)
            assert every["lck"] == 0 and "rst" not in every  # write-only
            # Its writes, encoded as it encodes them.
            assert await ha.write("amp", 10) == {"amp": 10}
            assert await ha.write("frc", 2) == {"frc": 2}
            assert await ha.write("psm", 1) == {"psm": 1}
            assert await ha.write("ust", 1) == {"ust": 1}
            assert await ha.write("fup", True) == {"fup": True}
            assert await ha.write("dwo", 5000.0) == {"dwo": 5000.0}
            assert await ha.write("dwo", None) == {"dwo": None}
            ids = {"pGrid": -1200.0, "pPv": 3500.0, "pAkku": 0.0}
            assert await ha.write("ids", ids) == {"ids": ids}
            got = await ha.read(FILTER_MIN_STATES + FILTER_IDS_ADDON)
            assert (got["pgrid"], got["ppv"], got["pakku"]) == (-1200.0, 3500.0, 0.0)
            assert await ha.write("trx", 0) == {"trx": 0}
            assert await ha.write("trx", None) == {"trx": None}
            bad = await ha.write("amp", 40)
            assert "err" in bad and "amp" in bad["err"]
            return await ha.read("amp,frc,psm,ust,fup,dwo")

    assert asyncio.run(go()) == {"amp": 10, "frc": 2, "psm": 1, "ust": 1, "fup": True,
                                 "dwo": None}


def test_home_assistant_pushes_the_pv_surplus_and_the_car_follows_it(fw):
    import aiohttp

    async def go():
        async with aiohttp.ClientSession() as session:
            ha = HomeAssistant(session, fw.api_port)
            assert await ha.write("fup", True) == {"fup": True}
            fw.sim(cp="C", load=16)
            # 5 kW export on three phases: 7 A once the surplus has lasted 30 s.
            deadline = time.monotonic() + 60
            acu = None
            while time.monotonic() < deadline:
                grid = -5000.0 + fw.status("nrg")["nrg"][11]
                assert await ha.write("ids", {"pGrid": grid, "pPv": 6000.0,
                                              "pAkku": 0.0})
                acu = fw.status("acu")["acu"]
                if acu:
                    break
                await asyncio.sleep(2)
            return acu, fw.status("modelStatus")["modelStatus"]

    assert asyncio.run(go()) == (7, 12)


# -- many clients, idle and slow connections ---------------------------------------------------
def test_idle_and_slow_connections_cannot_lock_out_polling_clients(fw):
    import socket

    async def go():
        port = fw.api_port
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]

        async def drip():
            r, w = await asyncio.open_connection("127.0.0.1", port)
            try:
                for b in b"GET /api/status HTTP/1.1\r\nX: yyyyyyyyyyyyyyyyyyyy":
                    w.write(bytes([b]))
                    await w.drain()
                    await asyncio.sleep(0.3)
            except OSError:
                pass
            finally:
                w.close()

        drips = [asyncio.ensure_future(drip()) for _ in range(3)]
        await asyncio.sleep(0.3)
        codes = []
        for _ in range(15):  # evcc, Home Assistant and a browser poll meanwhile
            for path in (Evcc.POLL, "/api/status?filter=" + FILTER_MIN_STATES,
                         "/api/status"):
                codes.append(await asyncio.to_thread(raw_get, fw, path))
            await asyncio.sleep(0.1)
        for d in drips:
            d.cancel()
        for s in held:
            s.close()
        return [c for c, _ in codes]

    assert asyncio.run(go()) == [200] * 45


def test_goecharger_api_lite_with_the_api_password_in_its_host(fw):
    """`apw` stays opt-in; a client that takes a host can still send HTTP Basic: aiohttp
    turns the user info of the URL into an Authorization header."""
    assert fw.set(apw="s3cret-pw")[0] == 200
    assert fw.get("/api/status?filter=car")[0] == 401
    steps = """
step("car", lambda: charger.get_status(("car",)))
step("dwo", lambda: charger.set_charge_limit(1000))
step("dwo_read", lambda: charger.get_charge_limit())
"""
    without = lite("127.0.0.1:%d" % fw.api_port, steps)
    assert without["car"].startswith("GoeChargerError")
    out = lite("owner:s3cret-pw@127.0.0.1:%d" % fw.api_port, steps)
    assert out == {"car": {"car_state": "Idle"}, "dwo": None,
                   "dwo_read": {"charge_limit": 1000.0}}
