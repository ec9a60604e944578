"""FirmwareManagement profile (cp.firmware): UpdateFirmware with its notifications
(firmware/ops/<name>.py hold the messages; this module the work). GetDiagnostics does not
wake it (firmware/firmware_update/diagnostics.py, cp.diagnostics).

UpdateFirmware: the request is kept in `<data>/fwupdate.json` (atomic) and survives reboots:

    {"v": 1, "loc": url, "at": unix s, "tries": attempts left, "gap": s, "stage": s, "ver": v}

A SignedUpdateFirmware (firmware/firmware_update/signed.py) adds "req" (its requestId), "sig"
(the signature, base64) and "inst" (installDateTime, unix s) and keeps the signing certificate
in `<data>/fwsign.pem`: its statuses go out as SignedFirmwareStatusNotification, the file's
signature is checked between the download and the unpacking (install.fetch's `check`), and
Installing is followed by InstallRebooting.

stage "wait": at `at` (retrieveDate) an attempt starts (`tries` is decremented on flash
first, so a power cut counts as a failed attempt): Downloading, the bundle is downloaded
(firmware/firmware_update/install.py, loaded only then) and unpacked into the inactive A/B
slot, every file's SHA-256 checked (lib/slots.py, lib/bundle.py). A transfer or bundle error
waits `gap` s and tries again; after the last attempt DownloadFailed. Then Downloaded and
stage "install": the installation waits until no transaction runs and the contactor is open;
meanwhile the connector shows Unavailable (cp.station.hold, not persisted). Installing, stage
"reboot", the slot pointer switches (written last, atomically), reboot. After the reboot,
once the BootNotification is Accepted, the slot is confirmed and Installed is sent when the
running version is the bundle's; a rollback (the new slot did not reach Accepted within
slots.MAX_TRIES boots, or TRIAL_MS after its start) gives InstallationFailed. A board with
OTA partitions takes whole images (location `.bin` / `.app-bin`) the same way, streamed into
the next OTA partition (cp.hal.ota, hal/esp32/ota.py; "ota": its label on flash instead of
"ver"); set_boot() at Installing, mark_app_valid_cancel_rollback() at every Accepted, and
Installed when that partition runs after the reboot (else the bootloader rolled back:
InstallationFailed). A new UpdateFirmware replaces one still waiting for its retrieveDate; one that
arrives while a download or installation runs is ignored (logged).

TriggerMessage: `status()` is the status in progress, else Idle.

Its configuration key is a row of firmware/keys.py (a dormant feature of firmware/app.py).
"""

import asyncio

import fs
import log
import slots
from compat import asleep_ms, const, nap, wait_for_ms
from firmware import clock

FILE = "fwupdate.json"
BUNDLE = "fw.bundle"
_FORMAT = const(1)
_POLL_MS = const(500)
_STEP_MS = const(60000)
_SHORT_MS = const(5000)  # the pause after a step that ran out of memory
# Download steps in a row with no room for their code (one every _SHORT_MS): then it counts
# as a failed attempt, so that a heap too small for it ends in DownloadFailed, not in a
# Downloading the central system never hears the end of.
_SHORT_TRIES = const(12)
TRIAL_MS = 600000  # a slot on trial that is not Accepted by then reboots (a failed boot)

OPS = ("update_firmware", "signed_update_firmware")


class Firmware:
    def __init__(self, cp):
        self.cp = cp
        self.data = cp.data_dir
        self._path = self.data.rstrip("/") + "/" + FILE
        st = fs.read_json(self._path, None)
        if st is not None and not _valid(st):
            log.error("firmware", "update file unreadable, dropped:", st)
            st = None
        self.state = st
        # An installation that rebooted (or lost power after its pointer step): judged at
        # the first Accepted. Not one that reaches that step in this run (a restart in
        # stage "install" installs again, maybe before the Accepted callbacks ran).
        self.rebooted = st is not None and st["stage"] == "reboot"
        self.req = None if st is None else st.get("req")  # requestId of a signed update
        self.current = None  # the status in progress (Downloading, Downloaded, Installing)
        self.idle = False  # the loop waits for a request (not in the middle of a status)
        self.short = 0  # steps in a row that ran out of memory (_step)
        self._wake = asyncio.Event()

    # -- UpdateFirmware -------------------------------------------------------------------
    def request(self, location, at, retries, interval, signed=None):
        """Keep an UpdateFirmware request (the answer is sent already or about to be);
        signed: {"req", "sig", "inst"?} of a SignedUpdateFirmware."""
        if self.current is not None:
            log.warning("firmware", "update in progress: new request ignored")
            return False
        st = {"v": _FORMAT, "loc": location, "at": at, "tries": max(1, retries),
              "gap": max(0, interval), "stage": "wait"}
        if signed:
            st.update(signed)
        try:
            self._save(st)
        except OSError as e:
            log.error("firmware", "update request not saved:", e)
            return False
        self.req = st.get("req")
        log.info("firmware", "update from", _safe(location), "at", clock.rfc3339(at))
        self._wake.set()
        return True

    def status(self):
        return self.current or "Idle"

    def _save(self, st):
        if st is None:
            try:
                import os

                os.remove(self._path)
            except OSError:
                pass
        else:
            fs.write_json(self._path, st)
        self.state = st

    async def notify(self, status):
        try:
            if self.req is not None:
                from firmware.firmware_update import signed

                await signed.send(self.cp, status, self.req)
            else:
                from firmware.ops import firmware_status_notification as fsn

                await fsn.send(self.cp, status)
            return True
        except Exception as e:  # link down: the status is lost, TriggerMessage can ask
            log.warning("firmware", "FirmwareStatusNotification %s not sent: %r" % (status, e))
            return False

    async def run(self):
        cp = self.cp
        while True:
            st = self.state
            if st is None or st["stage"] == "reboot":
                self._wake.clear()
                self.idle = True  # waiting for work: detach() may cancel it here
                await self._wake.wait()
                self.idle = False
                continue
            await cp.session.accepted.wait()  # statuses need the link; the clock is set
            if st["stage"] == "wait":
                left = st["at"] - clock.now()
                if left > 0:
                    self._wake.clear()
                    await nap(self._wake, min(left * 1000, _STEP_MS))
                    continue
                await self._step(self._download, st)
            else:
                await self._step(self._install, st)

    async def _step(self, fn, st):
        # One step must not end the loop (a MemoryError importing the transfer or crypto
        # code on a busy heap): logged and counted, the request stays on flash, and the
        # next turn tries again after a pause: a short one, with what router.shed() let
        # go, when memory was short (a central system's burst of requests passes).
        # _SHORT_TRIES download steps in a row without room are one failed attempt.
        try:
            await fn(st)
            self.short = 0
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            log.failed("firmware", "update step", e)
            if isinstance(e, MemoryError):
                from firmware.ocpp import router

                self.short += 1
                if self.short >= _SHORT_TRIES and st["stage"] == "wait" and st["tries"] > 0:
                    self.short = 0
                    st = dict(st)
                    st["tries"] -= 1
                    log.error("firmware", "no room for the download, attempt counted")
                    await self._attempt_failed(st)
                    return
                router.shed()
                await asleep_ms(_SHORT_MS)
            else:
                self.short = 0
                await asleep_ms(_STEP_MS)

    async def _attempt_failed(self, st):
        # A failed attempt (its try counted in st): the next one after `gap` s, or
        # DownloadFailed after the last.
        self.current = None
        if st["tries"] > 0:
            st["at"] = clock.now() + st["gap"]
            self._save(st)
        else:
            self._save(None)
            await self.notify("DownloadFailed")

    async def _download(self, st):
        if st["tries"] <= 0:  # the last attempt was cut short by a power cut
            from firmware.firmware_update import install

            install.discard(self.data)
            self._save(None)
            await self.notify("DownloadFailed")
            return
        # Loaded before the attempt is counted: no room for the code costs no try (the
        # step is tried again), only a download cut short does.
        from firmware.firmware_update import install

        st = dict(st)
        st["tries"] -= 1
        self._save(st)
        self.current = "Downloading"
        await self.notify("Downloading")
        check = None
        try:
            if "sig" in st:
                from firmware.firmware_update import signed

                check = signed.checker(self, st)
            got = await install.fetch(self.cp, st["loc"], self.data, check)
        except Exception as e:  # TransferError, BundleError, OSError: one failed attempt
            log.error("firmware", "download failed:", getattr(e, "reason", repr(e)))
            if self.current == "InvalidSignature":  # told already; no retry of a bad file
                self.current = None
                self._save(None)
                return
            await self._attempt_failed(st)
            return
        st["stage"] = "install"
        st.update(got)
        self._save(st)
        if check is None:  # a signed file was Downloaded and SignatureVerified already
            self.current = "Downloaded"
            await self.notify("Downloaded")

    async def _install(self, st):
        cp = self.cp
        self.current = "Downloaded"
        if st.get("inst", 0) > clock.now():  # installDateTime of a SignedUpdateFirmware
            self.current = "InstallScheduled"
            await self.notify("InstallScheduled")
            while st.get("inst", 0) > clock.now():
                await asleep_ms(min(_STEP_MS, (st["inst"] - clock.now()) * 1000))
        held = False
        while True:
            if cp.tx is None:
                if not held:
                    held = True
                    self._hold(True)  # no new session while waiting for the contactor
                if not cp.charger.energized and cp.tx is None:
                    break
            await asleep_ms(_POLL_MS)
        self.current = "Installing"
        await self.notify("Installing")
        from firmware.firmware_update import install

        st = dict(st)
        st["stage"] = "reboot"
        try:
            self._save(st)
            install.activate(cp, self.data, st)
        except Exception as e:
            log.error("firmware", "installation failed: %r" % (e,))
            self._save(None)
            self.current = None
            self._hold(False)
            await self.notify("InstallationFailed")
            return
        log.info("firmware", "installed", st.get("ver") or st.get("ota"), "- rebooting")
        if self.req is not None:
            await self.notify("InstallRebooting")
        await asleep_ms(200)  # the notification on the wire
        cp.reboot()

    def _hold(self, on):
        st = self.cp.station
        if st is not None:
            st.hold(on)
        else:
            self.cp.charger.set_available(not on)

    async def on_accepted(self, cp):
        """After every Accepted BootNotification: confirm the running slot, report the end
        of an installation that rebooted."""
        ota = getattr(cp.hal, "ota", None)
        if ota is not None:
            ota.confirm()  # the running image works: no rollback at the next reset
        d = slots.confirm(self.data)
        failed = d.get("failed")
        if failed:  # a rollback: the version check below reports it from now on
            log.error("firmware", "slot", failed, "rolled back")
            del d["failed"]
            slots.write(self.data, d)
        st = self.state
        if self.rebooted and st is not None and st["stage"] == "reboot":
            if "ota" in st:  # the bootloader rolled back unless the new partition runs
                ok = ota is not None and ota.running() == st["ota"]
            else:
                ok = not failed and cp.info["fw"] == st.get("ver")
            if not ok:
                log.error("firmware", "installation of", st.get("ver") or st.get("ota"),
                          "failed; running", cp.info["fw"])
            if await self.notify("Installed" if ok else "InstallationFailed"):
                self._save(None)  # else told at the next Accepted
                self.rebooted = False
                if ok and cp.security is not None:  # once, with the Installed that went out
                    cp.security.event("FirmwareUpdated", "firmware " + str(st.get("ver")))

    async def trial_watch(self):
        """A slot on trial that never reaches Accepted reboots (counted by lib/slots.py)."""
        st = self.state
        image = self.rebooted and st is not None and "ota" in st  # an OTA image on trial
        if slots.read(self.data).get("ok") and not image:
            return
        try:
            await wait_for_ms(self.cp.session.accepted.wait(), TRIAL_MS)
        except asyncio.TimeoutError:
            log.error("firmware", "new slot not accepted in time: rebooting")
            self.cp.reboot()


def _valid(st):
    try:
        return (st["v"] == _FORMAT and isinstance(st["loc"], str) and isinstance(st["at"], int)
                and isinstance(st["tries"], int) and isinstance(st["gap"], int)
                and st["stage"] in ("wait", "install", "reboot")
                and isinstance(st.get("req", 0), int) and isinstance(st.get("inst", 0), int))
    except (KeyError, TypeError):
        return False


def _safe(url):
    """The URL without a password, for the log."""
    at = url.find("@")
    s = url.find("://")
    return url if at < 0 or s < 0 else url[: s + 3] + "***" + url[at:]


def detach(cp):
    """Undo attach once nothing is under way (app: cp.rest; it also asks app._wanted: no
    slot on trial, no OTA image to confirm): True if done. Its loop is cancelled by the app."""
    fw = cp.firmware
    if fw is None or not fw.idle or fw.state is not None or fw.current is not None:
        return False
    cp.firmware = None
    if fw.on_accepted in cp.session.on_accepted:
        cp.session.on_accepted.remove(fw.on_accepted)
    from firmware.ocpp import router

    router.forget("slots")  # imported for this feature (app._wanted reads it and lets go)
    return True


def attach(cp):
    from firmware.ocpp import router

    router.offer(OPS)
    fw = Firmware(cp)
    cp.firmware = fw
    cp.session.on_accepted.append(fw.on_accepted)
    return [fw.run, fw.trial_watch()]
