"""LogStatusNotification (Security Whitepaper), sent by the charge point: the progress of
a GetLog upload (Uploading, Uploaded, UploadFailure, BadMessage, NotSupportedOperation,
PermissionDenied), Idle only in answer to ExtendedTriggerMessage. The conf is empty."""

ACTION = "LogStatusNotification"
STATUSES = ("BadMessage", "Idle", "NotSupportedOperation", "PermissionDenied", "Uploaded",
            "UploadFailure", "Uploading")


def payload(status, request_id=None):
    if status not in STATUSES:
        raise ValueError(status)
    p = {"status": status}
    if request_id is not None:
        p["requestId"] = request_id
    return p


async def send(cp, status, request_id=None):
    """Raises when the link is down or the central system answers a CALLERROR."""
    return await cp.session.call(ACTION, payload(status, request_id))
