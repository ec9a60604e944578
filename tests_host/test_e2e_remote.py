"""End-to-end, LocalAuthListManagement and RemoteTrigger: the firmware on the MicroPython unix
port against the demo central system (the `ocpp` package validates every frame strictly), on
127.0.0.1. SendLocalList / GetLocalListVersion (kept across a restart, used by the card
authorization), and TriggerMessage of each of the six messages (answer first, then the
message; a triggered BootNotification keeps the session).
"""

import time

import pytest
from e2e import assert_all_valid, received
from ocpp.v16 import call

pytestmark = pytest.mark.e2e


def local_list(version, kind, *tags):
    items = [{"id_tag": t, "id_tag_info": {"status": "Accepted"}} for t in tags]
    return call.SendLocalList(list_version=version, update_type=kind,
                              local_authorization_list=items)


def test_local_list_is_versioned_kept_across_a_restart_and_authorizes_cards(csms,
                                                                             start_firmware):
    fw = start_firmware(csms.url(), accepted=True)
    assert csms.call("CP1", call.GetLocalListVersion()).list_version == 0
    assert csms.call("CP1", local_list(3, "Full", "CARD7", "CARD8")).status == "Accepted"
    assert csms.call("CP1", local_list(3, "Differential", "CARD9")).status == "VersionMismatch"
    too_many = ["T%d" % i for i in range(33)]  # SendLocalListMaxLength is 32
    assert csms.call("CP1", local_list(4, "Full", *too_many)).status == "Failed"
    assert csms.call("CP1", call.GetLocalListVersion()).list_version == 3
    fw.stop()
    fw = start_firmware(csms.url(), accepted=True)
    assert csms.call("CP1", call.GetLocalListVersion()).list_version == 3
    # The card is in the local list: with LocalPreAuthorize no Authorize.req is needed.
    r = csms.call("CP1", call.ChangeConfiguration(key="LocalPreAuthorize", value="true"))
    assert r.status == "Accepted"
    fw.sim(cp="B")
    fw.sim(card="CARD7")
    csms.wait_for(lambda: received(csms, "StartTransaction"), timeout=10)
    assert received(csms, "StartTransaction")[0]["idTag"] == "CARD7"
    assert received(csms, "Authorize") == []
    r = csms.call("CP1", call.ChangeConfiguration(key="LocalAuthListEnabled", value="false"))
    assert r.status == "Accepted"
    assert csms.call("CP1", call.GetLocalListVersion()).list_version == -1
    assert csms.call("CP1", local_list(5, "Full", "X")).status == "NotSupported"
    assert_all_valid(csms)


def trigger(csms, msg, connector_id=None):
    return csms.call("CP1", call.TriggerMessage(requested_message=msg,
                                                connector_id=connector_id)).status


def test_each_triggered_message_follows_its_answer_and_a_boot_keeps_the_session(
        csms, start_firmware):
    fw = start_firmware(csms.url(), accepted=True)
    csms.wait_for(lambda: len(received(csms, "StatusNotification")) >= 2)
    time.sleep(0.5)
    for msg in ("Heartbeat", "DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        n = len(csms.csms.received)
        assert trigger(csms, msg) == "Accepted"
        csms.wait_for(lambda m=msg, k=n: received(csms, m, k), timeout=10)
    assert received(csms, "DiagnosticsStatusNotification") == [{"status": "Idle"}]
    assert received(csms, "FirmwareStatusNotification") == [{"status": "Idle"}]

    aa = fw.status("ocppaa")["ocppaa"]
    n = len(csms.csms.received)
    assert trigger(csms, "BootNotification") == "Accepted"
    csms.wait_for(lambda: received(csms, "BootNotification", n), timeout=10)
    time.sleep(1.0)
    assert fw.status("ocppa", "ocppaa") == {"ocppa": True, "ocppaa": aa}  # same session
    assert received(csms, "StatusNotification", n) == []  # no new boot sequence
    assert csms.csms.connections == 1

    n = len(csms.csms.received)
    assert trigger(csms, "StatusNotification") == "Accepted"
    csms.wait_for(lambda: len(received(csms, "StatusNotification", n)) >= 2, timeout=10)
    got = [(p["connectorId"], p["status"]) for p in received(csms, "StatusNotification", n)]
    assert got == [(0, "Available"), (1, "Available")]
    assert trigger(csms, "StatusNotification", 2) == "Rejected"

    n = len(csms.csms.received)
    assert trigger(csms, "MeterValues") == "Accepted"
    csms.wait_for(lambda: received(csms, "MeterValues", n), timeout=10)
    (mv,) = received(csms, "MeterValues", n)
    assert mv["connectorId"] == 1 and "transactionId" not in mv
    assert {s["context"] for s in mv["meterValue"][0]["sampledValue"]} == {"Trigger"}
    assert trigger(csms, "MeterValues", 7) == "Rejected"

    # In a transaction: its id; the car's status now.
    assert csms.call("CP1", call.RemoteStartTransaction(id_tag="R1", connector_id=1)).status \
        == "Accepted"
    fw.sim(cp="C")
    csms.wait_for(lambda: received(csms, "StartTransaction"), timeout=10)
    fw.wait_status(lambda s: s["car"] == 2, keys=("car",))
    txid = max(csms.csms.transactions)
    time.sleep(1.0)  # the StartTransaction.conf has been taken in
    n = len(csms.csms.received)
    assert trigger(csms, "MeterValues", 1) == "Accepted"
    csms.wait_for(lambda: [m for m in received(csms, "MeterValues", n)
                           if m["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"])
    mv = [m for m in received(csms, "MeterValues", n)
          if m["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"][0]
    assert mv["transactionId"] == txid
    n = len(csms.csms.received)
    assert trigger(csms, "StatusNotification", 1) == "Accepted"
    csms.wait_for(lambda: received(csms, "StatusNotification", n), timeout=10)
    assert received(csms, "StatusNotification", n)[-1]["status"] == "Charging"
    assert_all_valid(csms)
