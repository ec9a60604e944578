"""ClearChargingProfile through the real RPC path to the engine and profiles.json."""

import asyncio
import json

import pytest
from conftest import check_ocpp
from cpkit import FakeCP

from firmware import clock
from firmware.config import Config
from firmware.ocpp import router
from firmware.ocpp.rpc import RPC
from firmware.ops import clear_charging_profile as op
from firmware.smart_charging import profiles as smart


class CP(FakeCP):
    def __init__(self, data_dir):
        self._declare()
        self.config = Config(str(data_dir))
        self.smart = smart.SmartCharging(smart.FileStore(str(data_dir)), self.config)
        self.tx = None


def clear(cp, payload):
    check_ocpp(op.ACTION, payload)
    router.on(op.ACTION)(op.clear_charging_profile)
    sent = []

    async def send(text):
        sent.append(text)

    asyncio.run(RPC(send, cp).on_frame(json.dumps([2, "c1", op.ACTION, payload])))
    frame = json.loads(sent[-1])
    assert frame[0] == 3, frame
    check_ocpp(op.ACTION, frame[2], response=True)
    return frame[2]["status"]


def install(cp):
    for pid, conn, purpose, stack in (
        (1, 0, "ChargePointMaxProfile", 0),
        (2, 0, "TxDefaultProfile", 1),
        (3, 1, "TxDefaultProfile", 1),
        (4, 1, "TxDefaultProfile", 2),
    ):
        p = {
            "chargingProfileId": pid,
            "stackLevel": stack,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10 + pid}],
            },
        }
        check_ocpp("SetChargingProfile", {"connectorId": conn, "csChargingProfiles": p})
        assert cp.smart.set_profile(conn, p, now=clock.now()) == "Accepted"


def ids(cp):
    return sorted(p[0] for p in cp.smart._p)


@pytest.mark.parametrize(
    "payload,answer,left",
    [
        ({}, "Accepted", []),
        ({"id": 3}, "Accepted", [1, 2, 4]),
        ({"id": 3, "connectorId": 0}, "Accepted", [1, 2, 4]),  # id alone decides
        ({"id": 9}, "Unknown", [1, 2, 3, 4]),
        ({"connectorId": 1}, "Accepted", [1, 2]),
        ({"connectorId": 0, "chargingProfilePurpose": "TxDefaultProfile"}, "Accepted", [1, 3, 4]),
        ({"chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1}, "Accepted", [1, 4]),
        ({"stackLevel": 0}, "Accepted", [2, 3, 4]),
        ({"chargingProfilePurpose": "TxProfile"}, "Unknown", [1, 2, 3, 4]),
        ({"connectorId": 1, "stackLevel": 0}, "Unknown", [1, 2, 3, 4]),
    ],
)
def test_clear_by_id_connector_purpose_and_stack_level(tmp_path, payload, answer, left):
    cp = CP(tmp_path)
    install(cp)
    assert clear(cp, payload) == answer
    assert ids(cp) == left
    assert ids(CP(tmp_path)) == left  # what profiles.json holds after a reboot


def test_clear_lifts_the_limit(tmp_path):
    cp = CP(tmp_path)
    install(cp)
    assert cp.smart.limit_at(clock.now(), 1)[0] == 11  # ChargePointMax 11 A
    assert clear(cp, {"chargingProfilePurpose": "ChargePointMaxProfile"}) == "Accepted"
    assert cp.smart.limit_at(clock.now(), 1)[0] == 14  # stack 2 TxDefault on connector 1
    assert clear(cp, {}) == "Accepted"
    assert cp.smart.limit_at(clock.now(), 1)[0] is None
    assert clear(cp, {}) == "Unknown"
