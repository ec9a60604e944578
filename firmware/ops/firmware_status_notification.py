"""FirmwareStatusNotification (OCPP 1.6 §4.5, §6.33), sent by the charge point: Downloaded,
DownloadFailed, Downloading, Idle (only in answer to a TriggerMessage when no update runs),
InstallationFailed, Installing, Installed. The conf is empty."""

ACTION = "FirmwareStatusNotification"
STATUSES = ("Downloaded", "DownloadFailed", "Downloading", "Idle", "InstallationFailed",
            "Installing", "Installed")


def payload(status):
    if status not in STATUSES:
        raise ValueError(status)
    return {"status": status}


async def send(cp, status):
    """Raises when the link is down or the central system answers a CALLERROR."""
    return await cp.session.call(ACTION, payload(status))
