"""Unit-test kit for the Reservation profile (firmware/reservation.py and its message
modules): the txnkit charge point (real Config, Charger on the simulated HAL, journal,
authorization, transaction service; a loopback central system that schema-checks every
message) with the real Station and the reservation feature attached.

The watcher task is not started: tests call `cp.reservation.step()` where the task would
(test_reservation.py runs the task itself once). ReserveNow and CancelReservation go through
the router's handlers with request and answer checked against the official schemas.
"""

from conftest import check_ocpp
from txnkit import events
from txnkit import make as make_txn

from firmware import clock, reservation
from firmware.ocpp import router
from firmware.station import Station

NOT_STARTED = "the test drives step()"


def make(data_dir, online=True, **cfg):
    """(cp, txn) with station, transactions, authorization and reservation attached."""
    cp, txn = make_txn(data_dir, online, **cfg)
    cp.station = Station(cp)
    attach(cp)
    return cp, txn


def attach(cp):
    """The reservation feature on `cp` (again: a reboot on the same data), watcher not run."""
    for coro in reservation.attach(cp):
        coro.close()
    cp.reservation._task = NOT_STARTED
    return cp.reservation


def call(cp, action, payload):
    check_ocpp(action, payload)
    router.lookup(action)  # imports the message module on its first CALL, as the RPC does
    res = router.HANDLERS[action](cp, payload)
    check_ocpp(action, res, response=True)
    return res["status"]


def request(rid=1, tag="R1", connector=1, secs=600, parent=None, expiry=None):
    p = {"connectorId": connector, "idTag": tag, "reservationId": rid,
         "expiryDate": expiry or clock.rfc3339(clock.now() + secs)}
    if parent is not None:
        p["parentIdTag"] = parent
    return p


def reserve(cp, rid=1, tag="R1", connector=1, secs=600, parent=None, expiry=None):
    return call(cp, "ReserveNow", request(rid, tag, connector, secs, parent, expiry))


def cancel(cp, rid):
    return call(cp, "CancelReservation", {"reservationId": rid})


def status(cp, connector=1):
    return cp.station.status(connector)[0]


def fault(cp):
    """A latched RCD trip: the charger (and the station) report Faulted."""
    cp.hal.control({"rcd": "trip"})
    cp.charger.tick()
    assert cp.charger.status == "faulted"


async def car(txn, state):
    """The simulated car goes to pilot `state` ("A" unplugged, "B" plugged): the charger
    ticks until it sees it (its status follows), then the service gets the queued events."""
    cp = txn.cp
    cp.hal.control({"cp": state})
    for _ in range(10):
        cp.charger.tick()
        if cp.charger.plugged == (state != "A"):
            break
    queued = list(txn._events)
    del txn._events[:]
    await events(txn, *queued)
