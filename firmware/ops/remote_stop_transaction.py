"""RemoteStopTransaction (OCPP 1.6 §5.12): Accepted when transactionId is the running
transaction's (known once StartTransaction.conf arrived), else Rejected. The stop itself
(reason Remote) runs after the answer is on the wire."""

from firmware.ocpp import router

ACTION = "RemoteStopTransaction"


def _find(cp, txid):
    for conn in range(1, cp.config.get("NumberOfConnectors") + 1):
        tx = cp.txn.active(conn)
        if tx is not None and tx.transaction_id == txid:
            return tx
    return None


@router.on(ACTION)
def remote_stop_transaction(cp, payload):
    ok = _find(cp, payload["transactionId"]) is not None
    return {"status": "Accepted" if ok else "Rejected"}


@router.after(ACTION)
def remote_stop_after(cp, payload, response):
    if response["status"] == "Accepted":
        tx = _find(cp, payload["transactionId"])
        if tx is not None:
            cp.txn.stop(tx.connector_id, "Remote")
