"""End-to-end, issue "Smart Charging profile": the firmware on the MicroPython unix port
against the demo central system (the `ocpp` package), on 127.0.0.1.

Every request the central system sends is checked with check_ocpp before it goes, every
answer (the CALLRESULT as it came over the wire) with check_ocpp(..., response=True), and
every CALL the firmware sent at the end of each test.

Covered: TxDefaultProfile and a ChargePointMaxProfile in W on `acu` and the simulated pilot
within 1 s; ClearChargingProfile back to `amp`; a TxProfile of three periods followed to
the second, bound to its transaction and gone with it; the chargingProfile of
RemoteStartTransaction; GetCompositeSchedule for connectors 0 and 1 in A and W; profiles
(stack levels, minChargingRate) kept across a restart on the same data.

Time: profiles are laid out in the firmware's wall clock. The firmware takes the time from
BootNotification.conf in whole seconds, so it may run up to one second behind this host;
`fw_offset` measures that offset (an integer: both count the same host seconds) so each
expected boundary is known to the millisecond.
"""

import json
import re
import time

import pytest
from conftest import check_ocpp
from e2e import received
from ocpp.v16 import call

from firmware import clock

pytestmark = pytest.mark.e2e


def _snake(name):
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def request(c, action, payload):
    """Send one request (wire payload, camelCase) as the central system; returns the wire
    payload of the answer. Both are checked against the official schemas."""
    check_ocpp(action, payload)
    n = len(c.csms.answers)
    c.call("CP1", getattr(call, action)(**{_snake(k): v for k, v in payload.items()}))
    frames = [f for cp_id, f in c.csms.answers[n:] if cp_id == "CP1" and f[0] == 3]
    assert len(frames) == 1, frames
    answer = frames[0][2]
    check_ocpp(action, answer, response=True)
    return answer


def fw_offset(c):
    """Firmware clock minus host clock, in whole seconds (0 or -1 in practice)."""
    for _ in range(20):
        t0 = time.time()
        r = request(c, "GetCompositeSchedule", {"connectorId": 0, "duration": 1})
        t1 = time.time()
        if int(t0) == int(t1):
            return clock.parse(r["scheduleStart"]) - int(t0)
    raise AssertionError("could not read the firmware clock within one host second")


def profile(pid, purpose, periods, stack=0, unit="A", start=None, kind="Absolute",
            recur=None, duration=None, min_rate=None, valid_to=None, txid=None):
    sched = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            dict({"startPeriod": p[0], "limit": p[1]},
                 **({"numberPhases": p[2]} if len(p) > 2 else {}))
            for p in periods
        ],
    }
    if start is not None:
        sched["startSchedule"] = clock.rfc3339(start)
    if duration is not None:
        sched["duration"] = duration
    if min_rate is not None:
        sched["minChargingRate"] = min_rate
    p = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": sched,
    }
    if recur is not None:
        p["recurrencyKind"] = recur
    if valid_to is not None:
        p["validTo"] = clock.rfc3339(valid_to)
    if txid is not None:
        p["transactionId"] = txid
    return p


def set_profile(c, connector, prof):
    return request(c, "SetChargingProfile",
                   {"connectorId": connector, "csChargingProfiles": prof})["status"]


def composite(c, connector, duration, unit=None):
    payload = {"connectorId": connector, "duration": duration}
    if unit is not None:
        payload["chargingRateUnit"] = unit
    r = request(c, "GetCompositeSchedule", payload)
    assert r["status"] == "Accepted" and r["connectorId"] == connector
    return r


def periods_at(r):
    """A composite answer as (absolute start second, limit, phases) per period, the first
    one's start dropped (it is the moment of asking), plus the window's end."""
    s = clock.parse(r["scheduleStart"])
    sch = r["chargingSchedule"]
    assert clock.parse(sch["startSchedule"]) == s
    out = []
    for i, p in enumerate(sch["chargingSchedulePeriod"]):
        out.append((None if i == 0 else s + p["startPeriod"], p["limit"], p["numberPhases"]))
    return sch["chargingRateUnit"], out


def start_transaction(c, fw):
    """RemoteStart + car in C; returns the transactionId once the firmware knows it."""
    assert request(c, "RemoteStartTransaction", {"idTag": "SMART1", "connectorId": 1}) \
        == {"status": "Accepted"}
    fw.sim(cp="C")
    c.wait_for(lambda: received(c, "StartTransaction"), timeout=15)
    # jq 0: StartTransaction.conf is in, the firmware has the transactionId.
    fw.wait_status(lambda s: s["jq"] == 0 and s["acu"] is not None, keys=("jq", "acu"))
    return max(c.csms.transactions)


def wait_acu(fw, amps, timeout):
    """Seconds until acu == amps and the simulated pilot's duty says the same current."""
    t0 = time.monotonic()
    duty = int(amps * 50 // 3)
    while True:
        acu = fw.status("acu")["acu"]
        if acu == amps and fw.sim()["duty"] == duty:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("acu %r, pilot %r, wanted %r A\n%s"
                                 % (acu, fw.sim()["duty"], amps, fw.output()))
        time.sleep(0.02)


def test_profiles_reach_acu_and_pilot_within_a_second_and_clear_restores_amp(csms, start_firmware):
    fw = start_firmware(csms.url(), accepted=True)
    assert fw.set(amp=14)[0] == 200
    start_transaction(csms, fw)
    wait_acu(fw, 14, 5)
    # TxDefaultProfile 10 A on connector 1: the pilot follows within 1 s of the answer.
    assert set_profile(csms, 1, profile(1, "TxDefaultProfile", [(0, 10)])) == "Accepted"
    took = wait_acu(fw, 10, 3)
    print("TxDefaultProfile 10 A on the pilot after %.3f s" % took)
    assert took <= 1.0
    # ChargePointMaxProfile 5520 W on connector 0: 5520 / (3 x 230 V measured) = 8 A.
    prof = profile(2, "ChargePointMaxProfile", [(0, 5520)], unit="W", stack=1)
    assert set_profile(csms, 0, prof) == "Accepted"
    took = wait_acu(fw, 8, 3)
    print("ChargePointMaxProfile 5520 W = 8 A on the pilot after %.3f s" % took)
    assert took <= 1.0
    # A ChargePointMaxProfile is only for connector 0.
    assert set_profile(csms, 1, profile(3, "ChargePointMaxProfile", [(0, 6)])) == "Rejected"
    # Clearing everything gives the configured amp back (a raise: at most one per 5 s).
    assert request(csms, "ClearChargingProfile", {}) == {"status": "Accepted"}
    wait_acu(fw, 14, 7)
    assert request(csms, "ClearChargingProfile", {"id": 2}) == {"status": "Unknown"}


def test_tx_profiles_follow_time_end_with_the_transaction_come_with_remote_start(
        csms, start_firmware):
    fw = start_firmware(csms.url(), accepted=True)
    txid = start_transaction(csms, fw)
    wait_acu(fw, 16, 5)
    off = fw_offset(csms)
    t = int(time.time()) + off + 2  # firmware second the profile starts
    # The raise comes 6 s after the decrease: the pilot may change at most once per 5 s
    # except to lower the current (IEC 61851-1), so a raise sooner would be held back.
    prof = profile(7, "TxProfile", [(0, 16), (3, 8), (9, 12)], start=t, duration=12,
                   txid=txid, stack=2)
    # Bound to the running transaction only.
    wrong = dict(prof, transactionId=txid + 5)
    assert set_profile(csms, 1, wrong) == "Rejected"
    assert set_profile(csms, 1, prof) == "Accepted"
    seen = []
    deadline = t - off + 10.5
    while time.time() < deadline:
        acu = fw.status("acu")["acu"]
        if not seen or seen[-1][1] != acu:
            seen.append((time.time(), acu))
        time.sleep(0.02)
    assert [a for _, a in seen] == [16, 8, 12], seen
    for (at, _), second in zip(seen[1:], (t + 3, t + 9), strict=True):
        host = second - off  # the host time of that firmware second
        print("boundary at firmware second %d: acu changed %+.3f s (offset %d)"
              % (second, at - host, off))
        assert host - 0.05 <= at <= host + 1.0, (at - host, seen)
    # The transaction ends: its TxProfile goes with it.
    assert request(csms, "RemoteStopTransaction", {"transactionId": txid}) \
        == {"status": "Accepted"}
    csms.wait_for(lambda: received(csms, "StopTransaction"), timeout=10)
    unit, got = periods_at(composite(csms, 1, 60))
    assert got == [(None, 16.0, 3)]
    # The chargingProfile of a RemoteStartTransaction: a TxProfile for the new transaction.
    n = len(csms.csms.transactions)
    assert request(csms, "RemoteStartTransaction", {
        "idTag": "SMART2", "connectorId": 1,
        "chargingProfile": profile(8, "TxProfile", [(0, 9)], stack=1, kind="Relative"),
    }) == {"status": "Accepted"}
    csms.wait_for(lambda: len(csms.csms.transactions) > n, timeout=15)
    wait_acu(fw, 9, 5)
    unit, got = periods_at(composite(csms, 1, 60))
    assert got == [(None, 9.0, 3)]


def test_composite_schedules_are_exact_and_profiles_survive_a_reboot(csms, start_firmware):
    fw = start_firmware(csms.url(), accepted=True)
    off = fw_offset(csms)
    f = int(time.time()) + off  # the firmware's now
    base = f - 10
    profs = [
        # 9200 W = 13.3 A until base+600, then 6900 W = 10 A; minChargingRate in W.
        (0, profile(11, "ChargePointMaxProfile", [(0, 9200), (600, 6900)], unit="W",
                    stack=2, start=base, min_rate=1380)),
        # All connectors: 12 A, a daily recurring profile.
        (0, profile(12, "TxDefaultProfile", [(0, 12)], stack=1, start=base,
                    kind="Recurring", recur="Daily")),
        # Connector 1, a higher stack level: 8 A until its validTo.
        (1, profile(13, "TxDefaultProfile", [(0, 8)], stack=3, start=base,
                    valid_to=f + 300, min_rate=6)),
        # A lower level on connector 1 that the higher one and then connector 0's hide.
        (1, profile(14, "TxDefaultProfile", [(0, 15)], stack=0, start=base)),
    ]
    for conn, p in profs:
        assert set_profile(csms, conn, p) == "Accepted"

    def all_composites():
        return {
            (conn, unit): periods_at(composite(csms, conn, 3600, unit))
            for conn in (0, 1) for unit in ("A", "W")
        }

    before = all_composites()
    v3 = 230 * 3
    assert before == {
        (1, "A"): ("A", [(None, 8.0, 3), (f + 300, 12.0, 3), (base + 600, 10.0, 3)]),
        (1, "W"): ("W", [(None, 8.0 * v3, 3), (f + 300, 12.0 * v3, 3),
                         (base + 600, 10.0 * v3, 3)]),
        (0, "A"): ("A", [(None, 12.0, 3), (base + 600, 10.0, 3)]),
        (0, "W"): ("W", [(None, 12.0 * v3, 3), (base + 600, 10.0 * v3, 3)]),
    }, before
    # Without a unit the answer is in A (both units allowed).
    assert periods_at(composite(csms, 1, 3600)) == before[(1, "A")]
    assert request(csms, "GetCompositeSchedule", {"connectorId": 2, "duration": 60}) \
        == {"status": "Rejected"}

    fw.stop()
    fw = start_firmware(csms.url(), accepted=True)  # power comes back on the same data
    assert all_composites() == before
    # Every stored field came back, minChargingRate too: the profiles as the engine holds
    # them are written anew on the next change and still carry it (×10 in profiles.json).
    assert set_profile(csms, 1, profile(15, "TxDefaultProfile", [(0, 15)], stack=5,
                                        start=base, valid_to=base + 1)) == "Accepted"
    with open(fw.data_dir + "/profiles.json") as fh:
        stored = {p[0]: p for p in json.load(fh)["p"]}
    assert sorted(stored) == [11, 12, 13, 14, 15]
    assert 13800 in stored[11] and 60 in stored[13]  # minChargingRate 1380 W and 6 A
    assert [stored[i][3] for i in (11, 12, 13, 14)] == [2, 1, 3, 0]  # stack levels
    # Clearing by purpose and stack level: only connector 1's level 3 goes.
    assert request(csms, "ClearChargingProfile",
                   {"chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 3}) \
        == {"status": "Accepted"}
    unit, got = periods_at(composite(csms, 1, 3600))
    assert got == [(None, 12.0, 3), (base + 600, 10.0, 3)]
