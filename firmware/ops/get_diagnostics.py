"""GetDiagnostics (OCPP 1.6 §5.8, §6.29): upload a diagnostics file to `location` (a
directory URI: ftp://, http://, https://). Answered at once with the fileName it will have
there; the upload runs in a task, cp.diagnostics (firmware/firmware_update/diagnostics.py,
loaded then; the firmware update's service is not woken for it): `startTime`/`stopTime`
select the log lines, `retries` attempts (default 1) spaced by `retryInterval` s,
DiagnosticsStatusNotification Uploading -> Uploaded /
UploadFailed. A location of another scheme, or an upload already running, answers without
a fileName (nothing will be uploaded).
"""

from firmware import clock
from firmware.ocpp import router

ACTION = "GetDiagnostics"
SCHEMES = ("http://", "https://", "ftp://")


@router.on(ACTION)
def get_diagnostics(cp, payload):
    loc = payload["location"]
    if cp.diagnostics is not None or not any(loc.startswith(s) for s in SCHEMES):
        return {}
    from firmware.firmware_update import diagnostics

    return {"fileName": diagnostics.file_name(cp)}


@router.after(ACTION)
def get_diagnostics_after(cp, payload, response):
    name = response.get("fileName")
    if name:
        from firmware.firmware_update import diagnostics

        diagnostics.begin(cp, payload["location"], name,
                          clock.parse_or_none(payload.get("startTime")),
                          clock.parse_or_none(payload.get("stopTime")),
                          payload.get("retries", 1), payload.get("retryInterval", 0))
