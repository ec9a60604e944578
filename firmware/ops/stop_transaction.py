"""StopTransaction (OCPP 1.6 §4.10), both directions: `payload` builds the request, journaled
by the transactions feature (`Txn.stop`) or, after a power cut, by the journal's recovery
(reason PowerLoss, last known meter value); `on_conf` handles the answer.

Reasons (§7.41): EVDisconnected (cable left the car), Local (card, or frc=1 on the API),
Remote (RemoteStopTransaction), DeAuthorized (StartTransaction.conf not Accepted),
PowerLoss, SoftReset / HardReset / UnlockCommand / Other from the other services.
"""

ACTION = "StopTransaction"
REASONS = (
    "EmergencyStop", "EVDisconnected", "HardReset", "Local", "Other", "PowerLoss", "Reboot",
    "Remote", "SoftReset", "UnlockCommand", "DeAuthorized",
)


def payload(meter_stop, timestamp, reason=None, id_tag=None, transaction_data=None):
    """The request, as the journal stores it; the journal adds transactionId at delivery."""
    p = {"meterStop": meter_stop, "timestamp": timestamp}
    if reason:
        p["reason"] = reason
    if id_tag:
        p["idTag"] = id_tag
    if transaction_data:
        p["transactionData"] = transaction_data
    return p


def on_conf(cp, entry, conf):
    """The optional idTagInfo is about the idTag that stopped: into the cache."""
    info = conf.get("idTagInfo")
    tag = entry["payload"].get("idTag")
    if info is not None and tag:
        cp.txn.remember(tag, info)
