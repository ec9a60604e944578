"""GetLog (Security Whitepaper): upload the DiagnosticsLog or the SecurityLog to
`log.remoteLocation` (a directory URI: ftp://, http://, https://; the answer's filename is
appended). Answered at once (Accepted with the filename; AcceptedCanceled when it replaces
an upload still running, which is cancelled; Rejected for another scheme), then the upload
runs in a task (firmware/security/getlog.py, loaded then) with LogStatusNotification.
"""

import asyncio

from firmware import clock
from firmware.ocpp import router

ACTION = "GetLog"
RESIDENT = True  # kept loaded (router.done): the upload in progress, see get_log()
SCHEMES = ("http://", "https://", "ftp://")
task = None  # the upload in progress (a reference keeps it alive)


@router.on(ACTION)
def get_log(cp, payload):
    loc = payload["log"]["remoteLocation"]
    if cp.security is None or not any(loc.startswith(s) for s in SCHEMES):
        return {"status": "Rejected"}
    from firmware.security import getlog

    busy = task is not None and not task.done()
    return {"status": "AcceptedCanceled" if busy else "Accepted",
            "filename": getlog.file_name(cp, payload["logType"])}


@router.after(ACTION)
def get_log_after(cp, payload, response):
    global task
    if response["status"] == "Rejected":
        return
    if task is not None and not task.done():
        task.cancel()
    from firmware.security import getlog

    url = payload["log"]["remoteLocation"].rstrip("/") + "/" + response["filename"]
    task = asyncio.create_task(getlog.run(
        cp.security, payload["logType"], url, payload["requestId"],
        clock.parse_or_none(payload["log"].get("oldestTimestamp")),
        clock.parse_or_none(payload["log"].get("latestTimestamp")),
        payload.get("retries", 1), max(0, payload.get("retryInterval", 0))))
