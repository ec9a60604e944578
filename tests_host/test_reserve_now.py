"""ReserveNow (firmware/ops/reserve_now.py): every answer, the replacement of a reservation
by the same reservationId (§5.13), connector 0, and nothing changed by a refused request.
Requests and answers are checked against the official schemas (rsvkit.call)."""

import asyncio
import json
import os

import pytest
from rsvkit import fault, make, request, reserve, status
from txnkit import events, run

import fs
from firmware import app, clock
from firmware.config import Config
from firmware.ops import change_availability, reserve_now

FILE = "reservation.json"


def on_flash(tmp_path):
    path = os.path.join(str(tmp_path), FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def test_accepted_reserves_connector_1_on_flash(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve_now.ACTION == "ReserveNow"
    p = request(rid=7, tag="R1", secs=600, parent="FLEET")
    assert reserve_now.reserve(cp, p) == "Accepted"
    r = on_flash(tmp_path)
    assert (r["id"], r["c"], r["tag"], r["p"]) == (7, 1, "R1", "FLEET")
    assert r["exp"] == clock.parse(p["expiryDate"])
    assert status(cp, 1) == "Reserved" and status(cp, 0) == "Available"
    assert cp.reservation.reserved(1)


def test_same_reservation_id_replaces_the_old_one(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=7, tag="R1", secs=600) == "Accepted"
    assert reserve(cp, rid=7, tag="R2", secs=1200, parent="P") == "Accepted"
    r = on_flash(tmp_path)
    assert (r["id"], r["tag"], r["p"]) == (7, "R2", "P")
    assert r["exp"] >= clock.now() + 1199
    # Also while its car is already plugged (the driver came early): still that reservation.
    run(events(txn, "plugged"))
    assert reserve(cp, rid=7, tag="R3") == "Accepted"
    assert on_flash(tmp_path)["tag"] == "R3"


def test_another_reservation_id_is_occupied_and_changes_nothing(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=7, tag="R1") == "Accepted"
    before = on_flash(tmp_path)
    assert reserve(cp, rid=8, tag="R2") == "Occupied"
    assert on_flash(tmp_path) == before and cp.reservation.r["id"] == 7


def test_occupied_while_a_car_is_plugged_or_a_transaction_runs(tmp_path):
    cp, txn = make(tmp_path)
    run(events(txn, "plugged"))
    assert reserve(cp) == "Occupied"
    run(events(txn, ("card", "A1")))
    assert cp.tx is not None
    assert reserve(cp) == "Occupied"
    assert on_flash(tmp_path) is None and cp.reservation.r is None


def test_faulted_when_the_charger_is_in_error(tmp_path):
    cp, txn = make(tmp_path)
    fault(cp)
    assert reserve(cp) == "Faulted"
    assert on_flash(tmp_path) is None


@pytest.mark.parametrize("connector", [0, 1])
def test_unavailable_when_the_connector_or_the_station_is_inoperative(tmp_path, connector):
    cp, txn = make(tmp_path)
    assert change_availability.change(cp.station, connector, "Inoperative") == "Accepted"
    assert reserve(cp, connector=1) == "Unavailable"
    assert reserve(cp, connector=0) == "Unavailable"
    assert on_flash(tmp_path) is None


def test_unavailable_while_a_reset_is_under_way(tmp_path):
    cp, txn = make(tmp_path)
    cp.station.resetting = True
    assert reserve(cp) == "Unavailable"


@pytest.mark.parametrize("connector", [2, 5])
def test_unknown_connector_is_rejected(tmp_path, connector):
    cp, txn = make(tmp_path)
    assert reserve(cp, connector=connector) == "Rejected"
    assert on_flash(tmp_path) is None


def test_connector_0_reserves_the_station_its_one_connector_shows_reserved(tmp_path):
    cp, txn = make(tmp_path)
    assert cp.config.get("ReserveConnectorZeroSupported") is True
    assert reserve(cp, rid=3, connector=0) == "Accepted"
    assert on_flash(tmp_path)["c"] == 0
    assert status(cp, 1) == "Reserved" and status(cp, 0) == "Available"
    assert cp.reservation.reserved(0) and cp.reservation.reserved(1)


def test_connector_0_rejected_when_not_supported(tmp_path):
    cp, txn = make(tmp_path)
    cp.config.set_fact("ReserveConnectorZeroSupported", False)
    assert reserve(cp, connector=0) == "Rejected"
    assert reserve(cp, connector=1) == "Accepted"


def test_expiry_in_the_past_or_unreadable_is_rejected(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, secs=-1) == "Rejected"
    assert reserve(cp, secs=0) == "Rejected"
    assert reserve(cp, expiry="tomorrow at noon please") == "Rejected"
    assert reserve(cp, expiry="2030-13-01T00:00:00Z") == "Rejected"
    assert on_flash(tmp_path) is None and cp.reservation.r is None


def test_flash_error_is_rejected_and_keeps_the_old_reservation(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=7, tag="R1") == "Accepted"

    def broken(path, obj):
        raise OSError(28, "no space")

    monkeypatch.setattr(fs, "write_json", broken)
    assert reserve(cp, rid=7, tag="R2") == "Rejected"
    assert cp.reservation.r["tag"] == "R1" and on_flash(tmp_path)["tag"] == "R1"


def test_an_expired_reservation_does_not_make_a_new_one_occupied(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=7, secs=10) == "Accepted"
    t = clock.now() + 10
    monkeypatch.setattr(clock, "now", lambda: t)
    assert reserve(cp, rid=8, tag="R2", secs=600) == "Accepted"
    assert cp.reservation.r["id"] == 8


def test_rejected_by_a_build_without_the_reservation_feature(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    cp.reservation = None
    cp.awake = []

    def missing(name):
        raise ImportError("no module named " + repr(name))

    monkeypatch.setattr(app, "feature", missing)
    assert reserve_now.reserve(cp, request()) == "Rejected"
    assert cp.reservation is None


def test_a_dormant_reservation_feature_is_attached_by_the_first_reserve_now(tmp_path):
    # firmware/app.py DORMANT: without a reservation on flash the feature is not loaded at
    # boot; ReserveNow attaches it (watcher task included) and is answered as usual.
    cp, txn = make(tmp_path)
    cp.reservation = None
    cp.awake = []

    async def go():
        st = reserve(cp, rid=3, tag="R3")
        assert cp.awake == ["firmware.reservation"]
        assert reserve(cp, rid=3, tag="R3") == "Accepted"  # awake: not attached twice
        assert cp.awake == ["firmware.reservation"]
        cp.reservation._task.cancel()  # its watcher runs
        return st

    assert asyncio.run(go()) == "Accepted"
    assert cp.reservation.r["id"] == 3 and cp.reservation.r["tag"] == "R3"


def test_restored_by_a_new_config_on_the_same_data(tmp_path):
    # The reservation survives what a reboot rebuilds (a new Config, a new feature object).
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=9, tag="R9") == "Accepted"
    cp2, _ = make(tmp_path)
    assert isinstance(cp2.config, Config) and cp2.reservation.r["id"] == 9
    assert status(cp2, 1) == "Reserved"
