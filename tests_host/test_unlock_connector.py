"""UnlockConnector through the real RPC path, with the real charger and the simulated lock:
the running transaction is stopped with UnlockCommand, the lock opens only once the charger
has de-energised, NotSupported without a lock, UnlockFailed where the lock cannot open."""

import asyncio
import json

import pytest
from conftest import check_ocpp
from test_status_notification import CP, run

from firmware.ocpp.rpc import RPC


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    # The module the router imports for the CALL (imported now if it is not loaded).
    import importlib

    monkeypatch.setattr(importlib.import_module("firmware.ops.unlock_connector"), "_STEP_MS", 1)


async def unlock(cp, connector_id=1):
    """One UnlockConnector CALL through the real RPC layer, with simulated time running
    until the answer comes (the handler answers when the work is done); returns the status
    and whether the lock was ever open while the contactor was closed."""
    payload = {"connectorId": connector_id}
    check_ocpp("UnlockConnector", payload)
    out = []

    async def send(text):
        out.append(text)

    await RPC(send, cp).on_frame(json.dumps([2, "u1", "UnlockConnector", payload]))
    unsafe = False
    for _ in range(2000):
        if out:
            break
        cp.advance(20)
        if cp.hal.lock.state() != "locked" and cp.hal.relay.closed:
            unsafe = True
        await asyncio.sleep(0)
    frame = json.loads(out[-1])
    assert frame[:2] == [3, "u1"], frame
    check_ocpp("UnlockConnector", frame[2], response=True)
    return frame[2]["status"], unsafe


def test_stops_the_transaction_and_unlocks_only_when_de_energised(tmp_path):
    async def go():
        cp = CP(tmp_path, ust=1)  # automatic: the charger lets go after the session
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        assert cp.charger.energized and cp.hal.lock.state() == "locked"
        assert await unlock(cp) == ("Unlocked", False)
        assert cp.txn.stops == ["UnlockCommand"]
        assert not cp.charger.energized and cp.hal.lock.state() == "unlocked"

    run(go())


def test_tethered_cable_is_not_supported(tmp_path):
    cp = CP(tmp_path, board={"has_lock": False})
    assert run(unlock(cp))[0] == "NotSupported"


def test_unknown_connector_fails(tmp_path):
    cp = CP(tmp_path)
    assert run(unlock(cp, 2))[0] == "UnlockFailed"


def test_no_car_and_unlocked_already(tmp_path):
    cp = CP(tmp_path)  # ust 0: unlocked while no car is plugged
    assert run(unlock(cp)) == ("Unlocked", False)
    assert cp.txn.stops == []


@pytest.mark.parametrize("ust,plug", [(2, "A"), (0, "B")])
def test_unlocks_where_the_lock_mode_would_keep_the_cable_locked(tmp_path, ust, plug):
    # The operator's request overrides `ust` until the cable is removed
    # (charger.release_lock), and only ever with the output de-energised.
    cp = CP(tmp_path, ust=ust)
    cp.sim(cp=plug)
    cp.advance(1000)
    assert cp.hal.lock.state() == "locked"
    assert run(unlock(cp)) == ("Unlocked", False)
    assert cp.hal.lock.state() == "unlocked" and cp.txn.stops == []


def test_jammed_lock_fails(tmp_path):
    cp = CP(tmp_path)
    cp.sim(cp="B")
    cp.advance(1000)
    assert cp.hal.lock.state() == "locked"
    cp.sim(lock="jam", cp="A")  # the car leaves, the lock cannot open
    cp.advance(5000)  # three motor pulses, then the lock fault
    assert "unlock" in cp.charger.faults
    assert run(unlock(cp))[0] == "UnlockFailed"
