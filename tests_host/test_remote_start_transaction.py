"""RemoteStartTransaction (firmware/ops/remote_start_transaction.py)."""

import sys

import pytest
from conftest import check_ocpp
from txnkit import drain, events, make, run

from firmware import clock
from firmware.ocpp import router
from firmware.ops import remote_start_transaction as op
from firmware.smart_charging import profiles
from firmware.smart_charging import service as smart_service


def call(cp, payload):
    check_ocpp("RemoteStartTransaction", payload)
    res = router.HANDLERS["RemoteStartTransaction"](cp, payload)
    check_ocpp("RemoteStartTransaction", res, response=True)
    router.AFTER["RemoteStartTransaction"](cp, payload, res)
    return res["status"]


PROFILE = {"chargingProfileId": 3, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
           "chargingProfileKind": "Relative",
           "chargingSchedule": {"chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]}}


def test_accepted_then_started_when_the_car_is_plugged(tmp_path):
    cp, txn = make(tmp_path)
    assert op.ACTION == "RemoteStartTransaction"
    assert call(cp, {"idTag": "R1"}) == "Accepted"

    async def go():
        await events(txn, *txn._events)
        assert cp.tx is None
        await events(txn, "plugged")
        assert cp.tx.id_tag == "R1"
        await drain(txn)

    run(go())
    assert cp.session.actions() == ["StartTransaction"]  # AuthorizeRemoteTxRequests false


def test_authorize_first_when_configured(tmp_path):
    cp, txn = make(tmp_path, AuthorizeRemoteTxRequests="true")
    cp.session.cards = {"R1": {"status": "Blocked"}}
    assert call(cp, {"idTag": "R1", "connectorId": 1}) == "Accepted"
    run(events(txn, *txn._events))
    run(events(txn, "plugged"))
    assert cp.session.actions() == ["Authorize"] and cp.tx is None


def test_rejected_cases(tmp_path):
    cp, txn = make(tmp_path)
    assert call(cp, {"idTag": "R", "connectorId": 0}) == "Rejected"
    assert call(cp, {"idTag": "R", "connectorId": 2}) == "Rejected"
    bad = dict(PROFILE, chargingProfilePurpose="TxDefaultProfile")
    assert call(cp, {"idTag": "R", "chargingProfile": bad}) == "Rejected"

    class Station:
        def available(self, conn):
            return False

    cp.station = Station()
    assert call(cp, {"idTag": "R"}) == "Rejected"
    cp.station = None
    run(events(txn, "plugged", ("card", "A")))
    assert call(cp, {"idTag": "R"}) == "Rejected"  # one already runs
    assert txn._events == []


def test_profile_goes_to_smart_charging_once_the_id_is_known(tmp_path):
    cp, txn = make(tmp_path)
    got = []

    class Smart:
        def set_profile(self, conn, prof, tx=None, now=None):
            got.append((conn, prof["chargingProfileId"], tx.transaction_id))
            return "Accepted"

    cp.smart = Smart()
    assert call(cp, {"idTag": "R", "connectorId": 1, "chargingProfile": PROFILE}) == "Accepted"
    run(events(txn, *txn._events))
    run(events(txn, "plugged"))
    assert got == []
    run(drain(txn))
    assert got == [(1, 3, 101)]


@pytest.fixture
def no_engine(monkeypatch):
    """A charger booted without profiles: the smart charging engine's module not loaded (put
    back afterwards, so the other tests keep the one they imported)."""
    import firmware.smart_charging as pkg

    monkeypatch.setattr(router, "LOADED", {})  # no CALL in hand
    router.forget(smart_service.ENGINE)
    yield
    sys.modules[smart_service.ENGINE] = profiles
    pkg.profiles = profiles


def test_profile_is_installed_on_a_charger_without_a_smart_charging_engine(tmp_path,
                                                                          no_engine):
    cp, txn = make(tmp_path)
    smart_service.attach(cp)
    assert cp.smart is None and smart_service.ENGINE not in sys.modules  # no profiles.json
    assert call(cp, {"idTag": "R", "connectorId": 1, "chargingProfile": PROFILE}) == "Accepted"
    run(events(txn, *txn._events))
    run(events(txn, "plugged"))
    run(drain(txn))
    # Loaded for it once the transactionId was known, not dropped silently.
    assert cp.smart is not None and cp.smart.count() == 1
    assert cp.smart.limit_at(clock.now(), 1, tx=cp.tx) == (10.0, 3)
    cp.limits.step(clock.now())
    assert cp.limits.amps == 10 and cp.charger._limits["smart"] == 10
    assert cp.smart is not None  # the loop keeps it while it holds a profile


def test_no_room_to_load_the_engine_loses_only_the_profile(tmp_path, no_engine, monkeypatch):
    import log

    cp, txn = make(tmp_path)
    smart_service.attach(cp)
    cp.session.cards = {"R": {"status": "Invalid"}}  # StartTransaction.conf says Invalid

    def no_room(cp):
        raise MemoryError

    monkeypatch.setattr(smart_service, "engine", no_room)
    oom = log.oom
    assert call(cp, {"idTag": "R", "connectorId": 1, "chargingProfile": PROFILE}) == "Accepted"
    run(events(txn, *txn._events))
    run(events(txn, "plugged"))
    run(drain(txn))
    # Counted and logged; the rest of StartTransaction.conf still applied (the idTag is
    # Invalid: the transaction stops, StopTransactionOnInvalidId), nothing half installed.
    assert log.oom == oom + 1 and "remote start profile" in log.last_error
    assert cp.tx is None and cp.session.actions()[:2] == ["StartTransaction", "StopTransaction"]
    assert cp.smart is None


# ---- issue 14 item 3: a second RemoteStart before the car came is Rejected, the first kept


async def queued(txn):
    """Handle the queued events as the service's task does (taking them off the queue)."""
    while txn._events:
        await events(txn, txn._events.pop(0))


def test_second_remote_start_before_plug_in_is_rejected_and_the_first_keeps_its_profile(
        tmp_path):
    cp, txn = make(tmp_path)
    got = []

    class Smart:
        def set_profile(self, conn, prof, tx=None, now=None):
            got.append((prof["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
                        tx.id_tag))
            return "Accepted"

    cp.smart = Smart()
    eight = {**PROFILE, "chargingSchedule": {
        "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8}]}}
    assert call(cp, {"idTag": "R1", "chargingProfile": eight}) == "Accepted"
    # Before the service has even looked at the first one: already refused.
    assert call(cp, {"idTag": "R2"}) == "Rejected"
    run(queued(txn))
    assert call(cp, {"idTag": "R2"}) == "Rejected"
    assert call(cp, {"idTag": "R1", "connectorId": 1}) == "Rejected"
    run(queued(txn))
    run(events(txn, "plugged"))
    assert cp.tx.id_tag == "R1"
    run(drain(txn))
    assert got == [(8, "R1")]


def test_remote_start_rejected_while_its_authorize_is_on_the_way(tmp_path):
    cp, txn = make(tmp_path, AuthorizeRemoteTxRequests="true")
    seen = []

    def handler(action, payload):
        if action == "Authorize":
            seen.append(call(cp, {"idTag": "R2"}))  # arrives while R1 is being authorized
        return cp.session.default(action, payload)

    cp.session.handler = handler
    assert call(cp, {"idTag": "R1"}) == "Accepted"
    run(queued(txn))
    assert seen == ["Rejected"]
    run(events(txn, "plugged"))
    assert cp.tx.id_tag == "R1"


def test_remote_start_accepted_again_once_the_first_is_gone(tmp_path):
    cp, txn = make(tmp_path, AuthorizeRemoteTxRequests="true")
    cp.session.cards = {"R1": {"status": "Blocked"}}
    assert call(cp, {"idTag": "R1"}) == "Accepted"
    run(queued(txn))  # refused by the central system: nothing pending
    assert call(cp, {"idTag": "R2"}) == "Accepted"
    run(queued(txn))
    txn._pending[2] -= 10 ** 6  # its ConnectionTimeOut passed without a car
    txn._timers()
    assert call(cp, {"idTag": "R3"}) == "Accepted"


def test_remote_start_rejected_while_a_card_waits_for_the_car(tmp_path):
    cp, txn = make(tmp_path)
    run(events(txn, ("card", "C1")))
    assert call(cp, {"idTag": "R1"}) == "Rejected"
    run(events(txn, "plugged"))
    assert cp.tx.id_tag == "C1"
