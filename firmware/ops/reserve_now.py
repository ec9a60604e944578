"""ReserveNow (OCPP 1.6 §5.13): reserve connector 1, or the station (connector 0, its one
connector), for an idTag until expiryDate. The reservation itself is firmware/reservation.py
(`cp.reservation`).

Answers, first match wins:
- Rejected: no reservation feature (a build without it); connectorId outside
  0..NumberOfConnectors; connector 0 while ReserveConnectorZeroSupported is false; an
  expiryDate that is unreadable or not in the future; the reservation could not be written
  to flash (nothing changes then);
- Faulted: the charge point or the connector reports Faulted (as in StatusNotification);
- Unavailable: either reports Unavailable (ChangeAvailability Inoperative, a Reset under way);
- Occupied: another reservation (a different reservationId) is active, or a car is plugged,
  or a transaction runs;
- Accepted: the reservation is on flash. A request with the active reservation's
  reservationId replaces it (§5.13: connector, idTag, parentIdTag, expiry), also when its
  car is already plugged.
"""

import log
from firmware import clock
from firmware.ocpp import router

ACTION = "ReserveNow"


def reserve(cp, p):
    """The ReserveNow.conf status for request `p` (the reservation is made when Accepted)."""
    if cp.reservation is None:
        try:
            cp.wake("firmware.reservation")  # a dormant feature (firmware/app.py)
        except ImportError:  # a build without it: Rejected below (a MemoryError: a CALLERROR)
            pass
    rsv = cp.reservation
    c = p["connectorId"]
    if rsv is None or not 0 <= c <= min(1, cp.config.get("NumberOfConnectors")):
        return "Rejected"
    if c == 0 and not cp.config.get("ReserveConnectorZeroSupported"):
        return "Rejected"
    try:
        exp = clock.parse(p["expiryDate"])
    except ValueError:
        return "Rejected"
    now = clock.now()
    if exp <= now:
        return "Rejected"
    rsv.step()  # an expired or no longer valid reservation ends first
    # From the module of the feature as it is now (an import at the top would keep an
    # earlier one alive after the feature went back to sleep: app cp.rest).
    s = __import__("firmware.reservation", None, None, ("blocked",)).blocked(cp)
    if s is not None:
        return s
    rid = p["reservationId"]
    old = rsv.r
    if old is not None and old["id"] != rid:
        return "Occupied"
    if old is None and (cp.charger.plugged or cp.tx is not None):
        return "Occupied"
    r = {"id": rid, "c": c, "tag": p["idTag"], "p": p.get("parentIdTag"), "exp": exp, "t0": now}
    try:
        rsv.set(r)
    except OSError as e:
        log.error("rsv", "reservation not saved:", e)
        return "Rejected"
    log.info("rsv", "reservation", rid, "for", r["tag"], "on", c, "until", p["expiryDate"],
             "(replaced)" if old is not None else "")
    return "Accepted"


@router.on(ACTION)
def reserve_now(cp, payload):
    return {"status": reserve(cp, payload)}
