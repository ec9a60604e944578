"""ChangeAvailability through the real RPC path: Accepted / Rejected / Scheduled, persisted
across a reboot (a new charge point on the same data), driving the charger and the
StatusNotification that confirms the change."""

import pytest
from test_status_notification import CP, online, rpc_call, run

from firmware import station
from firmware.ops import change_availability


def change(cp, connector_id, kind):
    async def go():
        return (await rpc_call(cp, "ChangeAvailability",
                               {"connectorId": connector_id, "type": kind}))["status"]

    return run(go())


def test_inoperative_connector_persists_across_reboot_and_refuses_charging(tmp_path):
    cp = CP(tmp_path)
    assert change(cp, 1, "Inoperative") == "Accepted"
    assert not cp.station.available(1) and cp.station.available(0)
    assert cp.charger.available is False
    cp.sim(cp="C")
    cp.advance(3000)
    assert not cp.charger.energized  # no charging while unavailable
    again = CP(tmp_path)  # reboot on the same data
    assert not again.station.available(1) and again.charger.available is False
    assert change(again, 1, "Operative") == "Accepted"
    assert CP(tmp_path).station.available(1)


def test_connector_0_is_the_whole_station(tmp_path):
    cp = CP(tmp_path)
    assert change(cp, 0, "Inoperative") == "Accepted"
    assert not cp.station.available(0) and not cp.station.available(1)
    assert change(cp, 0, "Inoperative") == "Accepted"  # already so: Accepted (§5.2)
    assert change(cp, 0, "Operative") == "Accepted"
    assert cp.station.available(0) and cp.station.available(1)


@pytest.mark.parametrize("connector_id", [2, 7])
def test_unknown_connector_is_rejected(tmp_path, connector_id):
    cp = CP(tmp_path)
    assert change(cp, connector_id, "Inoperative") == "Rejected"
    assert cp.station.available(1)


def test_scheduled_while_a_transaction_runs_then_applied_when_it_stops(tmp_path):
    async def go():
        cp = CP(tmp_path)
        await online(cp)
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        await cp.settle()
        assert cp.charger.energized
        assert (await rpc_call(cp, "ChangeAvailability",
                               {"connectorId": 0, "type": "Inoperative"}))["status"] == "Scheduled"
        await cp.settle(1000)
        assert cp.charger.energized and cp.station.available(1)
        assert cp.statuses(1)[-1] == "Charging"
        cp.txn.stop(1, "Local")
        await cp.settle(500)
        assert not cp.station.available(1) and not cp.station.available(0)
        assert cp.statuses(1)[-1] == "Unavailable" and cp.statuses(0)[-1] == "Unavailable"

    run(go())


def test_scheduled_change_cancelled_by_operative(tmp_path):
    async def go():
        cp = CP(tmp_path)
        cp.sim(cp="C")
        cp.txn.start()
        cp.advance(3000)
        assert change_availability.change(cp.station, 1, "Inoperative") == "Scheduled"
        assert change_availability.change(cp.station, 1, "Operative") == "Accepted"
        cp.txn.stop(1, "Local")
        await cp.settle(500)
        assert cp.station.available(1)
        assert CP(tmp_path).station.available(1)

    run(go())


def test_unavailable_status_is_sent_at_once_despite_minimum_status_duration(tmp_path):
    async def go():
        cp = CP(tmp_path)
        assert cp.config.ocpp_set("MinimumStatusDuration", "60") == "Accepted"
        await online(cp)
        await rpc_call(cp, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        await cp.settle()
        assert cp.statuses(1) == ["Available", "Unavailable"]
        assert cp.statuses(0) == ["Available"]

    run(go())


def test_corrupt_availability_file_means_operative(tmp_path):
    (tmp_path / station.FILE).write_text("{not json")
    cp = CP(tmp_path)
    assert cp.station.available(1) and cp.charger.available
