"""End-to-end, issue "OCPP Core": transactions of the firmware on the MicroPython unix port
against the demo central system (the `ocpp` package validates every message strictly; each
recorded CALL is checked again here with check_ocpp).

Covered: RemoteStart -> StartTransaction -> MeterValues -> RemoteStop -> StopTransaction
with consistent ids and meter values; card tap start and stop; a whole session while the
central system is down, delivered in order with the right transactionId once it is back.
"""

import time

import pytest
from e2e import assert_calls_valid, energy_wh, received
from ocpp.v16 import call

pytestmark = pytest.mark.e2e

# Fast metering for the test: one sampled MeterValues a second.
FAST_METERING = {"ocppi": 1}


def check_session(c, txid):
    """One transaction as the central system saw it: Start, MeterValues, Stop in order,
    every message schema-valid, meter values monotonic from meterStart to meterStop."""
    assert_calls_valid(c)
    tx = c.csms.transactions[txid]
    assert len(set(tx["stops"])) == 1, tx
    start = tx["start"]
    meter_start = start[3]
    order = []
    for i, (_, action, p) in enumerate(c.csms.received):
        if action == "StartTransaction" and (p["connectorId"], p["idTag"], p["meterStart"],
                                             p["timestamp"]) == start[1:]:
            order.append(("S", i))
        elif action == "MeterValues" and p.get("transactionId") == txid:
            order.append(("M", i))
        elif action == "StopTransaction" and p["transactionId"] == txid:
            order.append(("T", i))
    # Start first (re-sent copies only before anything else), Stop last, MeterValues between.
    kinds = "".join(k for k, _ in order)
    assert kinds.lstrip("S").rstrip("T").strip("M") == "" and kinds[0] == "S", kinds
    assert kinds[-1] == "T", kinds
    last = meter_start
    mvs = [c.csms.received[i][2] for k, i in order if k == "M"]
    for mv in mvs:
        for wh in energy_wh(mv):
            assert wh >= last, (wh, last)
            last = wh
    meter_stop = tx["stops"][0][0]
    assert meter_stop >= last
    return tx, mvs


def test_remote_start_waits_for_the_car_meters_and_remote_stop_ends_it(csms, start_firmware):
    fw = start_firmware(csms.url(), config=FAST_METERING, accepted=True)
    r = csms.call("CP1", call.RemoteStartTransaction(id_tag="REMOTE1", connector_id=1))
    assert r.status == "Accepted"
    # Authorization waits for a car; the transaction starts when it is plugged.
    time.sleep(0.5)
    assert received(csms, "StartTransaction") == []
    fw.sim(cp="C")
    csms.wait_for(lambda: received(csms, "StartTransaction"), timeout=10)
    start = received(csms, "StartTransaction")[0]
    assert start["idTag"] == "REMOTE1" and start["connectorId"] == 1
    # The central system records a CALL before its handler hands out the id: wait for it.
    key = ("CP1", 1, "REMOTE1", start["meterStart"], start["timestamp"])
    txid = csms.wait_for(lambda: csms.csms.transactions_by_key.get(key), timeout=10)
    # A second RemoteStart while one runs is refused.
    assert csms.call("CP1", call.RemoteStartTransaction(id_tag="X")).status == "Rejected"
    csms.wait_for(lambda: len(received(csms, "MeterValues")) >= 3, timeout=15)
    # Unknown transaction: Rejected; the running one: Accepted, then stopped (Remote).
    assert csms.call("CP1", call.RemoteStopTransaction(transaction_id=txid + 99)).status \
        == "Rejected"
    assert csms.call("CP1", call.RemoteStopTransaction(transaction_id=txid)).status \
        == "Accepted"
    csms.wait_for(lambda: received(csms, "StopTransaction"), timeout=10)
    stop = received(csms, "StopTransaction")[0]
    assert stop["transactionId"] == txid and stop["reason"] == "Remote"
    tx, mvs = check_session(csms, txid)
    assert len(mvs) >= 3
    for mv in mvs:
        assert mv["transactionId"] == txid and mv["connectorId"] == 1
        for sv in mv["meterValue"][0]["sampledValue"]:
            assert sv["context"] == "Sample.Periodic"
    assert stop["meterStop"] > start["meterStart"]  # the car drew power
    assert fw.wait_status(lambda s: s["jq"] == 0, keys=("jq", "jw"))["jw"] > 0


def test_card_tap_starts_and_the_same_card_not_another_stops(csms, start_firmware):
    fw = start_firmware(csms.url(), config=FAST_METERING, accepted=True)
    fw.sim(cp="B")
    fw.sim(card="CARD7")
    csms.wait_for(lambda: received(csms, "StartTransaction"), timeout=10)
    assert received(csms, "Authorize") == [{"idTag": "CARD7"}]
    fw.sim(cp="C")
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))
    # Another card without a common parentIdTag may not stop it.
    fw.sim(card="OTHER")
    time.sleep(1.5)
    assert received(csms, "StopTransaction") == []
    fw.sim(card="CARD7")
    csms.wait_for(lambda: received(csms, "StopTransaction"), timeout=10)
    stop = received(csms, "StopTransaction")[0]
    assert stop["reason"] == "Local" and stop["idTag"] == "CARD7"
    check_session(csms, stop["transactionId"])
    # Energy stops once the transaction ended.
    fw.wait_status(lambda s: s["car"] != 2, keys=("car",))
    lines = [x for x in fw.lines if "I txn: journal writes" in x]
    assert lines, fw.output()


def test_offline_session_is_delivered_in_order_when_the_central_system_returns(
        csms, start_firmware):
    fw = start_firmware(csms.url(), config=FAST_METERING, accepted=True)
    # Learn the card online (authorization cache); without a car the authorization
    # expires after ConnectionTimeOut. Then lose the central system.
    r = csms.call("CP1", call.ChangeConfiguration(key="ConnectionTimeOut", value="1"))
    assert r.status == "Accepted"
    fw.sim(card="OFF1")
    csms.wait_for(lambda: received(csms, "Authorize"), timeout=10)
    deadline = time.monotonic() + 10
    while not any("authorization of OFF1 expired" in x for x in fw.lines):
        assert time.monotonic() < deadline, fw.output()
        time.sleep(0.1)
    port = csms.port
    csms.stop()
    fw.wait_status(lambda s: not s["ocppc"], keys=("ocppc",))
    fw.sim(cp="C")
    fw.sim(card="OFF1")  # LocalAuthorizeOffline: accepted from the cache
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))
    # Charging offline until the Start and two MeterValues wait in the journal.
    fw.wait_status(lambda s: s["jq"] >= 3, keys=("jq",))
    fw.sim(cp="A")  # unplug: EVDisconnected
    fw.wait_status(lambda s: s["jq"] >= 4, keys=("jq",))
    n_before = len(csms.csms.received)
    csms.start(port)
    csms.wait_for(lambda: received(csms, "StopTransaction"), timeout=40)
    fw.wait_status(lambda s: s["jq"] == 0, keys=("jq",), timeout=20)
    late = [(a, p) for _, a, p in csms.csms.received[n_before:]
            if a in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert late[0][0] == "StartTransaction" and late[-1][0] == "StopTransaction"
    assert all(a == "MeterValues" for a, _ in late[1:-1]) and len(late) >= 4
    stop = late[-1][1]
    assert stop["reason"] == "EVDisconnected"
    tx, mvs = check_session(csms, stop["transactionId"])
    assert all(mv["transactionId"] == stop["transactionId"] for mv in mvs)
    # Timestamps were frozen at journaling time, not at delivery: in session order.
    stamps = [p["timestamp"] for a, p in late if a != "MeterValues"]
    assert stamps == sorted(stamps)
