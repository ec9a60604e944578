"""The work of a GetLog (Security Whitepaper), loaded only when one arrives: one text file
built on flash (`<data>/getlog<requestId>.txt`, line by line, never whole in RAM) and
uploaded to `remoteLocation` + `fileName` (lib/xfer.py: FTP STOR, HTTP(S) PUT; remoteLocation is a
directory, as GetDiagnostics' location), `retries` attempts spaced by `retryInterval` s.
LogStatusNotification (with the requestId): Uploading, then Uploaded or UploadFailure.

- DiagnosticsLog: the diagnostics file of GetDiagnostics (firmware/firmware_update/
  diagnostics.py: header, flash log, fault counters, configuration with secrets redacted,
  journal figures), the log lines within [oldestTimestamp, latestTimestamp];
- SecurityLog: the security log (firmware/security/events.py), oldest first, the events
  within [oldestTimestamp, latestTimestamp].
"""

import asyncio
import os

import log
from firmware import clock


def file_name(cp, kind):
    t = clock.now_or_0()
    return "%s-%s-%s.txt" % ("security" if kind == "SecurityLog" else "diagnostics",
                             cp.info.get("serial") or "cp", clock.rfc3339(t).replace(":", ""))


def _security(cp, path, start, stop):
    from firmware.ocpp import router
    from firmware.security import events

    sec = cp.security
    files = events.SecurityLog(sec.dir).files()
    if sec.log is None:  # loaded for this only: the service holds it while events wait
        router.forget("firmware.security.events")
    with open(path, "w") as out:
        for p in files:
            with open(p) as f:
                for line in f:
                    try:
                        t = clock.parse(line[: line.index(" ")])
                    except ValueError:
                        t = None
                    if t is not None and ((start is not None and t < start)
                                          or (stop is not None and t > stop)):
                        continue
                    out.write(line)


async def run(sec, kind, url, request_id, start, stop, retries, interval):
    from firmware.ops import log_status_notification as lsn

    cp = sec.cp
    path = cp.data_dir.rstrip("/") + "/getlog%d.txt" % request_id  # one per request

    async def notify(status):
        sec.log_status = (status, request_id) if status == "Uploading" else None
        try:
            await lsn.send(cp, status, request_id)
        except Exception as e:  # link down: lost; ExtendedTriggerMessage can ask
            log.warning("security", "LogStatusNotification %s not sent: %r" % (status, e))

    await notify("Uploading")
    ok = False
    try:
        if kind == "SecurityLog":
            _security(cp, path, start, stop)
        from firmware.firmware_update import diagnostics

        if kind != "SecurityLog":
            diagnostics.build(cp, path, start, stop)
        ok = await diagnostics.upload(cp, url, path, retries, interval, "security", "log")
    except asyncio.CancelledError:  # a newer GetLog replaced this one
        sec.log_status = None
        raise
    except OSError as e:
        log.error("security", "log file: %r" % (e,))
    finally:
        try:
            os.remove(path)
        except OSError:
            pass
    await notify("Uploaded" if ok else "UploadFailure")
