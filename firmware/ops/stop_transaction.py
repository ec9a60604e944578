"""StopTransaction (OCPP 1.6 §4.10): journaled by firmware/transactions/service.py (`Txn.stop`)
or, after a
power cut, by the journal's recovery (reason PowerLoss, last known meter value).

Reasons (§7.41): EVDisconnected (cable left the car), Local (card, or frc=1 on the API),
Remote (RemoteStopTransaction), DeAuthorized (StartTransaction.conf not Accepted),
PowerLoss, SoftReset / HardReset / UnlockCommand / Other from the other services.
"""

ACTION = "StopTransaction"
REASONS = (
    "EmergencyStop", "EVDisconnected", "HardReset", "Local", "Other", "PowerLoss", "Reboot",
    "Remote", "SoftReset", "UnlockCommand", "DeAuthorized",
)


def on_conf(cp, entry, conf):
    """The optional idTagInfo is about the idTag that stopped: into the cache."""
    info = conf.get("idTagInfo")
    tag = entry["payload"].get("idTag")
    if info is not None and tag:
        cp.txn.auth.remember(tag, info)
