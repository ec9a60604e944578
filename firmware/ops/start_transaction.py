"""StartTransaction (OCPP 1.6 §4.8), both directions: `payload` builds the request, which the
journal stores before it is sent (meterStart and timestamp frozen, so a copy re-sent after a
power cut is identical).

`on_conf` applies StartTransaction.conf when the journal sender delivered it: the
transactionId goes to the running transaction (and its pending TxProfile to smart charging),
the idTagInfo to the authorization cache; a status other than Accepted invalidates the
transaction (StopTransactionOnInvalidId, MaxEnergyOnInvalidId: see Txn.invalidated).
"""

ACTION = "StartTransaction"


def payload(connector_id, id_tag, meter_start, timestamp, reservation_id=None):
    """The request, as the journal stores it (and re-sends it verbatim)."""
    p = {"connectorId": connector_id, "idTag": id_tag, "meterStart": meter_start,
         "timestamp": timestamp}
    if reservation_id is not None:
        p["reservationId"] = reservation_id
    return p


def on_conf(cp, entry, conf):
    txn = cp.txn
    info = conf["idTagInfo"]
    tx = txn.by_ref(entry["ref"])
    if tx is not None:  # else stopped before the answer came (offline): its Stop follows
        tx.transaction_id = conf["transactionId"]
        if tx.parent_id_tag is None:
            tx.parent_id_tag = info.get("parentIdTag")
        txn.on_transaction_id(tx)
        if info["status"] != "Accepted":
            txn.invalidated(tx, info["status"])
    # Last: it loads the authorization, which a tight heap may refuse; the transaction
    # above must not depend on it.
    txn.remember(entry["payload"]["idTag"], info)
