"""The reservation feature (firmware/reservation.py) with the real transaction service,
authorization, station and journal (rsvkit): who may start while a reservation holds the
connector, the reservationId in StartTransaction, the end by use, expiry (also across a
reboot), fault, unavailability and a power cut, the file on flash, the `rsv` API key, and
the watcher task. Every message sent is checked against the official schemas (txnkit)."""

import asyncio
import os

import pytest
from rsvkit import NOT_STARTED, attach, cancel, car, fault, make, reserve, status
from txnkit import drain, events, run

import log
from firmware import clock, reservation
from firmware.api import Api
from firmware.ocpp import router
from firmware.ops import change_availability

FILE = "reservation.json"


def path(tmp_path):
    return os.path.join(str(tmp_path), FILE)


def remote_start(cp, tag):
    router.lookup("RemoteStartTransaction")
    p = {"idTag": tag, "connectorId": 1}
    res = router.HANDLERS["RemoteStartTransaction"](cp, p)
    router.AFTER["RemoteStartTransaction"](cp, p, res)
    return res["status"]


# ---- who may start


def test_the_reserved_card_starts_with_the_reservation_id_and_ends_it(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=42, tag="R1") == "Accepted"

    async def go():
        await car(txn, "B")
        assert status(cp) == "Preparing"  # the driver came; still held for R1
        await events(txn, ("card", "R1"))
        assert cp.tx is not None and cp.charger.authorized
        await drain(txn)

    run(go())
    (start,) = cp.session.sent("StartTransaction")
    assert start["reservationId"] == 42 and start["idTag"] == "R1"
    assert cp.reservation.r is None and not os.path.exists(path(tmp_path))
    assert attach(cp).r is None


def test_another_card_is_refused_and_the_car_is_not_offered_power(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=42, tag="R1") == "Accepted"

    async def go():
        await car(txn, "B")
        await events(txn, ("card", "X9"))
        assert cp.tx is None and txn._pending is None and not cp.charger.authorized
        await events(txn, ("card", "X9"))
        await car(txn, "A")
        await events(txn, ("card", "X9"))
        await car(txn, "B")
        # The charger's gate for power (the e2e test sees no energy flow).
        assert cp.tx is None and cp.charger.auth_required and not cp.charger.authorized
        await drain(txn)

    run(go())
    assert cp.session.sent("StartTransaction") == []
    assert cp.reservation.r["id"] == 42 and status(cp) == "Preparing"
    run(car(txn, "A"))
    assert status(cp) == "Reserved"


def test_a_refused_card_stays_refused_when_the_reservation_ends_before_the_car_comes(
        tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=42, tag="R1") == "Accepted"
    run(events(txn, ("card", "X9")))  # no car yet
    assert txn._pending is None
    assert cancel(cp, 42) == "Accepted"
    run(events(txn, "plugged"))
    assert cp.tx is None and not cp.charger.authorized


def test_a_card_with_the_reservations_parent_id_tag_starts(tmp_path):
    cp, txn = make(tmp_path)
    cp.session.cards = {"F2": {"status": "Accepted", "parentIdTag": "FLEET"},
                        "O3": {"status": "Accepted", "parentIdTag": "OTHER"}}
    assert reserve(cp, rid=5, tag="R1", parent="FLEET") == "Accepted"

    async def go():
        await events(txn, "plugged", ("card", "O3"))
        assert cp.tx is None
        await events(txn, ("card", "F2"))  # parentIdTag from the Authorize answer
        assert cp.tx is not None and cp.tx.id_tag == "F2"
        await drain(txn)

    run(go())
    assert cp.session.sent("StartTransaction")[0]["reservationId"] == 5


def test_parent_id_tag_from_the_local_list_offline(tmp_path):
    cp, txn = make(tmp_path, online=False)
    txn.auth.local.update(1, "Full", [
        {"idTag": "F2", "idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}}])
    assert reserve(cp, rid=5, tag="R1", parent="FLEET") == "Accepted"
    run(events(txn, "plugged", ("card", "F2")))
    assert cp.tx is not None
    assert txn.journal.peek()["payload"]["reservationId"] == 5


def test_without_a_parent_in_the_reservation_only_its_id_tag_starts(tmp_path):
    cp, txn = make(tmp_path)
    cp.session.cards = {"F2": {"status": "Accepted", "parentIdTag": "R1"}}
    assert reserve(cp, rid=5, tag="R1") == "Accepted"
    run(events(txn, "plugged", ("card", "F2")))
    assert cp.tx is None


def test_an_authorization_from_before_the_reservation_starts_nothing(tmp_path):
    cp, txn = make(tmp_path)
    run(events(txn, ("card", "X9")))
    assert txn._pending is not None
    assert reserve(cp, rid=6, tag="R1") == "Accepted"
    run(events(txn, "plugged"))
    assert cp.tx is None and not cp.charger.authorized and txn._pending is None


def test_the_dummy_card_starts_nothing_while_reserved(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE", ConnectionTimeOut="5")
    assert reserve(cp, rid=6, tag="R1") == "Accepted"

    async def go():
        await events(txn, "plugged", "charging")
        assert cp.tx is None
        txn._plug_ms -= 5000
        txn._timers()
        await events(txn, *txn._events)
        assert cp.tx is None and not cp.charger.authorized

    run(go())


def test_remote_start_for_another_id_tag_is_rejected(tmp_path):
    cp, txn = make(tmp_path)
    txn.auth.cache.put("F2", {"status": "Accepted", "parentIdTag": "FLEET"}, clock.now())
    assert reserve(cp, rid=8, tag="R1", parent="FLEET") == "Accepted"
    assert remote_start(cp, "X9") == "Rejected"
    assert remote_start(cp, "F2") == "Accepted"  # its parent, as the cache knows it
    txn._events.clear()
    assert remote_start(cp, "R1") == "Accepted"

    async def go():
        await events(txn, *txn._events)
        await events(txn, "plugged")
        await drain(txn)

    run(go())
    (start,) = cp.session.sent("StartTransaction")
    assert (start["idTag"], start["reservationId"]) == ("R1", 8)


def test_no_reservation_no_reservation_id(tmp_path):
    cp, txn = make(tmp_path)
    run(events(txn, "plugged", ("card", "A1")))
    run(drain(txn))
    assert "reservationId" not in cp.session.sent("StartTransaction")[0]


# ---- how it ends


def test_expiry_ends_it_to_the_second(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=3, secs=30) == "Accepted"
    exp = cp.reservation.r["exp"]
    monkeypatch.setattr(clock, "now", lambda: exp - 1)
    cp.reservation.step()
    assert status(cp) == "Reserved"
    monkeypatch.setattr(clock, "now", lambda: exp)
    cp.reservation.step()
    assert status(cp) == "Available" and not os.path.exists(path(tmp_path))


def test_an_expired_reservation_admits_anyone_even_before_the_watcher_saw_it(
        tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=3, secs=30) == "Accepted"
    exp = cp.reservation.r["exp"]
    monkeypatch.setattr(clock, "now", lambda: exp)
    run(events(txn, "plugged", ("card", "X9")))
    assert cp.tx is not None
    run(drain(txn))
    assert "reservationId" not in cp.session.sent("StartTransaction")[0]


def test_restored_after_a_reboot_and_expires_there(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=3, tag="R1", secs=30) == "Accepted"
    exp = cp.reservation.r["exp"]
    # Reboot before expiry: the reservation is back and holds the connector.
    cp2, _ = make(tmp_path)
    assert cp2.reservation.r["id"] == 3 and status(cp2) == "Reserved"
    # Reboot after expiry (power off meanwhile): the watcher's first look ends it.
    monkeypatch.setattr(clock, "now", lambda: exp + 3600)
    cp3, _ = make(tmp_path)
    assert cp3.reservation.r is not None  # found on flash...
    cp3.reservation.step()
    assert cp3.reservation.r is None and status(cp3) == "Available"  # ...and ended at once
    assert not os.path.exists(path(tmp_path))


def test_attach_returns_the_watcher_only_when_a_reservation_is_on_flash(tmp_path):
    cp, txn = make(tmp_path)
    assert reservation.attach(cp) == []
    cp.reservation._task = NOT_STARTED
    assert reserve(cp, rid=3) == "Accepted"
    coros = reservation.attach(cp)
    assert len(coros) == 1
    coros[0].close()


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"v": 1, "id": "x"}',
                                     b'{"v": 1, "id": 1, "c": 1, "tag": "R", "exp": 5}'])
def test_a_corrupt_file_means_no_reservation_and_an_error(tmp_path, content):
    cp, txn = make(tmp_path)
    with open(path(tmp_path), "wb") as f:
        f.write(content)
    log.last_error = None
    rsv = attach(cp)
    assert rsv.r is None and log.last_error is not None
    assert not os.path.exists(path(tmp_path))  # not read (and logged) again at every boot
    assert status(cp) == "Available"
    assert reserve(cp, rid=1) == "Accepted"


def test_a_fault_or_inoperative_ends_it_a_reset_does_not(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=1) == "Accepted"
    cp.station.resetting = True  # Unavailable while resetting: the reboot finds it on flash
    cp.reservation.step()
    assert cp.reservation.r is not None
    cp.station.resetting = False
    assert change_availability.change(cp.station, 1, "Inoperative") == "Accepted"
    cp.reservation.step()
    assert cp.reservation.r is None and not os.path.exists(path(tmp_path))
    assert change_availability.change(cp.station, 1, "Operative") == "Accepted"
    assert reserve(cp, rid=2) == "Accepted"
    fault(cp)
    cp.reservation.step()
    assert cp.reservation.r is None


def test_a_power_cut_between_the_start_and_the_end_of_the_reservation(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=11, tag="R1") == "Accepted"
    cp.reservation.used = lambda rid: None  # the cut comes before the file is removed
    run(events(txn, "plugged", ("card", "R1")))
    assert cp.tx is not None and os.path.exists(path(tmp_path))
    # Power back: PowerLoss for the transaction, and the watcher ends the used reservation.
    monkeypatch.setattr(reservation, "asleep_ms", lambda ms: asyncio.sleep(0))
    cp2, txn2 = make(tmp_path)
    assert len(txn2.recovered) == 1
    (watcher,) = reservation.attach(cp2)
    run(asyncio.wait_for(watcher, 2))  # its first look, before any other step
    assert cp2.reservation.r is None and not os.path.exists(path(tmp_path))


def test_a_start_of_an_earlier_reservation_with_the_same_id_does_not_end_a_new_one(
        tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=11, tag="R1") == "Accepted"
    run(events(txn, "plugged", ("card", "R1"), "unplugged"))
    assert cp.reservation.r is None
    t = clock.now() + 60
    monkeypatch.setattr(clock, "now", lambda: t)
    assert reserve(cp, rid=11, tag="R1") == "Accepted"  # the id comes again, later
    monkeypatch.setattr(reservation, "asleep_ms", lambda ms: asyncio.sleep(0))
    cp2, _ = make(tmp_path)
    (watcher,) = reservation.attach(cp2)

    async def one_look():
        task = asyncio.ensure_future(watcher)
        assert not await until_done(task, 50)
        assert cp2.reservation.r is not None
        cp2.reservation.end("test over")
        await task

    run(one_look())


def watched(cp, monkeypatch):
    """The reservation of `cp` with its real watcher, each step a bare yield to the loop."""
    monkeypatch.setattr(reservation, "asleep_ms", lambda ms: asyncio.sleep(0))
    cp.reservation._task = None
    return cp.reservation


async def until_done(task, steps=1000):
    for _ in range(steps):
        if task.done():
            return True
        await asyncio.sleep(0)
    return False


def test_the_watcher_runs_only_while_a_reservation_exists(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    rsv = watched(cp, monkeypatch)
    t = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: t[0])

    async def go():
        assert reserve(cp, rid=1, secs=10) == "Accepted"
        task = rsv._task
        assert task is not None and task is not NOT_STARTED
        assert reserve(cp, rid=1, secs=20) == "Accepted"
        assert rsv._task is task  # a replacement starts no second watcher
        assert not await until_done(task, 50)
        t[0] += 20
        assert await until_done(task)
        assert rsv._task is None and rsv.r is None and status(cp) == "Available"

    run(go())


def test_cancel_then_a_new_reservation_at_once_is_still_watched(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    rsv = watched(cp, monkeypatch)

    async def go():
        assert reserve(cp, rid=1) == "Accepted"
        task = rsv._task
        assert cancel(cp, 1) == "Accepted"
        assert reserve(cp, rid=2) == "Accepted"  # before the watcher looked again
        assert not await until_done(task, 50)
        assert rsv._task is task and rsv.r["id"] == 2
        rsv.end("test over")
        assert await until_done(task) and rsv._task is None

    run(go())


# ---- the local API


def test_status_key_rsv_shows_the_active_reservation_read_only(tmp_path):
    cp, txn = make(tmp_path)
    api = Api(cp.config, providers=[cp.reservation])
    assert api.status(["rsv"]) == {"rsv": None}
    assert reserve(cp, rid=12, tag="R1", secs=600, parent="FLEET") == "Accepted"
    exp = clock.rfc3339(cp.reservation.r["exp"])
    assert api.status(["rsv"])["rsv"] == {"id": 12, "connectorId": 1, "idTag": "R1",
                                          "parentIdTag": "FLEET", "expiryDate": exp}
    assert reserve(cp, rid=12, tag="R1", connector=0) == "Accepted"
    assert "parentIdTag" not in api.status(["rsv"])["rsv"]
    assert api.status(["rsv"])["rsv"]["connectorId"] == 0
    code, body = api.set({"rsv": "null"})
    assert code == 400 and body == {"rsv": "read-only"}
    assert cp.reservation.r["id"] == 12


def test_status_key_is_registered_through_the_charge_point(tmp_path):
    cp, txn = make(tmp_path)
    cp.api = Api(cp.config)
    attach(cp)
    assert cp.api.status(["rsv"]) == {"rsv": None}
