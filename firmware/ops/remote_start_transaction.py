"""RemoteStartTransaction (OCPP 1.6 §5.11): Accepted or Rejected at once; the start follows.

Rejected when the connector is not 1..NumberOfConnectors (0 included), unavailable
(`cp.station.available`), faulted, already in a transaction, reserved for another idTag
(`cp.reservation.admit`: the parentIdTag as the local list or the cache know it), already
has a start on its way (an earlier RemoteStart or a card waiting for the car, until it starts
or its ConnectionTimeOut passes: the first request is kept whole, TxProfile included; the
spec is silent, and replacing it would silently drop what the first one asked for), or when
a chargingProfile is not a TxProfile (§5.11: only TxProfile may come with it).
Accepted: the after-handler hands the idTag to the transaction service, which sends
Authorize first when AuthorizeRemoteTxRequests is true, and starts the transaction once a
car is plugged (within ConnectionTimeOut). The profile goes to smart charging once the
transactionId is known.
"""

from firmware.ocpp import router

ACTION = "RemoteStartTransaction"


def _connector(cp, payload):
    return payload.get("connectorId", 1)


@router.on(ACTION)
def remote_start_transaction(cp, payload):
    conn = _connector(cp, payload)
    ok = 1 <= conn <= cp.config.get("NumberOfConnectors")
    st = cp.station
    if ok and st is not None and hasattr(st, "available"):
        ok = bool(st.available(conn))
    if ok and (cp.txn.active(conn) is not None or cp.txn.start_pending(conn)
               or cp.charger.err):
        ok = False
    rsv = cp.reservation
    if ok and rsv is not None:
        ok = rsv.admit(conn, payload["idTag"])[0]  # reserved for another idTag
    prof = payload.get("chargingProfile")
    if ok and prof is not None and prof.get("chargingProfilePurpose") != "TxProfile":
        ok = False
    return {"status": "Accepted" if ok else "Rejected"}


@router.after(ACTION)
def remote_start_after(cp, payload, response):
    if response["status"] == "Accepted":
        cp.txn.remote_start(payload["idTag"], _connector(cp, payload),
                            payload.get("chargingProfile"))
