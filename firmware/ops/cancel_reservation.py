"""CancelReservation (OCPP 1.6 §5.1): end the active reservation (firmware/reservation.py).

Accepted when `reservationId` is the active reservation's: it ends at once (its file is
removed) and connector 1 turns Available again. Rejected for any other id, including one
that has already expired, been used by a transaction or ended by a fault.
"""

from firmware.ocpp import router

ACTION = "CancelReservation"


@router.on(ACTION)
def cancel_reservation(cp, payload):
    rsv = cp.reservation
    if rsv is not None:
        rsv.step()  # one that has just expired is no longer there to cancel
        r = rsv.r
        if r is not None and r["id"] == payload["reservationId"]:
            rsv.end("cancelled")
            return {"status": "Accepted"}
    return {"status": "Rejected"}
