"""UpdateFirmware (OCPP 1.6 §5.19, §6.53): install new firmware from `location` at
`retrieveDate`. Answered at once (an empty conf); the work is cp.firmware's
(firmware/firmware_update/service.py): the request is kept on flash, `retries` attempts
(default 1) spaced by `retryInterval` seconds (default 0), the progress reported with
FirmwareStatusNotification. A location that is not http://, https:// or ftp://, or a
retrieveDate that is not a date, is answered as usual and reported as DownloadFailed
(the conf has no status); nothing is stored then.

Once a ManufacturerRootCertificate is installed, the charger installs only signed firmware
(SignedUpdateFirmware): an UpdateFirmware is answered with a CALLERROR SecurityError and
nothing else happens (firmware/firmware_update/signed.py explains the choice).
"""


import log
from firmware import clock
from firmware.ocpp import router

ACTION = "UpdateFirmware"
SCHEMES = ("http://", "https://", "ftp://")
FEATURE = "firmware.firmware_update.service"  # cp.firmware
task = None  # the DownloadFailed task (router.spawn keeps it alive)


def parse(payload):
    """(location, retrieve unix s, retries, interval s) or None when unusable."""
    loc = payload["location"]
    if not any(loc.startswith(s) for s in SCHEMES):
        return None
    try:
        at = clock.parse(payload["retrieveDate"])
    except ValueError:
        return None
    return (loc, at, payload.get("retries", 1), payload.get("retryInterval", 0))


@router.on(ACTION)
def update_firmware(cp, payload):
    from firmware.security import certs

    cp.wake(FEATURE)  # a dormant feature (firmware/app.py); a failure answers InternalError
    if certs.files(cp, certs.TYPES[1]):
        raise router.OCPPError(router.SECURITY_ERROR,
                               "signed firmware only: use SignedUpdateFirmware")
    return {}


@router.after(ACTION)
def update_firmware_after(cp, payload, response):
    global task
    cp.wake(FEATURE)  # (again: it may have gone back to sleep since the handler ran)
    req = parse(payload)
    if req is None:
        log.error("firmware", "UpdateFirmware unusable:", payload["location"][:60])
        task = router.spawn(cp.firmware.notify("DownloadFailed"))
        return
    cp.firmware.request(*req)
