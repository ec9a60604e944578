"""LogStatusNotification (Security Whitepaper), sent by the charge point: the progress of
a GetLog upload (Uploading, Uploaded, UploadFailure, BadMessage, NotSupportedOperation,
PermissionDenied), Idle only in answer to ExtendedTriggerMessage. The conf is empty."""

from firmware.ops import status_payload

ACTION = "LogStatusNotification"
STATUSES = ("BadMessage", "Idle", "NotSupportedOperation", "PermissionDenied", "Uploaded",
            "UploadFailure", "Uploading")


def payload(status, request_id=None):
    return status_payload(STATUSES, status, request_id)


async def send(cp, status, request_id=None):
    """Raises when the link is down or the central system answers a CALLERROR."""
    return await cp.session.call(ACTION, payload(status, request_id))
