"""SignedFirmwareStatusNotification (Security Whitepaper), sent by the charge point: the
progress of a SignedUpdateFirmware (and the answer to ExtendedTriggerMessage
FirmwareStatusNotification). The conf is empty."""

from firmware.ops import status_payload

ACTION = "SignedFirmwareStatusNotification"
STATUSES = (
    "Downloaded", "DownloadFailed", "Downloading", "DownloadScheduled", "DownloadPaused",
    "Idle", "InstallationFailed", "Installing", "Installed", "InstallRebooting",
    "InstallScheduled", "InstallVerificationFailed", "InvalidSignature", "SignatureVerified",
)


def payload(status, request_id=None):
    return status_payload(STATUSES, status, request_id)


async def send(cp, status, request_id=None):
    """Raises when the link is down or the central system answers a CALLERROR."""
    return await cp.session.call(ACTION, payload(status, request_id))
