"""The work of a GetDiagnostics, loaded only when one arrives (firmware/ops/get_diagnostics.py;
it wakes no feature: the firmware update's service stays asleep): one text file built on
flash (`<data>/diag.txt`, written line by line, never whole in RAM), then uploaded to
`location` + `fileName` (lib/xfer.py: FTP STOR, HTTP(S) PUT), `retries` attempts spaced by
`retryInterval` s; DiagnosticsStatusNotification Uploading, then Uploaded or UploadFailed.
The upload's task is `cp.diagnostics` while it runs (None otherwise): one at a time, and
TriggerMessage DiagnosticsStatusNotification says Uploading then, else Idle.

The file: a header (vendor, model, serial, firmware version, time), the flash log of
[startTime, stopTime] (lib/logfile.py), the fault counters, every configuration key with
its value (write-only keys shown as <redacted>, whatever they hold) and the transaction
journal figures.
"""

import asyncio
import os

import log
import logfile
from compat import asleep_ms
from firmware import clock

FILE = "diag.txt"


def file_name(cp):
    t = clock.now_or_0()
    return "diagnostics-%s-%s.txt" % (cp.info.get("serial") or "cp",
                                      clock.rfc3339(t).replace(":", ""))


def build(cp, path, start, stop):
    """Write the diagnostics file to `path`; returns its size."""
    from firmware import keys

    info = cp.info
    cfg = cp.config
    with open(path, "w") as f:
        f.write("# %s %s serial %s firmware %s at %s\n" % (
            info["vendor"], info["model"], info.get("serial", ""), info["fw"],
            clock.rfc3339() if clock.is_set() else "clock not set"))
        f.write("## log %s .. %s\n" % (start, stop))
        for _, line in logfile.lines(cp.data_dir, start, stop):
            f.write(line + "\n")
        f.write("## fault counters\n")
        c = cp.charger.counters
        for k in sorted(c):
            f.write("%s=%s\n" % (k, c[k]))
        f.write("## configuration\n")
        for e in keys.rows():
            name = e[0]
            v = "<redacted>" if cfg.is_secret(name) else cfg.get(name)
            f.write("%s=%s\n" % (name, v))
        f.write("## journal\n")
        txn = cp.txn
        if txn is not None:
            j = txn.journal
            f.write("entries=%d\nlive_bytes=%d\nfull=%s\n" % (len(j), j.live_bytes(),
                                                             j.full()))
    return os.stat(path)[6]


async def upload(cp, url, path, retries, interval, tag, what):
    """Upload `path` to `url` (FTP STOR / HTTP PUT; https with the OCPP link's TLS settings),
    `retries` attempts `interval` s apart: True once one worked. Shared by GetDiagnostics
    and the Security Whitepaper's GetLog."""
    import xfer  # not for the answer (file_name): only once there is a file to send

    tls = cp.session.tls() if url.startswith("https:") else None
    for attempt in range(max(1, retries)):
        if attempt:
            await asleep_ms(interval * 1000)
        try:
            await xfer.upload(url, path, tls=tls)
            return True
        except MemoryError:  # counted (oom); the next attempt may find room
            log.memory(tag, what + " upload")
        except Exception as e:  # noqa: BLE001 - a TransferError, of whichever copy of xfer
            # (router.sweep drops the transfer helpers between attempts; ftp may raise the
            # class of a newer copy than the one imported here)
            log.error(tag, what, "upload failed:", getattr(e, "reason", repr(e)))
    return False


def begin(cp, location, name, start, stop, retries, interval):
    """The upload in a task of its own, cp.diagnostics until it ends."""
    cp.diagnostics = asyncio.create_task(
        run(cp, location, name, start, stop, retries, max(0, interval)))


async def notify(cp, status):
    from firmware.ops import diagnostics_status_notification as dsn

    try:
        await dsn.send(cp, status)
    except Exception as e:  # link down: the status is lost, TriggerMessage can ask
        log.warning("firmware", "DiagnosticsStatusNotification %s not sent: %r"
                    % (status, e))


async def run(cp, location, name, start, stop, retries, interval):
    path = cp.data_dir.rstrip("/") + "/" + FILE
    url = location.rstrip("/") + "/" + name
    await notify(cp, "Uploading")
    ok = False
    try:
        size = build(cp, path, start, stop)
        log.info("firmware", "diagnostics: %d bytes" % size)
        ok = await upload(cp, url, path, retries, interval, "firmware", "diagnostics")
    except OSError as e:
        log.error("firmware", "diagnostics file: %r" % (e,))
    except MemoryError:  # the central system still hears how it ended: UploadFailed
        log.memory("firmware", "diagnostics file")
    finally:
        try:
            os.remove(path)
        except OSError:
            pass
    try:
        await notify(cp, "Uploaded" if ok else "UploadFailed")
    finally:
        # Done: cp forgets this task, so this coroutine (its frame keeps its locals, its
        # function this module's globals, ~2.6 KiB) is garbage now, not at the next
        # GetDiagnostics (one started meanwhile keeps its own).
        if cp.diagnostics is asyncio.current_task():
            cp.diagnostics = None
