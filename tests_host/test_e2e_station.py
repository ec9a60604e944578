"""End-to-end, station-level OCPP Core messages: the firmware on the MicroPython unix port
against the demo central system (the `ocpp` package validates every frame strictly), on
127.0.0.1. ChangeAvailability persisted across a restart, Reset (the process exits with
status 3 and boots again on the same data), UnlockConnector, ClearCache, DataTransfer and
the StatusNotification sequence of a charging session.

Where a transaction is needed it is driven by RemoteStartTransaction.
"""

import json
import time

import pytest
from e2e import assert_all_valid
from ocpp.v16 import call

pytestmark = pytest.mark.e2e


def statuses(csms, connector_id, since=0):
    return [
        p["status"]
        for _, a, p in csms.csms.received[since:]
        if a == "StatusNotification" and p["connectorId"] == connector_id
    ]


def wait_status(csms, connector_id, status, since=0, timeout=20):
    csms.wait_for(lambda: status in statuses(csms, connector_id, since), timeout)


def in_order(seq, milestones):
    """`milestones` appear in `seq` in this order (other statuses may come in between)."""
    i = 0
    for s in seq:
        if i < len(milestones) and s == milestones[i]:
            i += 1
    return i == len(milestones)


def test_change_availability_inoperative_refuses_power_and_persists_across_a_restart(
        csms, start_firmware):
    fw = start_firmware(csms.url())
    wait_status(csms, 0, "Available")
    wait_status(csms, 1, "Available")
    r = csms.call("CP1", call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert r.status == "Accepted"
    n = len(csms.csms.received)
    wait_status(csms, 1, "Unavailable", n - 1)
    fw.sim(cp="C")  # a car asks for power: refused (the pilot shows state F)
    time.sleep(2)
    assert fw.sim()["relay"] is False and fw.sim()["duty"] == "F"
    assert fw.status("alw", "acu") == {"alw": False, "acu": None}
    r = csms.call("CP1", call.RemoteStartTransaction(id_tag="CARD1", connector_id=1))
    assert r.status == "Rejected"
    fw.stop()
    n = len(csms.csms.received)
    fw2 = start_firmware(csms.url())
    fw2.sim(cp="C")
    csms.wait_for(lambda: statuses(csms, 1, n))
    assert statuses(csms, 1, n)[0] == "Unavailable"  # remembered
    assert statuses(csms, 0, n)[0] == "Available"
    r = csms.call("CP1", call.ChangeAvailability(connector_id=0, type="Operative"))
    assert r.status == "Accepted"
    n = len(csms.csms.received)
    csms.wait_for(lambda: statuses(csms, 1, n))
    assert statuses(csms, 1, n)[0] != "Unavailable"  # Preparing, or Charging (acs 0)
    assert fw2.sim()["duty"] != "F"  # the car sees the charger again
    assert_all_valid(csms)


def test_soft_reset_exits_with_3_and_boots_again(csms, start_firmware):
    fw = start_firmware(csms.url())
    wait_status(csms, 1, "Available")
    r = csms.call("CP1", call.Reset(type="Soft"))
    assert r.status == "Accepted"
    assert fw.proc.wait(20) == 3
    boots = csms.csms.boots
    n = len(csms.csms.received)
    start_firmware(csms.url())
    csms.wait_for(lambda: csms.csms.boots > boots)
    wait_status(csms, 1, "Available", n)
    assert_all_valid(csms)


def test_unlock_connector_unlocks_connector_1_and_fails_for_an_unknown_one(csms, start_firmware):
    start_firmware(csms.url())
    wait_status(csms, 1, "Available")
    # The simulator has a socket lock; no car: it opens (it is open already).
    assert csms.call("CP1", call.UnlockConnector(connector_id=1)).status == "Unlocked"
    assert csms.call("CP1", call.UnlockConnector(connector_id=2)).status == "UnlockFailed"
    assert_all_valid(csms)


def test_clear_cache_is_accepted_with_the_authorization_cache_on(csms, start_firmware):
    start_firmware(csms.url())
    wait_status(csms, 1, "Available")
    assert csms.call("CP1", call.ClearCache()).status == "Accepted"
    assert_all_valid(csms)


def test_data_transfer_reads_status_and_sets_current_for_our_vendor_id_only(csms,
                                                                             start_firmware):
    fw = start_firmware(csms.url())
    wait_status(csms, 1, "Available")
    r = csms.call("CP1", call.DataTransfer(vendor_id="OpenWallbox", message_id="GetStatus",
                                           data="car,amp,ocs"))
    assert r.status == "Accepted"
    assert json.loads(r.data) == {"car": 1, "amp": 16, "ocs": ["Available", "Available"]}
    r = csms.call("CP1", call.DataTransfer(vendor_id="OpenWallbox", message_id="SetCurrent",
                                           data="8"))
    assert r.status == "Accepted"
    assert fw.status("amp") == {"amp": 8}
    r = csms.call("CP1", call.DataTransfer(vendor_id="Other", message_id="GetStatus"))
    assert r.status == "UnknownVendorId"
    assert_all_valid(csms)


def test_charging_session_reports_available_preparing_charging_finishing_available(
        csms, start_firmware):
    # acs=1: charging needs an authorization, so the session is driven by RemoteStart.
    fw = start_firmware(csms.url(), setup={"acs": 1})
    wait_status(csms, 1, "Available")
    fw.sim(cp="B")
    wait_status(csms, 1, "Preparing")
    r = csms.call("CP1", call.RemoteStartTransaction(id_tag="CARD1", connector_id=1))
    assert r.status == "Accepted"
    csms.wait_for(lambda: "StartTransaction" in csms.csms.actions())
    fw.sim(cp="C")
    wait_status(csms, 1, "Charging")
    tx = max(csms.csms.transactions)
    r = csms.call("CP1", call.RemoteStopTransaction(transaction_id=tx))
    assert r.status == "Accepted"
    wait_status(csms, 1, "Finishing")
    fw.sim(cp="A")
    csms.wait_for(lambda: statuses(csms, 1)[-1] == "Available")
    seq = statuses(csms, 1)
    assert in_order(seq, ["Available", "Preparing", "Charging", "Finishing", "Available"]), seq
    assert_all_valid(csms)
