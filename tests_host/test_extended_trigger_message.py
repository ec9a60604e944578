"""ExtendedTriggerMessage through a real RPC whose peer is a schema-checking loopback central
system (test_trigger_message.Peer): every message of the whitepaper's list is answered
Accepted and then sent, the shared ones exactly as TriggerMessage sends them; a connector
that does not exist is Rejected and nothing is sent. Every frame is checked with check_ocpp.
"""

import asyncio
import json

from conftest import check_ocpp
from test_status_notification import run
from test_trigger_message import make

from firmware.ops import extended_trigger_message as etm

ACTION = "ExtendedTriggerMessage"


def trigger(peer, msg, connector_id=None):
    async def go():
        p = {"requestedMessage": msg}
        if connector_id is not None:
            p["connectorId"] = connector_id
        check_ocpp(ACTION, p)
        peer.pending["e1"] = ACTION
        etm.task = None
        await peer.rpc.on_frame(json.dumps([2, "e1", ACTION, p]))
        if etm.task is not None:
            await asyncio.wait_for(etm.task, 10)
        return [e for e in peer.log if e[0] == "answer"][-1][2]["status"]

    return run(go())


def sent(peer, n):
    return [(a, p) for k, a, p in peer.log[n:] if k == "call"]


def test_each_message_is_answered_then_sent(tmp_path):
    cp, peer = make(tmp_path)
    peer.answers = dict(peer.answers, SignCertificate={"status": "Accepted"})
    cp.info["serial"] = "SN-42"
    expect = {
        "BootNotification": "BootNotification",
        "Heartbeat": "Heartbeat",
        "MeterValues": "MeterValues",
        "StatusNotification": "StatusNotification",
        "FirmwareStatusNotification": "SignedFirmwareStatusNotification",
        "LogStatusNotification": "LogStatusNotification",
        "SignChargePointCertificate": "SignCertificate",
    }
    run(cp.charger.poll_meter())
    for msg in sorted(expect):
        n = len(peer.log)
        assert trigger(peer, msg) == "Accepted", msg
        assert peer.log[n][:2] == ("answer", ACTION)  # the answer first
        got = sent(peer, n)
        assert got and {a for a, _ in got} == {expect[msg]}, msg
    (csr,) = [p["csr"] for a, p in sent(peer, 0) if a == "SignCertificate"]
    assert csr.startswith("-----BEGIN CERTIFICATE REQUEST")
    idle = [p for a, p in sent(peer, 0) if a in ("SignedFirmwareStatusNotification",
                                                "LogStatusNotification")]
    assert idle == [{"status": "Idle"}, {"status": "Idle"}]


def test_log_status_in_progress_carries_its_request_id(tmp_path):
    cp, peer = make(tmp_path)

    class Sec:
        log_status = ("Uploading", 7)

    cp.security = Sec()
    n = len(peer.log)
    assert trigger(peer, "LogStatusNotification") == "Accepted"
    assert sent(peer, n) == [("LogStatusNotification", {"status": "Uploading",
                                                        "requestId": 7})]


def test_firmware_status_in_progress_carries_its_request_id(tmp_path):
    # A SignedUpdateFirmware under way: its requestId (Firmware.req) goes with the status.
    cp, peer = make(tmp_path)

    class Fw:
        req = 9

        def status(self):
            return "Downloading"

    cp.firmware = Fw()
    n = len(peer.log)
    assert trigger(peer, "FirmwareStatusNotification") == "Accepted"
    assert sent(peer, n) == [("SignedFirmwareStatusNotification",
                              {"status": "Downloading", "requestId": 9})]


def test_unknown_connector_is_rejected_and_nothing_sent(tmp_path):
    cp, peer = make(tmp_path)
    for msg in ("StatusNotification", "MeterValues"):
        assert trigger(peer, msg, connector_id=2) == "Rejected"
    assert sent(peer, 0) == []
    assert trigger(peer, "Heartbeat", connector_id=9) == "Accepted"  # ignored there
