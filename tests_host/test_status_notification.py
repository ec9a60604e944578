"""StatusNotification: statuses and error codes derived from the real charger (simulated HAL,
simulated clock), MinimumStatusDuration, connector 0, and current-values-only after a
reconnection. Every request sent is checked against the official schema.

Also the harness of the station message tests (test_change_availability.py, test_reset.py,
test_unlock_connector.py, test_clear_cache.py, test_data_transfer.py): a charge point with
the real Config, Charger, SimHal and Station on a tmp dir; `Session` stands in for the
websocket session (it records the CALLs), `Txn` for the transaction service's interface
(cp.txn.active/stop/subscribe/pending/cache) while firmware/transactions/service.py is being
written.
"""

import asyncio
import json
import re

import pytest
from conftest import check_ocpp
from cpkit import FakeCP

from firmware import station
from firmware.authorization import service as authz
from firmware.config import Config
from firmware.evse.charger import Charger
from firmware.ocpp.rpc import RPC
from firmware.ops import status_notification as sn
from hal.sim import SimHal

RFC3339Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t & ((1 << 30) - 1)


class Session:
    def __init__(self):
        self.sent = []
        self.boot_answers = []  # statuses of triggered BootNotifications (boot_answer)
        self.accepted_ms = None
        self.on_accepted = []

    def is_accepted(self):
        return self.accepted_ms is not None

    def boot_answer(self, rpc, status):
        self.boot_answers.append(status)

    async def call(self, action, payload):
        check_ocpp(action, payload)
        if self.accepted_ms is None:
            raise RuntimeError("not accepted")
        self.sent.append((action, payload))
        return {}

    async def accept(self, cp, ms):
        self.accepted_ms = ms
        for hook in self.on_accepted:
            await hook(cp)


class Tx:
    def __init__(self, connector_id, id_tag):
        self.connector_id = connector_id
        self.id_tag = id_tag
        self.transaction_id = 1
        self.start_time = 0


class Txn:
    """The transaction service's interface as the station uses it."""

    def __init__(self, cp):
        self.cp = cp
        self.tx = None
        self.stops = []
        self.queue = 0  # undelivered journal entries

    def active(self, connector_id):
        return self.tx

    def pending(self):
        return self.queue

    def start(self, id_tag="CARD1"):
        self.tx = Tx(1, id_tag)
        self.cp.charger.authorize(True)
        self.cp.tx_event("started", self.tx)

    def stop(self, connector_id, reason):
        tx, self.tx = self.tx, None
        self.stops.append(reason)
        self.queue += 1  # the StopTransaction waits in the journal
        self.cp.charger.authorize(False)
        self.cp.tx_event("stopped", tx)


class CP(FakeCP):
    def __init__(self, data_dir, txn=True, board=None, **config):
        self._declare()
        self.clock = Clock()
        self.data_dir = str(data_dir)
        self.hal = SimHal(board, now_ms=self.clock)
        self.config = Config(self.data_dir)
        for k in config:  # OCPP keys (CamelCase) as ChangeConfiguration, product keys as the API
            if k[0].isupper():
                assert self.config.ocpp_set(k, str(config[k])) == "Accepted"
            else:
                assert self.config.update({k: config[k]}, "api") == {}
        self.charger = Charger(self.hal, self.config, now_ms=self.clock)
        self.charger.auth_required = txn
        self.session = Session()
        self.info = {"vendor": "OpenWallbox", "model": "OWB-11", "fw": "0.1.0"}
        self.reboots = []
        self.tx = None
        if txn:
            self.txn = Txn(self)
            authz.attach(self)
        # make() of the station's loop: the tests call step() themselves
        assert station.attach(self, now_ms=self.clock) == [self.station.run]
        self.advance(100)

    def reboot(self):
        self.reboots.append(list(self.txn.stops) if hasattr(self, "txn") else [])

    def advance(self, ms):
        """Simulated time passes; the charger ticks every 20 ms."""
        for _ in range(ms // 20):
            self.clock.t += 20
            self.charger.tick()

    def sim(self, **params):
        self.hal.control(params)
        self.advance(200)

    async def settle(self, ms=0):
        """Time passes with the station looking every 500 ms, as its task does."""
        await self.station.step()
        while ms > 0:
            self.advance(min(ms, 500))
            ms -= 500
            await self.station.step()

    def statuses(self, connector_id=None):
        return [
            p["status"]
            for a, p in self.session.sent
            if a == "StatusNotification" and connector_id in (None, p["connectorId"])
        ]


async def rpc_call(cp, action, payload):
    """One CALL through the real RPC layer (router, validation, after-handler)."""
    check_ocpp(action, payload)
    out = []

    async def send(text):
        out.append(text)

    await RPC(send, cp).on_frame(json.dumps([2, "m1", action, payload]))
    frame = json.loads(out[-1])
    assert frame[0] == 3, frame
    check_ocpp(action, frame[2], response=True)
    return frame[2]


async def online(cp):
    await cp.session.accept(cp, 5)


def run(coro):
    return asyncio.run(coro)


# -- tests ----------------------------------------------------------------------------------


def test_after_boot_connector_0_and_1_with_current_values(tmp_path):
    async def go():
        cp = CP(tmp_path)
        assert cp.session.on_accepted[0] == cp.station.announce
        await online(cp)
        sent = cp.session.sent
        assert [p["connectorId"] for _, p in sent] == [0, 1]
        for _, p in sent:
            assert p["status"] == "Available" and p["errorCode"] == "NoError"
            assert RFC3339Z.match(p["timestamp"])
            assert "info" not in p and "vendorErrorCode" not in p
        await cp.settle(2000)
        assert len(sent) == 2  # nothing changed: nothing more

    run(go())


def test_plug_charge_stop_unplug_sequence(tmp_path):
    async def go():
        cp = CP(tmp_path)
        await online(cp)
        cp.sim(cp="B")
        await cp.settle()
        cp.txn.start()
        cp.sim(cp="C")
        cp.advance(3000)  # lock, RCD self-test, close
        assert cp.charger.energized
        await cp.settle()
        cp.sim(cp="B")  # the car is full
        await cp.settle(200)
        cp.txn.stop(1, "Local")
        await cp.settle(200)
        cp.sim(cp="A")
        await cp.settle(200)
        assert cp.statuses(1) == [
            "Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Available"
        ]
        assert cp.statuses(0) == ["Available"]

    run(go())


def test_minimum_status_duration_holds_back_short_statuses(tmp_path):
    async def go():
        cp = CP(tmp_path)
        assert cp.config.ocpp_set("MinimumStatusDuration", "5") == "Accepted"
        await online(cp)
        cp.sim(cp="B")
        await cp.settle(1000)
        cp.sim(cp="A")  # gone within 5 s: never reported
        await cp.settle(6000)
        assert cp.statuses(1) == ["Available"]
        cp.sim(cp="B")
        await cp.settle(4000)
        assert cp.statuses(1) == ["Available"]
        await cp.settle(1200)
        assert cp.statuses(1) == ["Available", "Preparing"]
        # Faulted does not wait: the central system learns of a fault at once.
        cp.sim(rcd="trip")
        await cp.settle()
        last = cp.session.sent[-2:]
        assert {p["connectorId"]: (p["status"], p["errorCode"], p["vendorErrorCode"], p["info"])
                for _, p in last} == {
            0: ("Faulted", "GroundFailure", "2", "FiDc"),
            1: ("Faulted", "GroundFailure", "2", "FiDc"),
        }

    run(go())


def test_timestamp_is_when_the_status_began(tmp_path):
    from firmware import clock

    async def go():
        cp = CP(tmp_path)
        clock.set(1800000000)
        assert cp.config.ocpp_set("MinimumStatusDuration", "3") == "Accepted"
        await online(cp)
        cp.sim(cp="B")
        began = clock.rfc3339()
        await cp.settle()
        cp.advance(3000)
        clock.set(clock.now() + 3)
        await cp.settle()
        assert cp.session.sent[-1][1]["timestamp"] == began

    run(go())


def test_offline_changes_are_not_replayed_only_the_current_status(tmp_path):
    async def go():
        cp = CP(tmp_path)
        await online(cp)
        cp.session.accepted_ms = None  # connection lost
        cp.sim(cp="B")
        await cp.settle()
        cp.txn.start()
        cp.sim(cp="C")
        cp.advance(3000)
        await cp.settle()
        assert cp.statuses() == ["Available", "Available"]
        await cp.session.accept(cp, 99)
        assert cp.statuses() == ["Available", "Available", "Available", "Charging"]
        await cp.settle(1000)
        assert len(cp.session.sent) == 4

    run(go())


def test_without_a_transaction_service_the_charger_status_is_reported(tmp_path):
    async def go():
        cp = CP(tmp_path, txn=False)
        await online(cp)
        cp.sim(cp="C")
        cp.advance(3000)
        await cp.settle()
        assert cp.statuses(1) == ["Available", "Charging"]

    run(go())


def test_meter_offline_is_power_meter_failure_while_charging_goes_on(tmp_path):
    async def go():
        cp = CP(tmp_path)
        await online(cp)
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        await cp.settle()
        cp.hal.control({"meter": "offline"})
        await cp.charger.poll_meter()
        await cp.settle(100)
        p = cp.session.sent[-1][1]
        assert (p["status"], p["errorCode"]) == ("Charging", "PowerMeterFailure")

    run(go())


class FakeCharger:
    def __init__(self, err, faults=(), meter_ok=True, status="faulted"):
        self.err = err
        self.faults = dict.fromkeys(faults, err)
        self.meter_ok = meter_ok
        self.status = status
        self.energized = False


@pytest.mark.parametrize(
    "err,faults,code",
    [
        (0, (), "NoError"),
        (2, ("rcd",), "GroundFailure"),
        (4, (), "OverVoltage"),
        (5, (), "OverCurrentFailure"),
        (6, ("diode",), "EVCommunicationError"),
        (9, ("weld",), "PowerSwitchFailure"),
        (10, ("miss",), "PowerSwitchFailure"),
        (11, ("rcd_test",), "GroundFailure"),
        (12, ("pilot",), "EVCommunicationError"),
        (12, ("sensor",), "InternalError"),
        (13, (), "HighTemperature"),
        (15, ("lock",), "ConnectorLockFailure"),
        (16, ("unlock",), "ConnectorLockFailure"),
        (99, (), "OtherError"),
    ],
)
def test_error_code_mapping(err, faults, code):
    st = sn.connector(FakeCharger(err, faults), True, False)
    assert st[1] == code
    p = sn.payload(1, st, "2026-01-01T00:00:00Z")
    check_ocpp("StatusNotification", p)
    if err:
        assert p["vendorErrorCode"] == str(err) and p["status"] == "Faulted"


@pytest.mark.parametrize(
    "faults,status",
    [(("rcd",), "Faulted"), (("weld",), "Faulted"), (("diode",), "Available"),
     (("lock",), "Available")],
)
def test_station_faults_versus_connector_faults(faults, status):
    assert sn.station(FakeCharger(6, faults), True)[0] == status


def test_real_faults_from_the_simulated_hardware(tmp_path):
    async def go():
        cp = CP(tmp_path)
        await online(cp)
        cp.sim(cp="B", diode="missing")
        cp.txn.start()
        cp.advance(500)
        await cp.settle()
        p = cp.session.sent[-1][1]
        assert (p["connectorId"], p["status"], p["errorCode"]) == (
            1, "Faulted", "EVCommunicationError")
        cp.sim(cp="A", diode="ok")
        cp.txn.stop(1, "EVDisconnected")
        await cp.settle(200)
        cp.sim(temp="90")
        await cp.settle(1000)  # the charger reads the temperatures once a second
        p = cp.session.sent[-1][1]
        assert (p["status"], p["errorCode"]) == ("Available", "HighTemperature")

    run(go())
