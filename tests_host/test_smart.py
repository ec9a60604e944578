"""Smart charging engine: worked examples of limits, composite schedules, store rules."""

import json

import pytest
from conftest import MICROPYPATH, check_ocpp, mp_run

import log
from firmware import clock
from firmware.smart_charging import profiles as smart

T0 = clock.parse("2026-11-24T10:00:00Z")  # a Tuesday
DAY = 86400


class Tx:
    def __init__(self, transaction_id, start_time):
        self.transaction_id = transaction_id
        self.start_time = start_time


class MemStore:
    """Holds what was saved as JSON text, as a file would."""

    def __init__(self):
        self.text = None
        self.fail = False

    def load(self):
        return None if self.text is None else json.loads(self.text)

    def save(self, obj):
        if self.fail:
            raise OSError(28, "no space")
        self.text = json.dumps(obj)


class Config:
    def __init__(self, **kw):
        self.values = kw

    def get(self, name):
        return self.values.get(name)


def prof(pid, purpose="TxDefaultProfile", stack=0, kind="Absolute", periods=((0, 16),),
         unit="A", start=T0, duration=None, recur=None, vfrom=None, vto=None, txid=None,
         minrate=None):
    sch = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            dict({"startPeriod": p[0], "limit": p[1]}, **({"numberPhases": p[2]} if len(p) > 2
                                                         else {}))
            for p in periods
        ],
    }
    if start is not None and kind != "Relative":
        sch["startSchedule"] = clock.rfc3339(start)
    if duration is not None:
        sch["duration"] = duration
    if minrate is not None:
        sch["minChargingRate"] = minrate
    p = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": sch,
    }
    if recur:
        p["recurrencyKind"] = recur
    if vfrom is not None:
        p["validFrom"] = clock.rfc3339(vfrom)
    if vto is not None:
        p["validTo"] = clock.rfc3339(vto)
    if txid is not None:
        p["transactionId"] = txid
    return p


def setp(engine, connector, profile, tx=None, now=T0):
    # Every request used in these tests is one a central system may legally send.
    check_ocpp("SetChargingProfile", {"connectorId": connector, "csChargingProfiles": profile})
    return engine.set_profile(connector, profile, tx=tx, now=now)


def amps(engine, t, connector=1, tx=None):
    return engine.limit_at(t, connector, tx)[0]


@pytest.fixture
def sc():
    return smart.SmartCharging(MemStore(), Config(), connectors=1, max_current=32)


# ---- composite computation, worked examples -----------------------------------------


def test_absolute_profile_with_several_periods(sc):
    p = prof(1, periods=((0, 16), (3600, 10), (7200, 20)), duration=10800)
    assert setp(sc, 1, p) == "Accepted"
    assert amps(sc, T0 - 1) is None
    assert amps(sc, T0) == 16
    assert amps(sc, T0 + 3599) == 16
    assert amps(sc, T0 + 3600) == 10
    assert amps(sc, T0 + 7200) == 20
    assert amps(sc, T0 + 10799) == 20
    assert amps(sc, T0 + 10800) is None
    assert sc.next_change(T0 - 50) == T0
    assert sc.next_change(T0) == T0 + 3600
    assert sc.next_change(T0 + 3600) == T0 + 7200
    assert sc.next_change(T0 + 7200) == T0 + 10800
    assert sc.next_change(T0 + 10800) is None
    c = sc.composite(1, T0 - 600, 4 * 3600, "A")
    assert c["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 3},
        {"startPeriod": 600, "limit": 16.0, "numberPhases": 3},
        {"startPeriod": 4200, "limit": 10.0, "numberPhases": 3},
        {"startPeriod": 7800, "limit": 20.0, "numberPhases": 3},
        {"startPeriod": 11400, "limit": 32.0, "numberPhases": 3},
    ]
    assert c["duration"] == 4 * 3600 and c["chargingRateUnit"] == "A"


def test_recurring_daily_across_midnight(sc):
    start = clock.parse("2026-11-24T22:00:00Z")
    # 22:00 → 8 A, from midnight 16 A, until 06:00; every day.
    p = prof(2, kind="Recurring", recur="Daily", start=start,
             periods=((0, 8), (7200, 16)), duration=8 * 3600)
    assert setp(sc, 1, p) == "Accepted"
    assert amps(sc, start - 1) is None  # not before the anchor
    assert amps(sc, start) == 8
    assert amps(sc, start + 3599) == 8
    midnight = clock.parse("2026-11-25T00:00:00Z")
    assert amps(sc, midnight - 1) == 8
    assert amps(sc, midnight) == 16
    assert amps(sc, clock.parse("2026-11-25T05:59:59Z")) == 16
    assert amps(sc, clock.parse("2026-11-25T06:00:00Z")) is None
    assert amps(sc, clock.parse("2026-11-27T12:00:00Z")) is None
    assert amps(sc, clock.parse("2026-11-29T23:30:00Z")) == 8
    assert amps(sc, clock.parse("2026-11-30T01:00:00Z")) == 16
    t = clock.parse("2026-11-28T05:00:00Z")
    assert sc.next_change(t) == clock.parse("2026-11-28T06:00:00Z")
    assert sc.next_change(t + 3600) == clock.parse("2026-11-28T22:00:00Z")
    assert sc.next_change(clock.parse("2026-11-28T22:00:00Z")) == clock.parse(
        "2026-11-29T00:00:00Z")


def test_recurring_weekly_across_the_week_boundary(sc):
    sunday = clock.parse("2026-11-29T20:00:00Z")
    assert clock.weekday(sunday) == 6
    # Sunday 20:00 → 10 A, Monday 00:00 → 20 A, until Monday 20:00; every week.
    p = prof(3, kind="Recurring", recur="Weekly", start=sunday,
             periods=((0, 10), (4 * 3600, 20)), duration=DAY)
    assert setp(sc, 1, p) == "Accepted"
    nxt = sunday + 7 * DAY
    assert amps(sc, nxt + 3600) == 10
    assert amps(sc, nxt + 4 * 3600 - 1) == 10
    assert amps(sc, nxt + 4 * 3600) == 20  # Monday 00:00, a new week
    assert clock.weekday(nxt + 4 * 3600) == 0
    assert amps(sc, nxt + DAY - 1) == 20
    assert amps(sc, nxt + DAY) is None
    assert amps(sc, nxt + 3 * DAY) is None  # Wednesday
    assert sc.next_change(nxt + 3 * DAY) == sunday + 14 * DAY
    c = sc.composite(1, nxt - 3600, 6 * 3600, "A")
    assert c["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 3},
        {"startPeriod": 3600, "limit": 10.0, "numberPhases": 3},
        {"startPeriod": 5 * 3600, "limit": 20.0, "numberPhases": 3},
    ]


def test_relative_profile_follows_the_transaction_start(sc):
    p = prof(4, kind="Relative", periods=((0, 6), (1800, 16)), duration=3600)
    assert setp(sc, 1, p) == "Accepted"
    tx = Tx(77, T0 + 500)
    assert amps(sc, T0 + 600, tx=tx) == 6
    assert amps(sc, T0 + 500 + 1799, tx=tx) == 6
    assert amps(sc, T0 + 500 + 1800, tx=tx) == 16
    assert amps(sc, T0 + 500 + 3600, tx=tx) is None
    assert sc.next_change(T0 + 600, tx=tx) == T0 + 2300
    # Without a transaction: the first period (what a transaction starting now gets).
    assert amps(sc, T0 + 99999) == 6
    c = sc.composite(1, T0 + 1000, 3600, "A", tx=tx)
    assert c["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 6.0, "numberPhases": 3},
        {"startPeriod": 1300, "limit": 16.0, "numberPhases": 3},
        {"startPeriod": 3100, "limit": 32.0, "numberPhases": 3},
    ]
    # No transaction: laid out as if one started at the schedule start.
    c = sc.composite(1, T0, 3600, "A")
    assert [x["startPeriod"] for x in c["chargingSchedulePeriod"]] == [0, 1800]


def test_txprofile_overrides_txdefault_and_ends_with_the_transaction(sc):
    tx = Tx(42, T0)
    assert setp(sc, 0, prof(1, stack=5, periods=((0, 10),))) == "Accepted"
    assert setp(sc, 1, prof(2, purpose="TxProfile", stack=0, periods=((0, 20),)), tx=tx) == (
        "Accepted")
    assert amps(sc, T0 + 10, tx=tx) == 20
    assert amps(sc, T0 + 10, tx=Tx(43, T0)) == 10  # bound to transaction 42 only
    assert amps(sc, T0 + 10) == 10
    sc.end_transaction(1)
    assert sc.count() == 1
    assert amps(sc, T0 + 10, tx=tx) == 10


def test_txprofile_expired_falls_back_to_txdefault(sc):
    tx = Tx(42, T0)
    setp(sc, 1, prof(1, periods=((0, 10),)))
    setp(sc, 1, prof(2, purpose="TxProfile", periods=((0, 20),), duration=60), tx=tx)
    assert amps(sc, T0 + 59, tx=tx) == 20
    assert amps(sc, T0 + 60, tx=tx) == 10
    assert sc.next_change(T0, tx=tx) == T0 + 60


def test_chargepointmax_caps_the_transaction_limit(sc):
    assert setp(sc, 0, prof(1, purpose="ChargePointMaxProfile", periods=((0, 16),))) == (
        "Accepted")
    assert setp(sc, 1, prof(2, periods=((0, 32), (600, 10)))) == "Accepted"
    assert amps(sc, T0) == 16
    assert amps(sc, T0 + 600) == 10
    sc.set_local_limit("temp", 8)
    assert amps(sc, T0 + 600) == 8
    sc.set_local_limit("temp", None)
    assert amps(sc, T0 + 600) == 10


def test_higher_stack_level_wins_while_in_force(sc):
    setp(sc, 1, prof(1, stack=0, periods=((0, 16),)))
    setp(sc, 1, prof(2, stack=1, periods=((0, 10),), duration=600))
    assert amps(sc, T0) == 10
    assert amps(sc, T0 + 600) == 16
    assert sc.next_change(T0) == T0 + 600
    # A TxDefault on the connector beats one on connector 0 at the same level.
    setp(sc, 0, prof(3, stack=3, periods=((0, 12),)))
    setp(sc, 1, prof(4, stack=3, periods=((0, 14),)))
    assert amps(sc, T0 + 600) == 14


def test_watts_to_amps_with_nominal_and_measured_voltage(sc):
    setp(sc, 1, prof(1, unit="W", periods=((0, 11040),)))
    assert amps(sc, T0) == pytest.approx(16.0)
    sc.set_voltage(240)
    assert amps(sc, T0) == pytest.approx(11040 / 720)
    sc.set_voltage(None)  # meter gone: nominal again
    assert amps(sc, T0) == pytest.approx(16.0)
    setp(sc, 1, prof(1, unit="W", periods=((0, 3680, 1),)))
    assert sc.limit_at(T0, 1) == (pytest.approx(16.0), 1)


def test_watts_on_a_charger_that_cannot_switch_phases_use_all_its_phases(sc):
    # 7360 W "on one phase" is 32 A on one phase; a 3-phase charger that cannot switch to
    # one phase must not offer 32 A on all three (22 kW): it offers 7360 W over 3 phases.
    sc.phases_hw = 3
    sc.can_switch = False
    setp(sc, 1, prof(1, unit="W", periods=((0, 7360, 1),)))
    assert amps(sc, T0) == pytest.approx(7360 / (3 * 230))
    # With a phase switch, numberPhases is what the car will get: 32 A on one phase.
    sc.can_switch = True
    assert amps(sc, T0) == pytest.approx(32.0)
    # A single-phase charger: its one phase, whatever the profile says.
    sc.phases_hw = 1
    sc.can_switch = False
    setp(sc, 1, prof(1, unit="W", periods=((0, 3680),)))
    assert amps(sc, T0) == pytest.approx(16.0)


def test_composite_converts_amps_to_watts_and_watts_to_amps(sc):
    setp(sc, 1, prof(1, periods=((0, 16), (600, 10, 1))))
    w = sc.composite(1, T0, 1200, "W")["chargingSchedulePeriod"]
    assert w == [
        {"startPeriod": 0, "limit": 11040.0, "numberPhases": 3},
        {"startPeriod": 600, "limit": 2300.0, "numberPhases": 1},
    ]
    setp(sc, 1, prof(1, unit="W", periods=((0, 7360),)))
    a = sc.composite(1, T0, 1200, "A")["chargingSchedulePeriod"]
    assert a == [{"startPeriod": 0, "limit": 10.6, "numberPhases": 3}]  # 10.667 down


def test_valid_from_inclusive_valid_to_exclusive(sc):
    setp(sc, 1, prof(1, periods=((0, 16),), vfrom=T0 + 100, vto=T0 + 200))
    assert amps(sc, T0 + 99) is None
    assert amps(sc, T0 + 100) == 16
    assert amps(sc, T0 + 199) == 16
    assert amps(sc, T0 + 200) is None
    assert sc.next_change(T0) == T0 + 100
    assert sc.next_change(T0 + 100) == T0 + 200


def test_composite_merges_equal_periods_and_rounds_down(sc):
    setp(sc, 0, prof(1, purpose="ChargePointMaxProfile", periods=((0, 12),)))
    setp(sc, 1, prof(2, periods=((0, 16), (300, 20), (600, 8), (900, 8.5))))
    c = sc.composite(1, T0, 1200, "A")["chargingSchedulePeriod"]
    assert c == [
        {"startPeriod": 0, "limit": 12.0, "numberPhases": 3},
        {"startPeriod": 600, "limit": 8.0, "numberPhases": 3},
        {"startPeriod": 900, "limit": 8.5, "numberPhases": 3},
    ]
    setp(sc, 0, prof(1, purpose="ChargePointMaxProfile", unit="W", periods=((0, 10000),)))
    c = sc.composite(1, T0, 1200, "A")["chargingSchedulePeriod"]
    assert c[0]["limit"] == 14.4  # 14.49 A, never rounded up
    assert -1 not in [x["limit"] for x in c]


def test_composite_unknown_connector_is_none(sc):
    assert sc.composite(2, T0, 60, "A") is None


# ---- store rules ------------------------------------------------------------------------


def test_same_id_or_same_slot_replaces(sc):
    setp(sc, 1, prof(1, stack=1, periods=((0, 16),)))
    setp(sc, 1, prof(1, stack=2, periods=((0, 10),)))  # same id
    assert sc.count() == 1 and amps(sc, T0) == 10
    setp(sc, 1, prof(9, stack=2, periods=((0, 7),)))  # same purpose, level, connector
    assert sc.count() == 1 and amps(sc, T0) == 7
    setp(sc, 0, prof(10, stack=2, periods=((0, 6),)))  # other connector: stacks
    assert sc.count() == 2


def test_persistence_round_trip_keeps_every_field():
    store = MemStore()
    cfg = Config(ChargeProfileMaxStackLevel=4)
    a = smart.SmartCharging(store, cfg)
    tx = Tx(5, T0)
    setp(a, 0, prof(1, purpose="ChargePointMaxProfile", stack=4, unit="W",
                    periods=((0, 11000.5), (60, 7000, 1)), minrate=1380.5, duration=7200,
                    vfrom=T0 - 10, vto=T0 + DAY))
    setp(a, 1, prof(2, kind="Recurring", recur="Weekly", stack=4, periods=((0, 6.5),),
                    minrate=6))
    setp(a, 1, prof(3, kind="Relative", stack=0, periods=((0, 6), (30, 13, 2))))
    setp(a, 1, prof(4, purpose="TxProfile", stack=4, periods=((0, 9),), txid=5), tx=tx)
    b = smart.SmartCharging(store, cfg)
    assert b.count() == 4
    assert b._p == a._p  # every field, including minChargingRate and the top level
    for t in (T0, T0 + 59, T0 + 60, T0 + 3600):
        assert b.limit_at(t, 1, tx) == a.limit_at(t, 1, tx)
    p = [q for q in b._p if q[0] == 1][0]
    assert p[smart._MINRATE] == 13805 and p[smart._STACK] == 4


def test_persistence_to_profiles_json_file(tmp_path):
    a = smart.SmartCharging(smart.FileStore(str(tmp_path)))
    setp(a, 1, prof(1, periods=((0, 10),)))
    assert (tmp_path / "profiles.json").exists()
    b = smart.SmartCharging(smart.FileStore(str(tmp_path)))
    assert amps(b, T0) == 10


def test_corrupt_store_gives_an_empty_store_and_an_error(tmp_path):
    (tmp_path / "profiles.json").write_text('{"v": 1, "p": [[1, 2]]}')
    log.last_error = None
    s = smart.SmartCharging(smart.FileStore(str(tmp_path)))
    assert s.count() == 0 and "smart" in log.last_error


def test_failed_save_rejects_and_keeps_the_old_profile():
    store = MemStore()
    s = smart.SmartCharging(store)
    setp(s, 1, prof(1, periods=((0, 10),)))
    store.fail = True
    assert setp(s, 1, prof(1, periods=((0, 20),))) == "Rejected"
    assert amps(s, T0) == 10


def test_no_room_is_never_a_rejected_profile(monkeypatch):
    """A MemoryError parsing or saving a profile is our shortage, not a bad profile: it goes
    up (the RPC answers InternalError, out of memory), never Rejected, and changes nothing."""
    store = MemStore()
    s = smart.SmartCharging(store)
    setp(s, 1, prof(1, periods=((0, 10),)))
    saved = store.text

    def no_room(*a, **k):
        raise MemoryError("memory allocation failed")

    with monkeypatch.context() as m:
        m.setattr(s, "_parse", no_room)
        with pytest.raises(MemoryError):
            setp(s, 1, prof(2, stack=1, periods=((0, 20),)))
    with monkeypatch.context() as m:
        m.setattr(store, "save", no_room)
        with pytest.raises(MemoryError):
            setp(s, 1, prof(2, stack=1, periods=((0, 20),)))
        with pytest.raises(MemoryError):
            s.clear(1)
    assert s.count() == 1 and amps(s, T0) == 10 and store.text == saved


@pytest.mark.parametrize(
    "kw,expect",
    [
        ({}, "Accepted"),
        ({"connector_id": 1}, "Accepted"),
        ({"connector_id": 0}, "Accepted"),
        ({"purpose": "TxDefaultProfile"}, "Accepted"),
        ({"stack_level": 3}, "Accepted"),
        ({"purpose": "ChargePointMaxProfile", "stack_level": 3}, "Accepted"),
        ({"purpose": "ChargePointMaxProfile", "stack_level": 1}, "Unknown"),
        ({"connector_id": 1, "purpose": "ChargePointMaxProfile"}, "Unknown"),
        ({"profile_id": 12}, "Accepted"),
        ({"profile_id": 99}, "Unknown"),
        ({"purpose": "Bogus"}, "Unknown"),
    ],
)
def test_clear_combinations(sc, kw, expect):
    setp(sc, 0, prof(10, purpose="ChargePointMaxProfile", stack=3))
    setp(sc, 1, prof(11, stack=1))
    setp(sc, 0, prof(12, stack=3))
    before = {p[0] for p in sc._p}
    assert sc.clear(**kw) == expect
    after = {p[0] for p in sc._p}
    gone = before - after
    expected_gone = {
        "{}": {10, 11, 12},
        "{'connector_id': 1}": {11},
        "{'connector_id': 0}": {10, 12},
        "{'purpose': 'TxDefaultProfile'}": {11, 12},
        "{'stack_level': 3}": {10, 12},
        "{'purpose': 'ChargePointMaxProfile', 'stack_level': 3}": {10},
        "{'profile_id': 12}": {12},
    }.get(str(kw), set())
    assert gone == expected_gone


def test_clear_persists():
    store = MemStore()
    s = smart.SmartCharging(store)
    setp(s, 1, prof(1))
    s.clear(profile_id=1)
    assert smart.SmartCharging(store).count() == 0


def test_configured_limits_reject():
    cfg = Config(ChargeProfileMaxStackLevel=2, ChargingScheduleAllowedChargingRateUnit="Current",
                 ChargingScheduleMaxPeriods=3, MaxChargingProfilesInstalled=2)
    s = smart.SmartCharging(MemStore(), cfg)
    assert setp(s, 1, prof(1, stack=3)) == "Rejected"
    assert setp(s, 1, prof(1, stack=2)) == "Accepted"
    assert setp(s, 1, prof(2, unit="W", periods=((0, 5000),))) == "Rejected"
    many = tuple((i * 60, 10) for i in range(4))
    assert setp(s, 1, prof(2, periods=many)) == "Rejected"
    assert setp(s, 1, prof(2, periods=many[:3])) == "Accepted"
    assert setp(s, 0, prof(3, stack=0)) == "Rejected"  # a third profile
    assert setp(s, 1, prof(2, stack=1, periods=((0, 8),))) == "Accepted"  # replaces
    assert s.count() == 2


@pytest.mark.parametrize(
    "connector,profile,tx",
    [
        (1, prof(1, purpose="ChargePointMaxProfile"), None),
        (0, prof(1, purpose="TxProfile"), Tx(1, T0)),
        (1, prof(1, purpose="TxProfile"), None),
        (1, prof(1, purpose="TxProfile", txid=2), Tx(1, T0)),
        (1, prof(1, txid=2), Tx(2, T0)),
        (2, prof(1), None),
        (1, prof(1, periods=((10, 16),)), None),
        (1, prof(1, periods=((0, 16), (0, 10))), None),
        (1, prof(1, periods=((0, 16, 4),)), None),
        (1, prof(1, vfrom=T0 + 10, vto=T0), None),
        (1, prof(1, kind="Recurring"), None),
        (1, prof(1, periods=((0, -1),)), None),
    ],
)
def test_invalid_profiles_are_rejected(sc, connector, profile, tx):
    assert sc.set_profile(connector, profile, tx=tx, now=T0) == "Rejected"
    assert sc.count() == 0


def test_absolute_without_start_schedule_starts_when_set(sc):
    assert setp(sc, 1, prof(1, start=None, periods=((0, 10), (60, 20))), now=T0 + 5) == (
        "Accepted")
    assert amps(sc, T0 + 64) == 10
    assert amps(sc, T0 + 65) == 20


def test_24_periods_cost_one_small_list(sc):
    periods = tuple((i * 3600, 6 + i) for i in range(24))
    assert setp(sc, 1, prof(1, kind="Recurring", recur="Daily", periods=periods)) == "Accepted"
    p = sc._p[0][smart._PER]
    assert len(p) == 72 and all(isinstance(x, int) for x in p)
    assert amps(sc, T0 + DAY + 5 * 3600) == 11


def test_composite_runs_on_micropython():
    code = """
from firmware import clock
from firmware.smart_charging import profiles as smart
class S:
    text = None
    def load(self):
        return self.text
    def save(self, o):
        self.text = o
s = smart.SmartCharging(S())
t0 = clock.parse("2026-11-24T22:00:00Z")
p = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
     "chargingProfileKind": "Recurring", "recurrencyKind": "Daily",
     "chargingSchedule": {"chargingRateUnit": "W", "startSchedule": "2026-11-24T22:00:00Z",
        "duration": 28800, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11040},
        {"startPeriod": 7200, "limit": 3680, "numberPhases": 1}]}}
print(s.set_profile(1, p, now=t0))
c = s.composite(1, t0 + 86400 - 3600, 12 * 3600, "A")
print([(x["startPeriod"], x["limit"], x["numberPhases"]) for x in c["chargingSchedulePeriod"]])
print(s.next_change(t0 + 86400))
"""
    # '.frozen' (asyncio and friends) as on the board; the harness path leaves it out.
    r = mp_run(code, env={"MICROPYPATH": ".frozen:" + MICROPYPATH})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "Accepted"
    assert eval(lines[1]) == [(0, 32.0, 3), (3600, 16.0, 3), (3 * 3600, 16.0, 1),
                              (9 * 3600, 32.0, 3)]
    assert int(lines[2]) == clock.parse("2026-11-26T00:00:00Z")
