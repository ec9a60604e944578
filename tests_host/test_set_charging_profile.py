"""SetChargingProfile through the real RPC path (validation, routing) to the engine, with the
real config store and profiles.json on disk."""

import asyncio
import json

import pytest
from conftest import check_ocpp
from cpkit import FakeCP

from firmware import clock
from firmware.config import Config
from firmware.ocpp import router
from firmware.ocpp.rpc import RPC
from firmware.ops import set_charging_profile as op
from firmware.smart_charging import profiles as smart


class Tx:
    def __init__(self, transaction_id, start_time):
        self.transaction_id = transaction_id
        self.start_time = start_time


class CP(FakeCP):
    def __init__(self, data_dir):
        self._declare()
        self.data_dir = str(data_dir)
        self.config = Config(self.data_dir)
        self.smart = smart.SmartCharging(smart.FileStore(self.data_dir), self.config)
        self.tx = None


def call(cp, payload):
    """Send one CALL as the central system would; returns the answer frame."""
    check_ocpp(op.ACTION, payload)
    router.on(op.ACTION)(op.set_charging_profile)
    sent = []

    async def send(text):
        sent.append(text)

    asyncio.run(RPC(send, cp).on_frame(json.dumps([2, "m1", op.ACTION, payload])))
    frame = json.loads(sent[-1])
    if frame[0] == 3:
        check_ocpp(op.ACTION, frame[2], response=True)
    return frame


def req(connector, pid, purpose="TxDefaultProfile", stack=0, limit=16, **extra):
    p = {
        "chargingProfileId": pid,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }
    p.update(extra)
    return {"connectorId": connector, "csChargingProfiles": p}


@pytest.fixture
def cp(tmp_path):
    return CP(tmp_path)


def status(frame):
    assert frame[0] == 3, frame
    return frame[2]["status"]


def test_txdefault_is_accepted_applied_and_survives_a_reboot(cp, tmp_path):
    assert status(call(cp, req(1, 1, limit=10))) == "Accepted"
    assert cp.smart.limit_at(clock.now(), 1) == (10.0, 3)
    again = CP(tmp_path)  # power comes back on the same flash
    assert again.smart.limit_at(clock.now(), 1) == (10.0, 3)


def test_txprofile_needs_the_running_transaction(cp):
    assert status(call(cp, req(1, 2, purpose="TxProfile"))) == "Rejected"
    cp.tx = Tx(31, clock.now())
    assert status(call(cp, req(1, 2, purpose="TxProfile", transactionId=30))) == "Rejected"
    assert status(call(cp, req(1, 2, purpose="TxProfile", transactionId=31, limit=8))) == (
        "Accepted")
    assert cp.smart.limit_at(clock.now(), 1, cp.tx)[0] == 8
    assert status(call(cp, req(0, 3, purpose="TxProfile"))) == "Rejected"


def test_chargepointmax_only_on_connector_zero(cp):
    assert status(call(cp, req(1, 4, purpose="ChargePointMaxProfile"))) == "Rejected"
    assert status(call(cp, req(0, 4, purpose="ChargePointMaxProfile", limit=20))) == "Accepted"
    assert cp.smart.limit_at(clock.now(), 1)[0] == 20


class Product(Config):
    """A product build with other (read-only) smart charging limits than the defaults."""

    LIMITS = {
        "ChargeProfileMaxStackLevel": 2,
        "ChargingScheduleAllowedChargingRateUnit": "Power",
        "MaxChargingProfilesInstalled": 2,
    }

    def get(self, name):
        return self.LIMITS[name] if name in self.LIMITS else super().get(name)


def test_configured_limits_reject(cp):
    assert cp.config.get("ChargeProfileMaxStackLevel") == 8  # the standard key is there
    cp.smart = smart.SmartCharging(None, Product(cp.data_dir))
    watts = {"chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0,
                                                                  "limit": 4000}]}
    assert status(call(cp, req(1, 5, stack=3, chargingSchedule=watts))) == "Rejected"
    assert status(call(cp, req(1, 5, stack=2, chargingSchedule=watts))) == "Accepted"
    assert status(call(cp, req(1, 6, stack=1))) == "Rejected"  # in A, only W allowed
    assert status(call(cp, req(1, 6, stack=1, chargingSchedule=watts))) == "Accepted"
    assert status(call(cp, req(1, 7, stack=0, chargingSchedule=watts))) == "Rejected"  # 3rd
    assert cp.smart.count() == 2


def test_malformed_profile_is_a_callerror_and_installs_nothing(cp):
    bad = req(1, 7)
    bad["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["foo"] = 1
    router.on(op.ACTION)(op.set_charging_profile)
    sent = []

    async def send(text):
        sent.append(text)

    asyncio.run(RPC(send, cp).on_frame(json.dumps([2, "m2", op.ACTION, bad])))
    frame = json.loads(sent[-1])
    assert frame[0] == 4 and frame[2] == "FormationViolation"
    assert cp.smart.count() == 0
