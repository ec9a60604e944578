"""StartTransaction (OCPP 1.6 §4.8): journaled by firmware/transactions/service.py before it is
sent, with
meterStart and timestamp frozen, so a copy re-sent after a power cut is identical.

`on_conf` applies StartTransaction.conf when the journal sender delivered it: the
transactionId goes to the running transaction (and its pending TxProfile to smart charging),
the idTagInfo to the authorization cache; a status other than Accepted invalidates the
transaction (StopTransactionOnInvalidId, MaxEnergyOnInvalidId: see Txn.invalidated).
"""

ACTION = "StartTransaction"


def on_conf(cp, entry, conf):
    txn = cp.txn
    info = conf["idTagInfo"]
    txn.auth.remember(entry["payload"]["idTag"], info)
    tx = txn.by_ref(entry["ref"])
    if tx is None:
        return  # stopped before the answer came (offline session): its Stop follows
    tx.transaction_id = conf["transactionId"]
    if tx.parent_id_tag is None:
        tx.parent_id_tag = info.get("parentIdTag")
    txn.on_transaction_id(tx)
    if info["status"] != "Accepted":
        txn.invalidated(tx, info["status"])
