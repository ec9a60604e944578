"""Reset through the real RPC path: Accepted at once, then (after-handler) the transaction
stopped with SoftReset / HardReset, a bounded wait for the journal, the reboot; ResetRetries
when a reboot does not happen."""

import asyncio

import pytest
from test_status_notification import CP, online, rpc_call, run

import compat
from firmware import station, station_reset


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    # Real sleeps between looks: shortened; the waits are measured on the simulated clock.
    # The station lends the module for each Reset: this one, so patched.
    monkeypatch.setattr(station_reset, "_STEP_MS", 1)
    monkeypatch.setattr(station_reset, "_RETRY_MS", 1)
    monkeypatch.setattr(station, "lend", lambda name: station_reset
                        if name == "firmware.station_reset" else compat.lend(name))


async def world(cp):
    """Simulated time runs 100 ms per real millisecond; the journal delivers after 2 s."""
    t = 0
    while True:
        cp.advance(100)
        t += 100
        if t >= 2000:
            cp.txn.queue = 0
        await asyncio.sleep(0.001)


async def reset(cp, kind):
    resp = await rpc_call(cp, "Reset", {"type": kind})
    assert resp == {"status": "Accepted"}
    w = asyncio.create_task(world(cp))
    try:
        await asyncio.wait_for(cp.station.reset_task, 20)
    finally:
        w.cancel()


@pytest.mark.parametrize("kind", ["Soft", "Hard"])
def test_reset_stops_the_transaction_then_reboots(tmp_path, kind):
    async def go():
        cp = CP(tmp_path, ResetRetries=0)
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        assert cp.charger.energized
        t0 = cp.clock.t
        await reset(cp, kind)
        # One reboot, after the stop with the right reason and the journal drained.
        assert cp.reboots == [[kind + "Reset"]]
        assert cp.txn.queue == 0
        # Soft waits for the contactor to open; Hard leaves that to the reboot (relays are
        # off at power-on).
        assert cp.charger.energized == (kind == "Hard")
        assert cp.clock.t - t0 <= 7000 + 2000  # bounded wait (plus the retry look)

    run(go())


def test_no_new_session_while_resetting(tmp_path):
    async def go():
        cp = CP(tmp_path, ResetRetries=0)
        cp.txn.queue = 1
        await rpc_call(cp, "Reset", {"type": "Soft"})
        assert not cp.station.available(1) and not cp.charger.available
        # Issue 14 item 7: a Reset while one runs is Rejected, not Accepted and ignored.
        for kind in ("Hard", "Soft"):
            assert (await rpc_call(cp, "Reset", {"type": kind}))["status"] == "Rejected"
        w = asyncio.create_task(world(cp))
        await asyncio.wait_for(cp.station.reset_task, 20)
        w.cancel()
        assert len(cp.reboots) == 1

    run(go())


def test_reset_accepted_again_after_a_failed_one(tmp_path):
    async def go():
        cp = CP(tmp_path, ResetRetries=0)
        cp.reboot = lambda: None  # the reboot does not happen: ResetFailure, back to normal
        await rpc_call(cp, "Reset", {"type": "Hard"})
        w = asyncio.create_task(world(cp))
        await asyncio.wait_for(cp.station.reset_task, 20)
        w.cancel()
        assert cp.station.reset_failed and not cp.station.resetting
        assert (await rpc_call(cp, "Reset", {"type": "Hard"}))["status"] == "Accepted"
        cp.station.reset_task.cancel()

    run(go())


def test_journal_wait_is_bounded(tmp_path):
    async def go():
        cp = CP(tmp_path, ResetRetries=0)
        cp.txn.queue = 5
        await rpc_call(cp, "Reset", {"type": "Hard"})

        async def stuck():  # the central system never answers
            while True:
                cp.advance(100)
                await asyncio.sleep(0.001)

        w = asyncio.create_task(stuck())
        t0 = cp.clock.t
        await asyncio.wait_for(cp.station.reset_task, 20)
        w.cancel()
        assert len(cp.reboots) == 1 and cp.txn.queue == 5
        assert 7000 <= cp.clock.t - t0 <= 10000

    run(go())


def test_reset_retries_then_reset_failure_on_connector_0(tmp_path):
    async def go():
        cp = CP(tmp_path, ResetRetries=2)
        await online(cp)
        await reset(cp, "Soft")  # our reboot() returns: it failed
        assert len(cp.reboots) == 3
        assert cp.station.reset_failed and cp.station.available(1)
        assert cp.charger.available
        await cp.settle()
        p = [p for _, p in cp.session.sent if p["connectorId"] == 0][-1]
        assert (p["status"], p["errorCode"]) == ("Available", "ResetFailure")

    run(go())
