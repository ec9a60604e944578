"""RemoteStartTransaction (firmware/ops/remote_start_transaction.py)."""

from conftest import check_ocpp
from txnkit import drain, events, make, run

from firmware.ocpp import router
from firmware.ops import remote_start_transaction as op


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
