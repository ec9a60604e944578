"""DiagnosticsStatusNotification (OCPP 1.6 §4.4, §6.21), sent by the charge point: Idle (only
in answer to a TriggerMessage when no upload runs), Uploaded, UploadFailed, Uploading. The
conf is empty."""

ACTION = "DiagnosticsStatusNotification"
STATUSES = ("Idle", "Uploaded", "UploadFailed", "Uploading")


def payload(status):
    if status not in STATUSES:
        raise ValueError(status)
    return {"status": status}


async def send(cp, status):
    """Raises when the link is down or the central system answers a CALLERROR."""
    return await cp.session.call(ACTION, payload(status))
