"""firmware/solar.py: charging on the PV surplus pushed in `ids` (go-e API v2), with `fup`.

The controller runs on an injected clock; the charger's measured state (plugged, energised,
the meter's power and currents) is set as its meter would report it."""

import pytest
from txnkit import make

from firmware import solar as solarmod


class Clock:
    def __init__(self):
        self.t = 5000

    def __call__(self):
        return self.t


@pytest.fixture
def rig(tmp_path):
    cp, _ = make(tmp_path, ocppe=False)
    clock = Clock()
    s = solarmod.Solar(cp, now_ms=clock)
    cp.solar = s
    return cp, s, clock


def car(cp, amps=0.0, phases=3, plugged=True):
    """What the meter reports while the car draws `amps` on `phases` at 230 V."""
    c = cp.charger
    c._plugged = plugged
    c.energized = amps > 0
    for k in range(3):
        c.nrg[k] = 230.0
        c.nrg[4 + k] = amps if k < phases else 0.0
    c.nrg[11] = amps * 230.0 * phases


def push(s, p_grid, p_pv=None, p_akku=None):
    ids = {"pGrid": p_grid, "pPv": p_pv, "pAkku": p_akku}
    assert s.check("ids", ids) is None
    s.apply({"ids": ids})


def run_for(s, clock, ms, step_ms=1000, feed=None):
    for _ in range(ms // step_ms):
        clock.t += step_ms
        if feed:
            feed()
        s.step()


def limit(cp):
    return cp.charger._limits.get("solar")


def test_fup_off_limits_nothing(rig):
    cp, s, clock = rig
    car(cp)
    push(s, -5000)
    s.step()
    assert limit(cp) is None and s.amps is None and not s.active()


def test_no_car_holds_the_limit_at_zero(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp, plugged=False)
    push(s, -8000)
    run_for(s, clock, 60000, feed=lambda: push(s, -8000))
    assert limit(cp) == 0


def test_starts_after_30_s_of_surplus_and_follows_it(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    push(s, -3000)  # 3 kW export: 4 A on three phases, not enough
    run_for(s, clock, 60000, feed=lambda: push(s, -3000))
    assert limit(cp) == 0 and s.active()
    push(s, -5000)  # 5000 W / (3 x 230 V) = 7 A
    run_for(s, clock, 29000, feed=lambda: push(s, -5000))
    assert limit(cp) == 0
    run_for(s, clock, 2000, feed=lambda: push(s, -5000))
    assert limit(cp) == 7
    # Charging at 7 A (4830 W): the export shrinks to 170 W, the surplus stays 5000 W.
    car(cp, 7)
    run_for(s, clock, 10000, feed=lambda: push(s, -170))
    assert limit(cp) == 7
    # More sun: 2000 W more export on top of the car's draw -> 10 A.
    run_for(s, clock, 2000, feed=lambda: push(s, -2170))
    assert limit(cp) == 10


def test_below_the_minimum_it_holds_6_a_for_2_minutes_then_pauses(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    run_for(s, clock, 31000, feed=lambda: push(s, -5000))
    assert limit(cp) == 7
    car(cp, 7)
    # A cloud: 1500 W imported while the car draws 4830 W -> 3330 W surplus, 4 A.
    run_for(s, clock, 119000, feed=lambda: push(s, 1500))
    assert limit(cp) == 6
    run_for(s, clock, 2000, feed=lambda: push(s, 1500))
    assert limit(cp) == 0
    # Paused: the next start needs the surplus again for 30 s.
    car(cp, 0)
    run_for(s, clock, 20000, feed=lambda: push(s, -5000))
    assert limit(cp) == 0
    run_for(s, clock, 11000, feed=lambda: push(s, -5000))
    assert limit(cp) == 7


def test_a_short_dip_does_not_pause(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    run_for(s, clock, 31000, feed=lambda: push(s, -5000))
    car(cp, 7)
    run_for(s, clock, 60000, feed=lambda: push(s, 1500))
    run_for(s, clock, 5000, feed=lambda: push(s, -170))
    run_for(s, clock, 100000, feed=lambda: push(s, 1500))
    assert limit(cp) == 6  # the 2 minutes began again after the dip


def test_the_home_battery_keeps_its_charge_and_is_never_drained(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    # 5 kW export but the battery discharges 2 kW: only 3 kW are really spare -> 4 A.
    run_for(s, clock, 40000, feed=lambda: push(s, -5000, 8000, 2000))
    assert limit(cp) == 0
    # The battery charging at 3 kW is left alone: 5 kW export -> 7 A.
    run_for(s, clock, 31000, feed=lambda: push(s, -5000, 9000, -3000))
    assert limit(cp) == 7


def test_stale_data_pause_charging_until_fresh_data_come(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    run_for(s, clock, 31000, feed=lambda: push(s, -5000))
    car(cp, 7)
    assert limit(cp) == 7
    run_for(s, clock, 59000)  # the home controller went silent
    assert limit(cp) == 7 and s.age() == 59000
    run_for(s, clock, 1000)
    assert limit(cp) == 0
    car(cp, 0)
    run_for(s, clock, 31000, feed=lambda: push(s, -5000))
    assert limit(cp) == 7


def test_fup_off_again_removes_the_limit(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    run_for(s, clock, 5000, feed=lambda: push(s, -1000))
    assert limit(cp) == 0
    assert cp.config.update({"fup": False}, "api") == {}
    s.step()
    assert limit(cp) is None


def test_one_phase_car_is_counted_on_its_phase(rig):
    cp, s, clock = rig
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    run_for(s, clock, 31000, feed=lambda: push(s, -5000))
    assert limit(cp) == 7
    car(cp, 7, phases=1)  # a one-phase car: 1610 W
    run_for(s, clock, 2000, feed=lambda: push(s, -1500))
    assert limit(cp) == 13  # (1610 + 1500) W / 230 V


def test_phase_switching_follows_the_surplus_with_hysteresis(tmp_path):
    from hal.sim import SimHal

    cp, _ = make(tmp_path, ocppe=False)
    cp.hal = SimHal(phase_switch=True)
    cp.charger.hal = cp.hal
    clock = Clock()
    s = solarmod.Solar(cp, now_ms=clock)
    cp.solar = s
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    # 2000 W: below the three-phase minimum (6 A x 3 x 230 V = 4140 W), enough for one.
    run_for(s, clock, 59000, feed=lambda: push(s, -2000))
    assert s.phases is None and limit(cp) == 0
    run_for(s, clock, 2000, feed=lambda: push(s, -2000))
    assert s.phases == 1 and cp.charger.phases_asked == 1  # no smart charging: asked here
    run_for(s, clock, 31000, feed=lambda: push(s, -2000))
    assert limit(cp) == 8  # 2000 W / 230 V on one phase
    car(cp, 8, phases=1)
    # 4500 W of surplus: above 4140 W but not by the 500 W hysteresis: stays on one phase.
    run_for(s, clock, 120000, feed=lambda: push(s, -(4500 - 1840)))
    assert s.phases == 1 and limit(cp) == 19
    # 5000 W: three phases again after 60 s, but not within 5 minutes of the last switch.
    run_for(s, clock, 120000, feed=lambda: push(s, -(5000 - 1840)))
    assert s.phases == 1
    run_for(s, clock, 60000, feed=lambda: push(s, -(5000 - 1840)))
    assert s.phases is None and cp.charger.phases_asked is None


def test_psm_set_by_the_user_wins_over_the_controller(tmp_path):
    from hal.sim import SimHal

    cp, _ = make(tmp_path, ocppe=False, psm=2)
    cp.hal = SimHal(phase_switch=True)
    clock = Clock()
    s = solarmod.Solar(cp, now_ms=clock)
    assert cp.config.update({"fup": True}, "api") == {}
    car(cp)
    run_for(s, clock, 120000, feed=lambda: push(s, -2000))
    assert s.phases is None


@pytest.mark.parametrize(
    "value,ok",
    [
        ({"pGrid": -1000.0, "pPv": 3000.0, "pAkku": 0.0}, True),
        ({"pGrid": 12}, True),
        ({"pGrid": 1, "pPv": None, "pAkku": None}, True),
        (None, True),
        ({"pPv": 3000}, False),
        ({"pGrid": "1"}, False),
        ({"pGrid": True}, False),
        ({"pGrid": 1, "pAkku": "x"}, False),
        ({"pGrid": float("nan")}, False),
        ([1, 2, 3], False),
        (5, False),
    ],
)
def test_ids_is_checked(rig, value, ok):
    _, s, _ = rig
    assert (s.check("ids", value) is None) == ok


def test_ids_reads_back_and_null_forgets_it(rig):
    cp, s, clock = rig
    push(s, -1000.5, 3000, -200)
    clock.t += 1500
    out = {}
    s.status(out)
    assert out == {"ids": {"pGrid": -1000.5, "pPv": 3000, "pAkku": -200}, "pgrid": -1000.5,
                   "ppv": 3000, "pakku": -200, "inva": 1500}
    s.apply({"ids": None})
    s.status(out)
    assert out["ids"] is None and out["inva"] is None
    assert s.check("pgrid", 1) == "read-only"
