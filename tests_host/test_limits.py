"""The smart charging limit loop (firmware/smart_charging/service.py): profiles reach the pilot,
boundaries
to the second, transactions end their TxProfiles, W limits follow the measured voltage,
numberPhases drives the phase switch by the safe sequence; the engine is loaded only while
there are profiles (at boot only with profiles.json on flash, then on first use) and the
loop lets it go, module and all, once none is left.

The real charger (simulated hardware), the real configuration store and the real engine
with profiles.json on disk, all on one fake clock: `Rig.run_until` plays the loop's
schedule (step → sleep the ms it asks for) in simulated wall time with 20 ms charger ticks.
"""

import asyncio
import os
import sys

import pytest
from conftest import check_ocpp, mp_run
from cpkit import FakeCP

import log
from firmware import clock
from firmware.config import Config
from firmware.evse import charger as ch
from firmware.ocpp import router
from firmware.smart_charging import profiles as smart
from firmware.smart_charging import service as limits
from hal.sim import SimHal

T0 = clock.parse("2026-11-24T10:00:00Z")
ENGINE = limits.ENGINE  # the engine's module, loaded while there are profiles


@pytest.fixture(autouse=True)
def engine_back(monkeypatch):
    """The loop lets the engine's module go (sys.modules, its package) once no profile is
    left: put the one imported here back afterwards, so the other tests keep it. No CALL is
    in hand (other tests look actions up without answering them)."""
    import firmware.smart_charging as pkg

    monkeypatch.setattr(router, "LOADED", {})
    yield
    sys.modules[ENGINE] = smart
    pkg.profiles = smart


@pytest.fixture
def no_engine():
    """The engine's module not loaded, as on a board that has just booted (engine_back puts
    it back)."""
    router.forget(ENGINE)
    assert ENGINE not in sys.modules


class Tx:
    def __init__(self, transaction_id, start_time, connector_id=1):
        self.connector_id = connector_id
        self.transaction_id = transaction_id
        self.start_time = start_time


class SwitchConfig(Config):
    """The real store, on a board that declares ConnectorSwitch3to1PhaseSupported."""

    supported = True

    def get(self, name):
        if name == "ConnectorSwitch3to1PhaseSupported":
            return self.supported
        return Config.get(self, name)


class CP(FakeCP):
    def __init__(self, data_dir, hal, config):
        self._declare()
        self.data_dir = str(data_dir)
        self.hal = hal
        self.config = config
        self.charger = None
        self.tx = None


class Rig:
    """Wall time in ms (`self.ms`, Unix epoch); the charger's ticks run on the same clock."""

    def __init__(self, data_dir, phase_switch=False, config_cls=Config, start_ms=None):
        self.ms = T0 * 1000 + 700 if start_ms is None else start_ms
        self.hal = SimHal(now_ms=lambda: self.ms, phase_switch=phase_switch)
        self.config = config_cls(str(data_dir))
        self.cp = CP(data_dir, self.hal, self.config)
        self.c = ch.Charger(self.hal, self.config, now_ms=lambda: self.ms)
        self.c.auth_required = False
        self.cp.charger = self.c
        self.coros = limits.attach(self.cp)
        self.lim = self.cp.limits
        self.lim._now = self.now
        self.due = self.ms  # when the loop looks next
        self.meter()

    @property
    def smart(self):
        return self.cp.smart  # None while there is no profile (the loop let it go)

    def close(self):
        pass  # attach gives make() of the loop: nothing was started

    def now(self):
        return self.ms // 1000

    def meter(self):
        asyncio.run(self.c.poll_meter())

    def sim(self, **kw):
        return self.hal.control({k: str(v) for k, v in kw.items()})

    def run_until(self, end_ms, watch=None):
        """Advance to end_ms: charger tick every 20 ms, the loop when due (or woken), the
        meter once a second. watch(rig) is called after every tick."""
        while self.ms < end_ms:
            self.ms += 20
            if self.lim._wake.is_set():
                self.lim._wake.clear()
                self.due = self.ms
            if self.ms >= self.due:
                self.due = self.ms + self.lim.step(self.now())
            if self.ms % 1000 < 20:
                self.meter()
            self.c.tick()
            if watch is not None:
                watch(self)

    def run(self, ms):
        self.run_until(self.ms + ms)

    def plug(self, cp="C"):
        self.sim(cp="B")
        self.run(1000)
        self.sim(cp=cp)
        self.run(500)

    def setp(self, connector, profile):
        # As the SetChargingProfile handler does: the engine is loaded on first use.
        eng = limits.engine(self.cp)
        return eng.set_profile(connector, profile, tx=self.cp.tx, now=self.now())


def prof(pid, periods, purpose="TxDefaultProfile", stack=0, unit="A", start=None,
         txid=None):
    p = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [
                dict({"startPeriod": q[0], "limit": q[1]},
                     **({"numberPhases": q[2]} if len(q) > 2 else {}))
                for q in periods
            ],
        },
    }
    if start is not None:
        p["chargingSchedule"]["startSchedule"] = clock.rfc3339(start)
    if txid is not None:
        p["transactionId"] = txid
    return p


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_attach_registers_the_messages_and_returns_the_loop_the_engine_on_first_use(rig):
    assert rig.smart is None  # no profiles.json: no engine
    eng = limits.engine(rig.cp)
    assert isinstance(eng, smart.SmartCharging) and rig.smart is eng
    assert eng.connectors == 1 and eng.on_change == rig.lim.wake
    assert limits.engine(rig.cp) is eng
    for action in ("SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule"):
        assert router.lookup(action) is router.HANDLERS[action]  # offered, loaded on use
    # make() of the loop, which the app starts again if it ever ends (app._revive)
    assert len(rig.coros) == 1 and rig.coros[0] == rig.lim.run
    # The transaction events (the charge point's hub) wake the loop.
    assert rig.cp._tx_subs == [rig.lim._on_tx]


def test_profile_change_reaches_pilot_within_one_tick(rig):
    rig.plug()
    assert rig.c.acu == 16 and rig.hal.pilot.duty == 266
    seen = []
    limits.engine(rig.cp)  # loaded first: its loading wakes the loop too
    rig.lim._wake.clear()
    assert rig.setp(1, prof(1, [(0, 10)])) == "Accepted"
    assert rig.lim._wake.is_set()  # smart.on_change woke the loop
    t = rig.ms
    rig.run_until(t + 2000, watch=lambda r: seen.append((r.ms, r.c.acu, r.hal.pilot.duty)))
    first = next(ms for ms, acu, duty in seen if acu == 10)
    assert first - t <= 40
    assert seen[-1][1:] == (10, 166)  # 10 A = 16.6 % duty
    assert rig.c._limits["smart"] == 10


def test_period_boundaries_are_honoured_to_the_second(rig):
    rig.plug()
    start = rig.now() + 2
    # 16 A, 8 A after 3 s, 12 A after 9 s (a raise more than 5 s after the last change, so
    # the pilot's once-per-5-s rule does not hold it back).
    rig.setp(1, prof(1, [(0, 16), (3, 8), (9, 12)], start=start))
    changes = []

    def watch(r):
        if not changes or changes[-1][1] != r.c.acu:
            changes.append((r.ms, r.c.acu))

    rig.run_until((start + 11) * 1000, watch)
    assert [a for _, a in changes] == [16, 8, 12]
    for (ms, _), second in zip(changes[1:], (start + 3, start + 9), strict=True):
        # The loop starts the last second's fine polling: at most 100 ms + one tick late.
        assert second * 1000 <= ms <= second * 1000 + 140, (ms, second)


def test_a_raise_soon_after_a_change_waits_for_the_pilot_rule(rig):
    # IEC 61851-1 (REFERENCE §1): the duty changes at most once per 5 s except to lower it.
    # A profile raising the limit 3 s after lowering it reaches the car 5 s after the
    # decrease, not at the boundary: the car's rule wins over the schedule's second.
    rig.plug()
    start = rig.now() + 2
    rig.setp(1, prof(1, [(0, 16), (3, 8), (6, 12)], start=start))
    changes = []

    def watch(r):
        if not changes or changes[-1][1] != r.c.acu:
            changes.append((r.ms, r.c.acu))

    rig.run_until((start + 10) * 1000, watch)
    assert [a for _, a in changes][-1] == 12
    down = next(ms for ms, a in changes if a == 8)
    up = next(ms for ms, a in changes if a == 12)
    assert up - down >= 5000 and up <= (start + 8) * 1000 + 140


def test_loop_sleeps_a_second_and_polls_finely_only_before_a_boundary(rig):
    t = rig.now()
    assert rig.lim.step(t) == 1000  # nothing scheduled
    rig.setp(1, prof(1, [(0, 16), (5, 8)], start=t))
    assert rig.lim.step(t) == 1000
    assert rig.lim.step(t + 3) == 1000
    assert rig.lim.step(t + 4) == 100
    assert rig.lim.step(t + 5) == 1000  # past the last boundary
    assert rig.lim.amps == 8


def test_below_six_amps_pauses_the_car_and_clearing_restores_amp(rig):
    rig.config.update({"amp": 13}, "api")
    rig.plug()
    assert rig.c.acu == 13 and rig.hal.relay.closed
    rig.setp(0, prof(2, [(0, 4)], purpose="ChargePointMaxProfile"))
    rig.run(100)
    assert rig.hal.pilot.duty == 1000 and rig.c.acu is None  # paused, no illegal current
    rig.sim(cp="B")  # the car stops as asked
    rig.run(200)
    assert not rig.hal.relay.closed
    assert rig.smart.clear() == "Accepted"
    rig.sim(cp="C")
    rig.run(1500)
    assert "smart" not in rig.c._limits
    assert rig.c.acu == 13 and rig.hal.pilot.duty == 216 and rig.hal.relay.closed


def test_watt_limit_follows_the_measured_voltage(rig):
    rig.plug()
    rig.setp(0, prof(3, [(0, 11040)], purpose="ChargePointMaxProfile", unit="W"))
    rig.run(100)
    assert rig.lim.amps == 16  # 11040 W / (3 x 230 V)
    m = rig.hal.meter.read_now()
    m["u"] = [240.0, 240.0, 240.0]
    rig.c.on_meter(m)
    rig.lim.step(rig.now())
    assert rig.lim.amps == 15.3  # 15.33 rounded down to 0.1 A
    assert rig.c._limits["smart"] == 15.3
    rig.hal.meter_ok = False  # meter lost: nominal voltage
    rig.meter()
    rig.lim.step(rig.now())
    assert rig.lim.amps == 16


def test_transaction_end_removes_its_tx_profile(rig):
    rig.plug()
    rig.setp(1, prof(1, [(0, 10)]))
    tx = rig.cp.tx = Tx(42, rig.now())
    rig.cp.tx_event("started", tx)
    assert rig.setp(1, prof(5, [(0, 7)], purpose="TxProfile", stack=1)) == "Accepted"
    rig.run(100)
    assert rig.c.acu == 7
    rig.cp.tx = None
    rig.cp.tx_event("stopped", tx)
    assert rig.smart.count() == 1  # at once; the TxDefaultProfile stays
    rig.run(100)
    assert rig.lim.amps == 10
    import json

    with open(rig.cp.data_dir + "/profiles.json") as f:
        assert [p[0] for p in json.load(f)["p"]] == [1]


def test_profiles_restored_after_reboot_are_applied_at_once(tmp_path):
    r = Rig(tmp_path)
    r.setp(0, prof(2, [(0, 9)], purpose="ChargePointMaxProfile", stack=3))
    r.close()
    r2 = Rig(tmp_path, start_ms=r.ms)
    try:
        r2.plug()
        assert r2.smart.count() == 1 and r2.c.acu == 9
    finally:
        r2.close()


def test_tx_profile_of_a_transaction_a_reboot_ended_goes_at_the_first_step(tmp_path):
    r = Rig(tmp_path)
    r.cp.tx = Tx(7, r.now())
    r.setp(1, prof(5, [(0, 7)], purpose="TxProfile"))
    r.setp(1, prof(1, [(0, 10)]))
    r.close()
    r2 = Rig(tmp_path, start_ms=r.ms)  # transactions do not survive a reboot (PowerLoss)
    try:
        assert r2.lim.owed and r2.smart is None  # the first step loads the two profiles
        r2.lim.step(r2.now())
        assert r2.smart.count() == 1 and r2.lim.amps == 10
    finally:
        r2.close()


def test_installation_maximum_follows_ama_for_the_composite(rig):
    rig.config.update({"ama": 12}, "api")
    rig.lim.step(rig.now())
    # No engine until the composite is asked for: loaded with the loop's inputs.
    sched = limits.engine(rig.cp).composite(1, rig.now(), 60)
    assert sched["chargingSchedulePeriod"][0]["limit"] == 12.0


def test_one_phase_profile_switches_phases_by_the_safe_sequence(tmp_path):
    r = Rig(tmp_path, phase_switch=True, config_cls=SwitchConfig)
    try:
        r.plug()
        assert r.hal.relay.closed and r.hal.phase_switch.phases == 3
        switched = []
        sw = r.hal.phase_switch
        orig = sw.set

        def spy(n):
            switched.append((n, r.hal.relay.closed, r.hal.pilot.f))
            orig(n)

        sw.set = spy
        r.setp(0, prof(4, [(0, 16, 1)], purpose="ChargePointMaxProfile"))
        r.run(100)
        assert r.lim.phases == 1 and r.hal.pilot.duty == 1000  # EVSE stop first
        r.sim(cp="B")  # the car follows
        r.run(4000)
        # Switched with the contactor open and the pilot disconnected (state F).
        assert switched == [(1, False, True)]
        r.sim(cp="C")
        r.run(2000)
        assert r.hal.relay.closed and r.c.acu == 16 and sw.phases == 1
        # The user's phase mode wins over the profile.
        assert r.config.update({"psm": 2}, "api") == {}
        r.sim(cp="B")
        r.run(8000)
        assert switched[-1][0] == 3 and sw.phases == 3
    finally:
        r.close()


def test_without_3to1_support_number_phases_only_converts_watts(tmp_path):
    SwitchConfig.supported = False
    r = Rig(tmp_path, phase_switch=True, config_cls=SwitchConfig)
    try:
        r.plug()
        before = r.hal.phase_switch.switches  # the charger sets 3 phases at start
        r.setp(0, prof(4, [(0, 2300, 1)], purpose="ChargePointMaxProfile", unit="W"))
        r.run(6000)
        # The charger cannot switch to one phase, so the car keeps all three: 2300 W over
        # three phases is 3.3 A per phase (not 10 A on each of three, 6.9 kW), below the
        # 6 A minimum, so the car is paused rather than offered an illegal current.
        assert r.lim.amps == 3.3 and r.c.acu is None
        assert r.hal.phase_switch.switches == before and r.hal.phase_switch.phases == 3
        assert r.lim.phases is None
    finally:
        SwitchConfig.supported = True
        r.close()


def test_run_loop_on_asyncio_applies_a_profile_when_woken(rig):
    async def go():
        task = asyncio.create_task(rig.coros.pop()())
        try:
            for _ in range(50):
                await asyncio.sleep(0.01)
                if rig.lim.amps == -1:
                    continue
                break
            assert rig.lim.amps is None
            rig.setp(1, prof(1, [(0, 10)]))
            for _ in range(100):  # bounded: woken at once, not after the 1 s period
                if rig.c._limits.get("smart") == 10:
                    return True
                await asyncio.sleep(0.005)
            return False
        finally:
            task.cancel()

    assert asyncio.run(go())


def test_step_on_micropython(tmp_path):
    code = """
import os
import sys
d = %r
from firmware.evse import charger
from firmware.smart_charging import service as limits
from firmware.config import Config
from hal.sim import SimHal
class CP:
    pass
T = [0]
def ms():
    return T[0]
cp = CP()
cp.hal = SimHal(now_ms=ms); cp.data_dir = d; cp.config = Config(d); cp.tx = None
cp.on_tx = [].append
cp.smart = cp.limits = cp.solar = None
cp.charger = charger.Charger(cp.hal, cp.config, now_ms=ms)
cp.charger.auth_required = False
coros = limits.attach(cp)
print(cp.smart, limits.ENGINE in sys.modules)
now = 1795514400
p = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
     "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "A",
     "startSchedule": "2026-11-24T10:00:00Z",
     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10},
                                {"startPeriod": 60, "limit": 8}]}}
print(limits.engine(cp).set_profile(1, p, now=now), limits.ENGINE in sys.modules)
cp.hal.control({"cp": "B"})
print(cp.limits.step(now), cp.limits.step(now + 59), cp.limits.amps)
for i in range(100):
    T[0] += 20
    cp.charger.tick()
print(cp.charger.acu, cp.hal.pilot.duty)
print(cp.smart.clear(), cp.limits.step(now + 60), cp.limits.amps)
print(cp.smart, limits.ENGINE in sys.modules)
""" % str(tmp_path)
    r = mp_run(code)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith(("I ", "W ", "E "))]
    assert lines == ["None False", "Accepted True", "1000 100 10", "10 166",
                     "Accepted 1000 None", "None False"], r.stdout


# ---- the engine is loaded only while there are profiles (heap)


def _op(cp, action, payload):
    """A CALL through its message module's handler, checked against the OCPP schemas."""
    import importlib

    importlib.import_module("firmware.ops." + router.OFFERED[action])  # registers it
    check_ocpp(action, payload)
    res = router.HANDLERS[action](cp, payload)
    check_ocpp(action, res, response=True)
    return res


def test_no_profiles_file_no_engine_and_no_limit(tmp_path, no_engine):
    r = Rig(tmp_path)
    assert r.smart is None and ENGINE not in sys.modules
    r.plug()
    assert r.lim.amps is None and "smart" not in r.c._limits and r.c.acu == 16
    assert r.lim.step(r.now()) == 1000 and r.lim._next is None
    assert r.smart is None and ENGINE not in sys.modules  # the loop needs none


def test_set_loads_the_engine_and_clearing_the_last_profile_lets_it_go(tmp_path, no_engine):
    r = Rig(tmp_path)
    r.plug()
    p = prof(1, [(0, 10)], start=r.now())  # the handler's clock is not the rig's
    res = _op(r.cp, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": p})
    assert res == {"status": "Accepted"}
    assert isinstance(r.smart, sys.modules[ENGINE].SmartCharging)
    r.run(100)
    assert r.c._limits["smart"] == 10 and r.c.acu == 10 and r.hal.pilot.duty == 166
    # While the CALL that asked for it is in hand the engine stays (its handler may still
    # use it); another CALL in hand (a certificate's) does not keep it, nor does shed() ...
    router.LOADED["ClearChargingProfile"] = ["clear_charging_profile", None]
    assert _op(r.cp, "ClearChargingProfile", {}) == {"status": "Accepted"}
    r.lim.step(r.now())
    router.shed()
    assert r.smart is not None and ENGINE in sys.modules
    router.done("ClearChargingProfile", 0)
    router.LOADED["CertificateSigned"] = ["certificate_signed", None]
    try:
        assert r.lim.step(r.now()) and r.smart is None and ENGINE not in sys.modules
    finally:
        router.LOADED.pop("CertificateSigned")
    assert _op(r.cp, "ClearChargingProfile", {}) == {"status": "Unknown"}  # loaded to answer
    assert r.smart is not None
    router.LOADED["CertificateSigned"] = ["certificate_signed", None]
    try:
        router.shed()  # short of memory in that CALL: an empty engine goes at once
        assert r.smart is None and ENGINE not in sys.modules
    finally:
        router.LOADED.pop("CertificateSigned")
    r.lim.step(r.now())
    # ... and once gone, module and all, the charger has no smart limit.
    assert r.smart is None and ENGINE not in sys.modules
    assert r.lim.amps is None and "smart" not in r.c._limits
    r.run(6000)  # a raise waits for the pilot's 5 s rule
    assert r.c.acu == 16 and r.smart is None
    # Loaded again on the next use, with what profiles.json holds (nothing).
    assert _op(r.cp, "ClearChargingProfile", {"id": 1}) == {"status": "Unknown"}
    assert r.smart.count() == 0


def test_clear_without_engine_or_file_answers_unknown_and_writes_nothing(tmp_path, no_engine):
    r = Rig(tmp_path)
    assert _op(r.cp, "ClearChargingProfile", {}) == {"status": "Unknown"}
    assert _op(r.cp, "ClearChargingProfile", {"id": 4, "connectorId": 1}) == {
        "status": "Unknown"}
    assert not os.path.exists(r.cp.data_dir + "/profiles.json")
    r.lim.step(r.now())
    assert r.smart is None and ENGINE not in sys.modules and r.lim.amps is None


def test_composite_without_engine_is_the_installation_maximum_as_the_loop_sees_it(
        tmp_path, no_engine):
    r = Rig(tmp_path)
    r.config.update({"ama": 12}, "api")
    m = r.hal.meter.read_now()
    m["u"] = [240.0, 240.0, 240.0]
    r.c.on_meter(m)
    r.lim.step(r.now())
    assert r.smart is None
    for unit, limit in (("A", 12.0), ("W", 8640.0)):  # W: 12 A x 240 V (measured) x 3
        res = _op(r.cp, "GetCompositeSchedule", {"connectorId": 1, "duration": 600,
                                                  "chargingRateUnit": unit})
        assert res["status"] == "Accepted" and res["connectorId"] == 1
        sched = res["chargingSchedule"]
        assert sched["chargingRateUnit"] == unit and sched["duration"] == 600
        assert sched["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": limit, "numberPhases": 3}]
    r.lim.step(r.now())
    assert r.smart is None and ENGINE not in sys.modules


def _saved_profile(tmp_path):
    r = Rig(tmp_path)
    assert r.setp(0, prof(2, [(0, 9)], purpose="ChargePointMaxProfile")) == "Accepted"
    router.forget(ENGINE)  # power off
    return r.ms


@pytest.mark.parametrize("name", ["profiles.json", "profiles.json.tmp"])
def test_a_profiles_file_at_boot_loads_the_engine_in_force_from_the_first_step(
        tmp_path, no_engine, name):
    ms = _saved_profile(tmp_path)
    if name != "profiles.json":  # a rename cut short on FAT: only the temporary is there
        os.rename(str(tmp_path / "profiles.json"), str(tmp_path / name))
    r = Rig(tmp_path, start_ms=ms)
    assert r.smart is None and r.lim.owed  # the first step loads them
    r.lim.step(r.now())
    assert r.smart is not None and r.smart.count() == 1 and ENGINE in sys.modules
    assert r.lim.amps == 9 and r.c._limits["smart"] == 9 and not r.lim.owed


def test_profiles_that_cannot_be_read_now_are_loaded_at_a_later_step(tmp_path, no_engine,
                                                                     monkeypatch):
    """No room to read profiles.json at the first step (or a file not readable now): not
    "no profiles" (the next SetChargingProfile would replace them with less), but loaded at
    the next step that can, in force from then; said once."""
    import fs

    ms = _saved_profile(tmp_path)
    r = Rig(tmp_path, start_ms=ms)
    real = fs.read_json
    fails = [MemoryError("memory allocation failed"), OSError(24, "EMFILE")]

    def tight(*a, **k):
        if fails:
            raise fails.pop(0)
        return real(*a, **k)

    monkeypatch.setattr(fs, "read_json", tight)
    said = []
    real_error = log.error
    monkeypatch.setattr(log, "error", lambda tag, *a: said.append(tag) or real_error(tag, *a))
    r.lim.step(r.now())
    assert r.smart is None and r.lim.owed and r.lim.amps is None
    r.lim.step(r.now())
    assert r.smart is None and r.lim.owed and said.count("limits") == 1
    r.lim.step(r.now())
    assert r.smart is not None and r.smart.count() == 1 and r.lim.amps == 9


def test_the_loops_rounding_is_the_engines():
    import random

    rnd = random.Random(7)
    xs = [i / 100 for i in range(0, 8001)] + [rnd.uniform(0, 80) for _ in range(5000)]
    xs += [15.99999999, 16.000000001, 11040 / 690, 11040 / (3 * 240.0), 7360 / 690]
    for x in xs:
        assert limits._floor_tenth(x) == smart.floor_tenth(x), x
