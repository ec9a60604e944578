"""Property tests: the composite schedule against an independent reading of the profiles.

The reference below is written from the wire profiles, not from
firmware/smart_charging/profiles.py's internal
lists: per purpose the highest stack level in force wins (a TxDefault on the connector beats
one on connector 0 at the same level), TxProfile replaces TxDefault, the result is the
minimum with ChargePointMax, W become A with V × phases, and the composite reports it
rounded down to 0.1 (the installation maximum where nothing limits).
"""

from conftest import check_ocpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware import clock
from firmware.smart_charging import profiles as smart

T0 = clock.parse("2026-11-24T10:00:00Z")
DAY = 86400
MAXA = 32.0
TXID = 7


class Tx:
    def __init__(self, transaction_id, start_time):
        self.transaction_id = transaction_id
        self.start_time = start_time


@st.composite
def profile(draw, pid, slot):
    purpose, conn, stack = slot
    kind = draw(st.sampled_from(["Absolute", "Recurring", "Relative"]))
    unit = draw(st.sampled_from(["A", "W"]))
    n = draw(st.integers(1, 4))
    starts = [0]
    for _ in range(n - 1):
        starts.append(starts[-1] + draw(st.integers(1, 6 * 3600)))
    periods = []
    for s in starts:
        if unit == "A":
            lim = draw(st.integers(0, 126)) / 2  # halves pass the schema's multipleOf 0.1
        else:
            lim = draw(st.integers(500, 44000))
        per = {"startPeriod": s, "limit": lim}
        ph = draw(st.sampled_from([None, 1, 2, 3]))
        if ph is not None:
            per["numberPhases"] = ph
        periods.append(per)
    sch = {"chargingRateUnit": unit, "chargingSchedulePeriod": periods}
    if kind != "Relative":
        sch["startSchedule"] = clock.rfc3339(T0 + draw(st.integers(-3 * DAY, DAY)))
    if draw(st.booleans()):
        sch["duration"] = draw(st.integers(1, 3 * DAY))
    p = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": sch,
    }
    if kind == "Recurring":
        p["recurrencyKind"] = draw(st.sampled_from(["Daily", "Weekly"]))
    if draw(st.booleans()):
        vf = T0 + draw(st.integers(-2 * DAY, 2 * DAY))
        p["validFrom"] = clock.rfc3339(vf)
        if draw(st.booleans()):
            p["validTo"] = clock.rfc3339(vf + draw(st.integers(1, 2 * DAY)))
    if purpose == "TxProfile" and draw(st.booleans()):
        p["transactionId"] = TXID
    return conn, p


SLOTS = [
    ("ChargePointMaxProfile", 0, 0),
    ("ChargePointMaxProfile", 0, 1),
    ("TxDefaultProfile", 0, 0),
    ("TxDefaultProfile", 0, 2),
    ("TxDefaultProfile", 1, 0),
    ("TxDefaultProfile", 1, 2),
    ("TxProfile", 1, 0),
    ("TxProfile", 1, 1),
]


@st.composite
def scenario(draw):
    slots = draw(st.lists(st.sampled_from(SLOTS), min_size=1, max_size=5, unique=True))
    profiles = [draw(profile(i + 1, s)) for i, s in enumerate(slots)]
    start = T0 + draw(st.integers(-DAY, DAY))
    duration = draw(st.integers(1, 3 * DAY))
    tx = None
    if draw(st.booleans()):
        tx = Tx(TXID, start - draw(st.integers(0, 4 * 3600)))
    volts = draw(st.sampled_from([None, 207.0, 230.0, 241.5]))
    unit = draw(st.sampled_from(["A", "W"]))
    samples = draw(st.lists(st.integers(0, duration - 1), min_size=5, max_size=25))
    return profiles, start, duration, tx, volts, unit, samples


def _in_force(p, t, anchor):
    """Offset into p's schedule at t, or None."""
    if "validFrom" in p and t < clock.parse(p["validFrom"]):
        return None
    if "validTo" in p and t >= clock.parse(p["validTo"]):
        return None
    sch = p["chargingSchedule"]
    base = anchor if p["chargingProfileKind"] == "Relative" else clock.parse(sch["startSchedule"])
    off = t - base
    if off < 0:
        return None
    if p["chargingProfileKind"] == "Recurring":
        off %= DAY if p["recurrencyKind"] == "Daily" else 7 * DAY
    if "duration" in sch and off >= sch["duration"]:
        return None
    return off


def _limit(p, off, volts):
    per = [x for x in p["chargingSchedule"]["chargingSchedulePeriod"] if x["startPeriod"] <= off]
    per = per[-1]
    ph = per.get("numberPhases")
    a = per["limit"]
    if p["chargingSchedule"]["chargingRateUnit"] == "W":
        a = a / (volts * (ph or 3))
    return a, ph


def reference(installed, t, tx, anchor, volts):
    """(limit A or None, phases, [limits of the winning profiles])"""
    winners = {}
    for conn, p in installed:
        pur = p["chargingProfilePurpose"]
        if pur == "TxProfile" and tx is None:
            continue
        off = _in_force(p, t, anchor)
        if off is None:
            continue
        key = (p["stackLevel"], conn)
        if pur not in winners or key > winners[pur][0]:
            winners[pur] = (key, _limit(p, off, volts))
    if "TxProfile" in winners:
        winners.pop("TxDefaultProfile", None)
    lims = [w[1][0] for w in winners.values()]
    phs = [w[1][1] for w in winners.values() if w[1][1]]
    return (min(lims) if lims else None), min(phs + [3]), lims


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_composite_never_exceeds_active_profiles_and_equals_the_rule(sc_args):
    profiles, start, duration, tx, volts, unit, samples = sc_args
    eng = smart.SmartCharging(None, None, connectors=1, max_current=MAXA)
    eng.set_voltage(volts)
    v = volts or 230.0
    installed = []
    for conn, p in profiles:
        check_ocpp("SetChargingProfile", {"connectorId": conn, "csChargingProfiles": p})
        st_ = eng.set_profile(conn, p, tx=Tx(TXID, start) if tx is None else tx, now=T0)
        assert st_ == "Accepted"
        if p["chargingProfilePurpose"] != "TxProfile" or tx is not None:
            installed.append((conn, p))
    if tx is None:
        eng.end_transaction(1)  # the TxProfiles were for a transaction that has ended
    sched = eng.composite(1, start, duration, unit, tx=tx)
    periods = sched["chargingSchedulePeriod"]
    assert periods[0]["startPeriod"] == 0
    pairs = list(zip(periods, periods[1:], strict=False))
    assert all(a["startPeriod"] < b["startPeriod"] for a, b in pairs)
    assert all(
        (a["limit"], a["numberPhases"]) != (b["limit"], b["numberPhases"])
        for a, b in pairs
    )
    anchor = tx.start_time if tx is not None else start
    offsets = set(samples)
    for x in periods:
        offsets.update((x["startPeriod"], max(0, x["startPeriod"] - 1)))
    for off in sorted(offsets):
        t = start + off
        cur = [x for x in periods if x["startPeriod"] <= off][-1]
        amps, ph, lims = reference(installed, t, tx, anchor, v)
        assert cur["numberPhases"] == ph
        a = MAXA if amps is None else amps
        want = smart.floor_tenth(a * v * ph if unit == "W" else a)
        assert cur["limit"] == want, (off, cur, amps, lims)
        got_a = cur["limit"] / (v * ph) if unit == "W" else cur["limit"]
        for lim in lims:
            assert got_a <= lim + 1e-9
        assert cur["limit"] >= 0  # never -1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_next_change_is_the_first_second_the_limit_changes(sc_args):
    profiles, start, duration, tx, volts, unit, samples = sc_args
    eng = smart.SmartCharging(None, None, connectors=1, max_current=MAXA)
    eng.set_voltage(volts)
    for conn, p in profiles:
        eng.set_profile(conn, p, tx=tx, now=T0)
    for off in samples[:5]:
        t = start + off
        here = eng.limit_at(t, 1, tx)
        nc = eng.next_change(t, 1, tx)
        if nc is None:
            for d in (1, 3600, DAY, 9 * DAY):
                assert eng.limit_at(t + d, 1, tx) == here
            continue
        assert nc > t
        assert eng.limit_at(nc - 1, 1, tx) == here
        if eng.limit_at(nc, 1, tx) == here:
            # Repeating profiles that never change the limit: after its step bound
            # next_change hands back a far boundary to look again at, never a near one.
            assert nc - t >= 7 * DAY
        for frac in (0.25, 0.5, 0.75):
            assert eng.limit_at(t + int((nc - t) * frac), 1, tx) == here
