"""One readable scenario per safety rule of REFERENCE.md section 2, in simulated time.

The Rig's clock starts 5 s before the 2**30 ms wrap of ticks_ms (the ESP32 port wraps there),
so every scenario runs across it; the charger sees `t & (2**30 - 1)`.
"""


from conftest import mp_run

from firmware.evse import charger as ch
from hal.sim import SimHal


class Cfg:
    def __init__(self, **kw):
        self.d = {"amp": 16, "ama": 16, "frc": 0, "psm": 0, "ust": 0, "dwo": None}
        self.d.update(kw)

    def get(self, name):
        return self.d[name]


MASK = (1 << 30) - 1  # ticks_ms period of the MicroPython ports
T0 = (1 << 30) - 5000
DAY = 86400000


class Rig:
    """Simulated car + charger on one fake clock. step() advances 20 ms per tick through
    Charger.safe_tick() (the body of run(), fail safe included) and polls the meter once
    a second of simulated time, like run_meter(). `t` is absolute; the HAL and the charger
    see it wrapped like ticks_ms."""

    def __init__(self, board=None, auth=False, phase_switch=False, t0=T0, **cfg):
        self.t = t0
        now = self.now
        self.hal = SimHal(board=board, now_ms=now, phase_switch=phase_switch)
        self.cfg = Cfg(**cfg)
        self.c = ch.Charger(self.hal, self.cfg, now_ms=now)
        self.c.auth_required = auth
        self.events = []
        self.c.subscribe(lambda e, d: self.events.append((e, d)))
        self.meter()
        self._meter_at = self.t + 1000

    def now(self):
        return self.t & MASK

    def sim(self, **kw):
        return self.hal.control({k: str(v) for k, v in kw.items()})

    def step(self, ms=20):
        for _ in range(max(1, ms // 20)):
            self.t += 20
            self.c.safe_tick()
            if self.t >= self._meter_at:
                self._meter_at = self.t + 1000
                self.meter()

    def jump(self, ms):
        """Time passes with nothing changing (a stand-in for ticking through it)."""
        self.t += ms
        self.meter()  # the meter task kept polling
        self._meter_at = self.t + 1000

    def meter(self):
        co = self.c.poll_meter()  # the sim meter never suspends: run it to the end here
        try:
            co.send(None)
        except StopIteration:
            return
        co.close()
        raise RuntimeError("meter read suspended")

    @property
    def closed(self):
        return self.hal.relay.closed

    def charge(self):
        self.sim(cp="B")
        self.step(1000)
        self.sim(cp="C")
        self.step(200)
        assert self.closed
        return self


def names(events):
    return [e for e, _ in events]


def test_plug_charge_unplug_closes_only_in_c_and_reports_status():
    r = Rig()
    r.step(100)
    assert (r.c.car, r.c.state, r.c.acu, r.closed) == (1, "A", None, False)
    r.sim(cp="B")
    r.step(1000)
    assert r.c.car == 3 and r.c.state == "B" and r.c.alw and r.c.acu == 16
    assert r.hal.pilot.duty == 266 and not r.closed
    r.sim(cp="C")
    r.step(100)
    assert r.closed and r.c.car == 2 and r.c.energized
    r.step(60 * 1000)  # one minute at 15.96 A (266 permille) x 3 x 230 V
    r.meter()
    assert abs(r.c.session_wh - 15.96 * 3 * 230 / 60) < 0.5
    assert abs(r.c.nrg[4] - 15.96) < 1e-6 and abs(r.c.nrg[11] - 15.96 * 3 * 230) < 1e-3
    r.sim(cp="B")
    r.step(20)
    assert not r.closed and r.c.car == 4
    r.sim(cp="A")
    r.step(100)
    assert r.c.car == 1
    assert names(r.events)[:4] == ["plugged", "suspended_ev", "energized", "charging"]
    assert "deenergized" in names(r.events) and names(r.events)[-1] == "unplugged"


def test_rule1_no_close_without_authorization():
    r = Rig(auth=True)
    r.sim(cp="C")
    r.step(2000)
    assert not r.closed and r.hal.pilot.duty == 1000 and r.c.car == 3
    r.c.authorize(True)
    r.step(200)
    assert r.closed


def test_rule1_no_close_below_6_amps():
    r = Rig()
    r.c.set_limit(5, "ocpp")
    r.sim(cp="C")
    r.step(2000)
    assert not r.closed and r.hal.pilot.duty == 1000 and r.c.acu is None
    r.c.set_limit(6, "ocpp")
    r.step(200)
    assert r.closed and r.hal.pilot.duty == 100 and r.c.acu == 6


def test_rule1_no_close_before_lock_confirmed_and_lock_jam_is_fault():
    r = Rig()
    r.sim(lock="jam")
    r.sim(cp="C")
    r.step(5000)
    assert not r.closed and r.c.err == ch.ERR_LOCK_OPEN and r.hal.lock.pulses == 3


def test_rule1_rcd_self_test_runs_before_each_session_and_failure_blocks():
    r = Rig()
    r.charge()
    assert r.hal.rcd.tests == 1
    r.sim(cp="A")
    r.step(100)
    r.hal.rcd_fault = True  # residual current present: the self-test fails
    r.sim(cp="C")
    r.step(1000)
    assert not r.closed and r.c.err == ch.ERR_FI_UNKNOWN and r.hal.rcd.tests == 2


def test_rule2_open_within_100ms_when_car_leaves_c():
    r = Rig().charge()
    r.sim(cp="B")
    r.step(20)
    assert not r.closed


def test_rule2_rcd_trip_opens_and_latches_until_reset_with_bounded_retries():
    r = Rig().charge()
    r.sim(rcd="trip")
    r.step(20)
    assert not r.closed and r.c.err == ch.ERR_FI_DC
    r.sim(rcd="ok")
    r.step(2000)
    assert not r.closed and r.c.err == ch.ERR_FI_DC  # latched
    assert r.c.reset_fault()
    r.step(200)
    assert r.closed and r.c.err == 0
    for _ in range(3):
        r.sim(rcd="trip")
        r.step(40)
        r.sim(rcd="ok")
        r.c.reset_fault()
        r.step(200)
    assert r.c.err == ch.ERR_FI_DC and not r.closed  # fourth reset refused


def test_rule2_missing_diode_never_closes():
    r = Rig()
    r.sim(cp="B", diode="missing")
    r.step(500)
    r.sim(cp="C")
    r.step(1000)
    assert not r.closed and r.c.err == ch.ERR_DIODE


def test_rule2_diode_lost_while_charging_opens_within_100ms():
    r = Rig().charge()
    r.sim(diode="missing")
    r.step(40)
    assert not r.closed


def test_rule3_evse_stop_pwm_off_then_open_after_6s():
    r = Rig().charge()
    r.cfg.d["frc"] = 1
    r.step(20)
    assert r.hal.pilot.duty == 1000 and r.closed
    r.step(5800)
    assert r.closed  # the car may still be ramping down
    r.step(300)
    assert not r.closed


def test_rule3_evse_stop_opens_as_soon_as_car_goes_to_b():
    r = Rig().charge()
    r.cfg.d["frc"] = 1
    r.step(1000)
    r.sim(cp="B")
    r.step(20)
    assert not r.closed and r.c.car == 4


def test_rule4_duty_raise_waits_5s_lowering_is_immediate():
    r = Rig().charge()
    r.c.set_limit(10, "ocpp")
    r.step(20)
    assert r.hal.pilot.duty == 166 and r.c.acu == 10
    r.c.set_limit(None, "ocpp")
    r.step(1000)
    assert r.hal.pilot.duty == 166
    r.step(4100)
    assert r.hal.pilot.duty == 266


def test_rule5_state_d_without_ventilation_gives_no_power():
    r = Rig()
    r.sim(cp="D")
    r.step(2000)
    assert not r.closed
    r2 = Rig(board={"ventilation": True})
    r2.sim(cp="D")
    r2.step(2000)
    assert r2.closed


def test_rule5_state_e_is_a_fault():
    r = Rig().charge()
    r.sim(cp="E")
    r.step(20)
    assert not r.closed
    r.step(40)
    assert r.c.err == ch.ERR_UNKNOWN and r.c.car == 5


def test_rule7_welded_contactor_is_hard_fault_no_new_session():
    r = Rig().charge()
    r.sim(weld=1)
    r.sim(cp="B")
    r.step(400)
    assert r.c.err == ch.ERR_WELD
    r.sim(cp="A")
    r.step(100)
    r.sim(cp="C")
    r.step(2000)
    assert not r.closed and r.c.err == ch.ERR_WELD
    assert not r.c.reset_fault()  # still welded
    r.sim(weld=0)
    assert r.c.reset_fault()


def test_rule7_contactor_that_does_not_close_is_a_fault():
    r = Rig()
    r.hal.relay.contact = lambda: False  # coil or contacts broken
    r.sim(cp="C")
    r.step(2000)
    assert not r.closed and r.c.err == ch.ERR_MISS


# Rule 7 the other way round: the RCD opens the contactor by hardware (REFERENCE.md section 1).
# That is a residual current fault (err 2), never a contactor that failed to close (err 10),
# whenever it happens: before the close, within the first 500 ms after it, while charging,
# during an EVSE stop (PWM off, contactor still closed), and between any two HAL reads of a
# tick.
def _trip_and_watch(r, ms=2000):
    """Trip the RCD now; tick `ms` and return the err codes seen (never err 10)."""
    r.sim(rcd="trip")
    seen = set()
    for _ in range(ms // 20):
        r.step(20)
        assert "miss" not in r.c.faults, r.c.faults
        seen.add(r.c.err)
    assert not r.closed and r.c.err == ch.ERR_FI_DC and r.c.counters["rcd_trips"] == 1
    return seen


def _closed_for(ms, **rig):
    r = Rig(**rig)
    r.sim(cp="B")
    r.step(1000)
    r.sim(cp="C" if not rig else "D")
    for _ in range(100):
        r.step(20)
        if r.closed:
            break
    assert r.closed
    r.step(ms)
    return r


def test_rcd_trip_is_never_a_contactor_miss_before_the_close():
    for cp in ("A", "B"):
        r = Rig()
        r.sim(cp=cp)
        r.step(1000)
        assert _trip_and_watch(r) == {ch.ERR_FI_DC}


def test_rcd_trip_is_never_a_contactor_miss_after_the_close():
    # 0..480 ms: the feedback is still allowed to lag; from 500 ms on it must show power.
    for after_close in (0, 20, 240, 480, 500, 520, 3000, 60000):
        r = _closed_for(after_close)
        assert _trip_and_watch(r) == {ch.ERR_FI_DC}, after_close


def test_rcd_trip_is_never_a_contactor_miss_in_state_d_with_ventilation():
    r = _closed_for(2000, board={"ventilation": True})
    assert r.hal.cp == "D" and _trip_and_watch(r) == {ch.ERR_FI_DC}


def test_rcd_trip_is_never_a_contactor_miss_during_an_evse_stop():
    r = _closed_for(2000)
    r.cfg.d["frc"] = 1
    r.step(1000)
    assert r.closed and r.hal.pilot.duty == 1000  # the car has 6 s to go to B
    assert _trip_and_watch(r) == {ch.ERR_FI_DC}


_TICK_CALLS = (
    ("relay", "feedback"), ("rcd", "tripped"), ("pilot", "read"), ("reader", "poll"),
    ("temp", "read_c"), ("pp", "read_ohms"), ("lock", "state"), ("wdt", "feed"),
)  # fmt: skip


def _trip_before_call(r, k):
    """The hardware RCD trips just before the k-th HAL call (of _TICK_CALLS) from now on;
    returns the list of the calls made."""
    calls = []
    for part, name in _TICK_CALLS:
        obj = getattr(r.hal, part)
        orig = getattr(obj, name)

        def call(*a, _orig=orig, _name=part + "." + name):
            if len(calls) == k:
                r.hal._book()  # as r.sim(rcd="trip"), which would read the lock itself
                r.hal.rcd_fault = r.hal.rcd_latched = True
            calls.append(_name)
            return _orig(*a)

        setattr(obj, name, call)
    return calls


def test_rcd_trip_between_any_two_reads_of_a_tick_is_never_a_contactor_miss():
    probe = _closed_for(2000)
    calls = _trip_before_call(probe, -1)
    probe.step(20)
    assert len(calls) >= 8 and not probe.c.faults, calls  # the HAL calls of one tick
    for k, before in enumerate(calls):
        r = _closed_for(2000)
        _trip_before_call(r, k)
        r.step(20)
        assert r.hal.rcd_latched, before
        for _ in range(50):
            assert "miss" not in r.c.faults, (before, r.c.faults)
            r.step(20)
        assert not r.closed and r.c.err == ch.ERR_FI_DC, before


def test_contactor_that_fails_after_an_rcd_reset_is_still_a_fault():
    r = _closed_for(2000)
    _trip_and_watch(r, 200)
    r.sim(rcd="ok")
    assert r.c.reset_fault()
    r.hal.relay.contact = lambda: False  # now the contactor itself fails to close
    r.step(3000)
    assert not r.closed and r.c.err == ch.ERR_MISS and "rcd" not in r.c.faults


def test_rule8_never_unlock_while_energised():
    r = Rig(ust=1).charge()
    r.hal.lock._pos = "unknown"  # feedback lost while charging
    r.step(20)
    assert not r.closed
    r2 = Rig(ust=1).charge()
    r2.step(2000)
    assert r2.hal.lock.state() == "locked" and r2.hal.lock.pulses == 1


# Rule 9: the temperatures are read once a second, so each reaction comes within 1 s.
def test_rule9_overtemperature_derates_then_stops():
    r = Rig(board={"max_current": 32}, amp=32, ama=32).charge()
    r.sim(temp=70)
    r.step(1000)
    assert r.c.acu == 16
    r.sim(temp=80)
    r.step(1000)
    assert r.c.acu == 8
    r.sim(temp=90)
    r.step(1000)
    assert r.c.acu is None and r.c.err == ch.ERR_OVERTEMP
    r.sim(cp="B")
    r.step(20)
    assert not r.closed


def test_rule9_failed_temperature_sensor_is_a_fault():
    r = Rig().charge()
    r.sim(temp="fail")
    r.step(1000)
    assert not r.closed and r.c.err == ch.ERR_UNKNOWN


def test_rule9_the_contactor_never_closes_on_a_stale_temperature_reading():
    # Whenever in the 1 s between two readings the sensor fails or overheats, a car that
    # asks for power right then does not get it: the closing tick reads afresh.
    for temp in ("90", "fail"):
        for offset in range(0, 1000, 60):
            r = Rig()
            r.sim(cp="B")
            r.step(1000 + offset)
            r.sim(temp=temp)
            r.sim(cp="C")
            r.step(1000)
            assert not r.closed and r.c.err != 0, (temp, offset)


def test_rule9_temperatures_are_read_once_a_second():
    r = Rig().charge()
    reads = []
    read_c = r.hal.temp.read_c
    r.hal.temp.read_c = lambda: (reads.append(r.t), read_c())[1]
    r.step(10000)
    assert len(reads) == 10 and {reads[k + 1] - reads[k] for k in range(9)} == {1000}
    assert r.c.tma == [25.0]


def test_rule10_meter_lost_falls_back_to_6a():
    r = Rig().charge()
    r.sim(meter="offline")
    r.meter()
    r.step(20)
    assert r.c.acu == 6 and r.closed
    r.sim(meter="ok")
    r.meter()
    r.step(5100)
    assert r.c.acu == 16


def test_dwo_energy_limit_stops_the_session():
    r = Rig(dwo=100).charge()
    r.step(60 * 1000)
    r.meter()
    r.step(20)
    assert r.c.session_wh >= 100 and r.hal.pilot.duty == 1000
    r.sim(cp="B")
    r.step(20)
    assert not r.closed and r.c.car == 4


def test_rule11_phase_switch_only_with_contactor_open_and_pilot_disconnect():
    r = Rig(phase_switch=True).charge()
    assert r.hal.phase_switch.switches == 1  # set at start, no car yet
    r.cfg.d["psm"] = 1
    r.step(20)
    assert r.closed and r.hal.phase_switch.phases == 3  # stop first
    r.sim(cp="B")
    r.step(20)
    assert not r.closed and r.hal.phase_switch.phases == 3  # contacts settle 200 ms first
    r.step(220)
    assert r.hal.phase_switch.phases == 1 and r.hal.pilot.f
    r.step(3100)
    r.sim(cp="C")
    r.step(200)
    assert r.closed and r.hal.meter.read_now()["i"][1:] == [0.0, 0.0]


def test_unavailable_stops_safely_then_state_f():
    r = Rig().charge()
    r.c.set_available(False)
    r.step(20)
    assert r.closed and r.hal.pilot.duty == 1000
    r.sim(cp="B")
    r.step(20)
    assert not r.closed
    r.step(20)
    assert r.hal.pilot.f and r.c.state == "F"


def test_card_event_once():
    r = Rig()
    r.sim(card="ABC123")
    r.step(100)
    assert [d for e, d in r.events if e == "card"] == ["ABC123"]


def test_plug_charge_unplug_on_micropython():
    code = """
import asyncio
from firmware.evse import charger
from hal.sim import SimHal
T = [0]  # (the unix port's ticks period is 2**62: no 2**30 wrap to emulate here)
class Cfg:
    def get(self, k):
        return {"amp": 16, "ama": 16, "frc": 0, "psm": 0, "ust": 0, "dwo": None}[k]
h = SimHal(now_ms=lambda: T[0])
c = charger.Charger(h, Cfg(), now_ms=lambda: T[0])
c.auth_required = False
asyncio.run(c.poll_meter())
def run(ms):
    for k in range(ms // 20):
        T[0] += 20
        c.safe_tick()
        if k % 50 == 49:
            asyncio.run(c.poll_meter())
h.control({"cp": "B"}); run(1000)
h.control({"cp": "C"}); run(60000)
asyncio.run(c.poll_meter())
closed = h.relay.closed
h.control({"cp": "B"}); run(20)
print("RESULT", closed, h.relay.closed, h.pilot.duty, c.car, int(c.session_wh))
"""
    p = mp_run(code, heap="512k")
    assert p.returncode == 0, p.stderr + p.stdout
    assert "RESULT True False 266 4 183" in p.stdout, p.stdout


def test_charger_keys_expose_runtime_status_read_only():
    from firmware.evse.api_keys import ChargerKeys

    r = Rig().charge()
    k = ChargerKeys(r.c, version="9.9")
    out = {}
    k.status(out)
    assert out["car"] == 2 and out["err"] == 0 and out["acu"] == 16 and out["alw"] is True
    assert len(out["nrg"]) == 16 and out["fwv"] == "9.9" and out["var"] == 11
    assert out["cus"] == 3 and out["tma"] == [25.0] and out["eto"] == 0
    assert k.owns("car") and not k.owns("amp")
    assert k.check("car", 1) == "read-only"
