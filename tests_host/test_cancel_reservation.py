"""CancelReservation (firmware/ops/cancel_reservation.py): Accepted ends the active
reservation (on flash too, connector Available again), Rejected for any other id.
Requests and answers are checked against the official schemas (rsvkit.call)."""

import os

from rsvkit import attach, cancel, fault, make, reserve, status

from firmware import clock
from firmware.ops import cancel_reservation


def test_accepted_ends_the_reservation_and_the_connector_is_available(tmp_path):
    cp, txn = make(tmp_path)
    assert cancel_reservation.ACTION == "CancelReservation"
    assert reserve(cp, rid=4) == "Accepted"
    assert status(cp) == "Reserved"
    assert cancel(cp, 4) == "Accepted"
    assert cp.reservation.r is None and status(cp) == "Available"
    assert not os.path.exists(os.path.join(str(tmp_path), "reservation.json"))
    assert attach(cp).r is None  # gone after a reboot as well
    assert cancel(cp, 4) == "Rejected"  # already cancelled


def test_unknown_id_is_rejected_and_changes_nothing(tmp_path):
    cp, txn = make(tmp_path)
    assert cancel(cp, 1) == "Rejected"  # none at all
    assert reserve(cp, rid=4) == "Accepted"
    assert cancel(cp, 5) == "Rejected"
    assert cp.reservation.r["id"] == 4 and status(cp) == "Reserved"
    assert attach(cp).r["id"] == 4


def test_an_expired_reservation_cannot_be_cancelled(tmp_path, monkeypatch):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=4, secs=5) == "Accepted"
    t = clock.now() + 5
    monkeypatch.setattr(clock, "now", lambda: t)
    assert cancel(cp, 4) == "Rejected"
    assert cp.reservation.r is None


def test_a_reservation_ended_by_a_fault_cannot_be_cancelled(tmp_path):
    cp, txn = make(tmp_path)
    assert reserve(cp, rid=4) == "Accepted"
    fault(cp)
    assert cancel(cp, 4) == "Rejected"


def test_rejected_without_the_reservation_feature(tmp_path):
    cp, txn = make(tmp_path)
    cp.reservation = None
    assert cancel(cp, 4) == "Rejected"
