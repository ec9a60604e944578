"""UnlockConnector through the real RPC path, with the real charger and the simulated lock:
the running transaction is stopped with UnlockCommand, the lock opens only once the charger
has de-energised, NotSupported without a lock, UnlockFailed where the lock cannot open."""

import asyncio

import pytest
from test_status_notification import CP, rpc_call, run

from firmware import station


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(station, "_STEP_MS", 1)


async def unlock(cp, connector_id=1):
    """Answer, then the after-handler's work, with simulated time running; returns the
    answer, the work's outcome and whether the lock was ever open under power."""
    resp = await rpc_call(cp, "UnlockConnector", {"connectorId": connector_id})
    task = cp.station.unlock_task
    unsafe = False
    if resp["status"] == "Unlocked":
        assert task is not None
        for _ in range(2000):
            if task.done():
                break
            cp.advance(20)
            if cp.hal.lock.state() != "locked" and cp.hal.relay.closed:
                unsafe = True
            await asyncio.sleep(0)
        return resp["status"], task.result(), unsafe
    return resp["status"], None, unsafe


def test_stops_the_transaction_and_unlocks_only_when_de_energised(tmp_path):
    async def go():
        cp = CP(tmp_path, ust=1)  # automatic: the charger lets go after the session
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        assert cp.charger.energized and cp.hal.lock.state() == "locked"
        answer, outcome, unsafe = await unlock(cp)
        assert (answer, outcome, unsafe) == ("Unlocked", "Unlocked", False)
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
    assert run(unlock(cp))[:2] == ("Unlocked", "Unlocked")
    assert cp.txn.stops == []


@pytest.mark.parametrize("ust,plug", [(2, "A"), (0, "B")])
def test_fails_where_the_charger_keeps_the_cable_locked(tmp_path, ust, plug):
    # Without charger.release_lock() the charger would lock again at once.
    cp = CP(tmp_path, ust=ust)
    cp.sim(cp=plug)
    cp.advance(1000)
    assert cp.hal.lock.state() == "locked"
    assert run(unlock(cp))[0] == "UnlockFailed"
    assert cp.hal.lock.state() == "locked" and cp.txn.stops == []


def test_jammed_lock_fails(tmp_path):
    cp = CP(tmp_path)
    cp.sim(cp="B")
    cp.advance(1000)
    assert cp.hal.lock.state() == "locked"
    cp.sim(lock="jam", cp="A")  # the car leaves, the lock cannot open
    cp.advance(5000)  # three motor pulses, then the lock fault
    assert "unlock" in cp.charger.faults
    assert run(unlock(cp))[0] == "UnlockFailed"


def test_deferred_answer_is_the_real_outcome(tmp_path):
    from firmware.ops import unlock_connector as op

    async def go():
        cp = CP(tmp_path, ust=1)
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        task = asyncio.create_task(op.unlock_connector_deferred(cp, {"connectorId": 1}))
        for _ in range(2000):
            if task.done():
                break
            cp.advance(20)
            await asyncio.sleep(0)
        return task.result()

    assert run(go()) == {"status": "Unlocked"}
