"""TriggerMessage through a real RPC whose peer is a schema-checking loopback central system:
Accepted (answer on the wire first, then the requested message with current values),
Rejected for a connector that does not exist, NotImplemented for a message it does not know.
Every frame in both directions is checked with check_ocpp.

Also the harness for tests that need the charge point to send: `Peer`.
"""

import asyncio
import json

from conftest import check_ocpp
from test_status_notification import CP, run

from firmware import clock
from firmware import remote_trigger as remote
from firmware.ocpp.rpc import RPC
from firmware.ops import trigger_message
from firmware.transactions.journal import Journal

T0 = "2026-11-24T10:00:00Z"
ANSWERS = {
    "BootNotification": {"status": "Accepted", "currentTime": T0, "interval": 120},
    "Heartbeat": {"currentTime": T0},
}


class Peer:
    """The central system's end of the charge point's real RPC. `log` is the wire, in order:
    ("answer", action, payload) for answers to our CALLs, ("call", action, payload) for the
    charge point's CALLs (each answered from `answers`, else {})."""

    def __init__(self, cp, answers=ANSWERS):
        self.cp = cp
        self.answers = answers
        self.log = []
        self.pending = {}
        self.rpc = RPC(self._send, cp, timeout_ms=2000)
        cp.session.rpc = self.rpc

    async def _send(self, text):
        f = json.loads(text)
        if f[0] == 2:
            check_ocpp(f[2], f[3])
            self.log.append(("call", f[2], f[3]))
            res = self.answers.get(f[2], {})
            check_ocpp(f[2], res, response=True)
            asyncio.create_task(self.rpc.on_frame(json.dumps([3, f[1], res])))
        else:
            action = self.pending.pop(f[1])
            if f[0] == 3:
                check_ocpp(action, f[2], response=True)
            self.log.append(("answer", action, f[2]))

    async def request(self, action, payload, uid="c1"):
        """A CALL from the central system; returns its answer once the triggered work ended."""
        check_ocpp(action, payload)
        self.pending[uid] = action
        trigger_message.task = None
        await self.rpc.on_frame(json.dumps([2, uid, action, payload]))
        if trigger_message.task is not None:
            await asyncio.wait_for(trigger_message.task, 5)
        return [e for e in self.log if e[0] == "answer"][-1][2]

    def calls(self, action=None):
        return [p for k, a, p in self.log if k == "call" and action in (None, a)]


def make(tmp_path, **config):
    cp = CP(tmp_path, **config)
    cp.session.rpc = None
    assert remote.attach(cp) == []
    return cp, Peer(cp)


def trigger(peer, msg, connector_id=None):
    p = {"requestedMessage": msg}
    if connector_id is not None:
        p["connectorId"] = connector_id
    return run(peer.request("TriggerMessage", p))["status"]


def test_answer_first_then_the_message(tmp_path):
    cp, peer = make(tmp_path)
    for msg in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        n = len(peer.log)
        assert trigger(peer, msg) == "Accepted"
        assert [(k, a) for k, a, _ in peer.log[n:]] == [("answer", "TriggerMessage"),
                                                         ("call", msg)]
        assert peer.log[-1][2] == {"status": "Idle"}


def test_heartbeat_sets_the_clock(tmp_path):
    cp, peer = make(tmp_path)
    clock.set(0)
    assert trigger(peer, "Heartbeat", connector_id=5) == "Accepted"  # connectorId ignored
    assert peer.calls() == [{}]
    assert clock.rfc3339()[:13] == T0[:13]


def test_boot_notification_leaves_the_session_alone(tmp_path):
    cp, peer = make(tmp_path)
    run(cp.session.accept(cp, 5))  # Accepted earlier: the station announced its statuses
    sent = len(cp.session.sent)
    assert trigger(peer, "BootNotification") == "Accepted"
    (p,) = peer.calls()
    assert p["chargePointVendor"] == "OpenWallbox" and p["chargePointModel"] == "OWB-11"
    assert cp.session.accepted_ms == 5  # same session, no new boot
    assert len(cp.session.sent) == sent  # the on-accepted hooks did not run again
    assert cp.config.get("HeartbeatInterval") == 120  # the answer applies as any boot's does
    assert cp.session.boot_answers == ["Accepted"]  # told to the session (ends a Pending)


def test_status_notification_all_or_one_with_current_values(tmp_path):
    cp, peer = make(tmp_path)
    assert trigger(peer, "StatusNotification") == "Accepted"
    got = [(p["connectorId"], p["status"]) for p in peer.calls()]
    assert got == [(0, "Available"), (1, "Available")]
    cp.sim(cp="B")  # a car is plugged, no transaction yet
    n = len(peer.log)
    assert trigger(peer, "StatusNotification", connector_id=1) == "Accepted"
    got = [(p["connectorId"], p["status"]) for _, _, p in peer.log[n + 1:]]
    assert got == [(1, "Preparing")]
    assert trigger(peer, "StatusNotification", connector_id=0) == "Accepted"
    assert peer.calls()[-1]["connectorId"] == 0


def test_unknown_connector_is_rejected_and_nothing_sent(tmp_path):
    cp, peer = make(tmp_path)
    for msg in ("StatusNotification", "MeterValues"):
        assert trigger(peer, msg, connector_id=2) == "Rejected"
        assert trigger(peer, msg, connector_id=-1) == "Rejected"
    assert peer.calls() == []


def poll_meter(cp):
    run(cp.charger.poll_meter())


def test_meter_values_now_without_transaction_not_journaled(tmp_path):
    cp, peer = make(tmp_path, MeterValuesSampledData="Energy.Active.Import.Register,Voltage")
    poll_meter(cp)
    assert trigger(peer, "MeterValues") == "Accepted"
    (p,) = peer.calls()
    assert p["connectorId"] == 1 and "transactionId" not in p
    (mv,) = p["meterValue"]
    names = sorted({s["measurand"] for s in mv["sampledValue"]})
    assert names == ["Energy.Active.Import.Register", "Voltage"]
    assert {s["context"] for s in mv["sampledValue"]} == {"Trigger"}
    assert len(Journal(cp.data_dir)) == 0
    assert trigger(peer, "MeterValues", connector_id=0) == "Accepted"
    assert peer.calls()[-1]["connectorId"] == 0


def test_meter_values_in_a_transaction_carry_its_id(tmp_path):
    cp, peer = make(tmp_path)
    poll_meter(cp)
    cp.txn.start()
    cp.tx = cp.txn.tx
    cp.tx.transaction_id = 42
    assert trigger(peer, "MeterValues", connector_id=1) == "Accepted"
    assert peer.calls()[-1]["transactionId"] == 42
    assert trigger(peer, "MeterValues", connector_id=0) == "Accepted"
    assert "transactionId" not in peer.calls()[-1]
    cp.tx.transaction_id = None  # StartTransaction not answered yet: no id to give
    assert trigger(peer, "MeterValues") == "Accepted"
    assert "transactionId" not in peer.calls()[-1]
    assert len(Journal(cp.data_dir)) == 0


def test_not_implemented_for_an_unknown_message(tmp_path):
    cp, peer = make(tmp_path)
    # The schema lists the six messages; one outside it never reaches the handler over RPC.
    r = trigger_message.trigger_message(cp, {"requestedMessage": "SignChargePointCertificate"})
    assert r == {"status": "NotImplemented"}
    check_ocpp("TriggerMessage", r, response=True)
    out = []

    async def send(text):
        out.append(json.loads(text))

    bad = [2, "x", "TriggerMessage", {"requestedMessage": "StartTransaction"}]
    run(RPC(send, cp).on_frame(json.dumps(bad)))
    assert out[0][0] == 4 and peer.calls() == []


def test_lost_link_after_the_answer_is_only_logged(tmp_path):
    cp, peer = make(tmp_path)

    async def go():
        trigger_message.task = None
        peer.pending["c9"] = "TriggerMessage"
        frame = [2, "c9", "TriggerMessage", {"requestedMessage": "Heartbeat"}]
        await peer.rpc.on_frame(json.dumps(frame))
        peer.rpc.close()  # the connection drops before the task sends
        await asyncio.wait_for(trigger_message.task, 5)

    run(go())
    assert peer.log[-1][:2] == ("answer", "TriggerMessage") and peer.calls() == []
