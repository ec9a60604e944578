"""Security (OCPP 1.6 Security Whitepaper): security events, the security log, and (loaded
only when a request needs them) certificates and the charge point's key.

`cp.security.event(type, techInfo=None)` records an event: always in the security log on
flash (firmware/security/events.py), then a SecurityEventNotification. Critical events
(CRITICAL) are journaled first and delivered in order with guaranteed delivery: across
outages and power cuts, an event is never lost (at worst sent twice). The others are sent
once while connected (at most 8 wait in RAM, the oldest dropped when more come) and are
still in the log. A critical event the central system refuses with a CALLERROR 3 times is
dropped with log.error (it was received, and must not block the queue for ever).

Heap: only the small part here stays loaded (the fallback state below, `sent`,
`log_status`, the events waiting in RAM and the hooks). The log, the queue and their
delivery (firmware/security/events.py `deliver`, SecurityEventNotification's module) load
when an event is raised (StartupOfTheDevice at every boot, so what the queue holds from
before an outage or a power cut goes first), and go again with the delivery task (`run`)
once the queue and the RAM list are empty, between two sends: a charger pays for them a
few minutes a day. Short of memory for them even after router.shed(), an event is not
logged nor journaled: log.error, and it waits in RAM to be sent once; the task loads them
again (app._revive starts it anew while it fails).

Events raised here: StartupOfTheDevice (every start), ResetOrReboot (cp.reboot), and
ReconfigurationOfSecurityParameters when SecurityProfile, the AuthorizationKey, a TLS key or
the central system's host changes (a change of host withholds the AuthorizationKey, see
firmware/ocpp/session.py); the session raises FailedToAuthenticateAtCentralSystem (HTTP 401)
and InvalidCentralSystemCertificate (TLS verification failed), once per failing streak.
The whitepaper lists ReconfigurationOfSecurityParameters as not critical; it is journaled
here anyway, because a moved central system is what an attacker would do.

SecurityProfile fallback: a raised profile stays on trial (security/fallback.json holds the
previous one) until a connection reaches Accepted; _FALLBACK_TRIES attempts in a row that
do not put the previous profile back (config origin "fallback", the only way down) with a
ReconfigurationOfSecurityParameters event. The charge point certificate (SignCertificate,
CertificateSigned): firmware/security/identity.py; GetLog: firmware/security/getlog.py.

Configuration keys:
AdditionalRootCertificateCheck: Only one CentralSystemRootCertificate (plus fallback).
AuthorizationKey: HTTP Basic password for profiles 1 and 2 (write-only, 16-40 chars).
CertificateSignedMaxChainSize: Maximum bytes of a CertificateSigned chain.
CertificateStoreMaxLength: Maximum installed root certificates.
CpoName: Charge point operator name, checked against the client certificate.
SecurityProfile: 0 none, 1 Basic auth, 2 TLS + Basic auth, 3 TLS + client certificate.
"""

import asyncio

import fs
import log
from compat import const
from firmware import clock

_O = const(8)  # OCPP: a standard key
_OR = const(9)  # OCPP | RO
_OS = const(10)  # OCPP | SECRET
KEYS = (
    ("AdditionalRootCertificateCheck", "b", _OR, False, None, None),
    ("AuthorizationKey", "s", _OS, "", 16, 40),
    # Internal: host[:port] of the URL the AuthorizationKey was set for (no interface).
    ("AuthorizationKeyHost", "s", 0, "", 0, 256),
    ("CertificateSignedMaxChainSize", "i", _OR, 5600, None, None),
    ("CertificateStoreMaxLength", "i", _OR, 4, None, None),
    ("CpoName", "s", _O, "", 0, 64),
    ("SecurityProfile", "i", _O, 0, 0, 3),
)
OPS = ("install_certificate", "delete_certificate", "get_installed_certificate_ids",
       "certificate_signed", "extended_trigger_message", "get_log")

CRITICAL = (
    "FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot",
    "SecurityLogWasCleared", "MemoryExhaustion", "TamperDetectionActivated",
    "FailedToAuthenticateAtCentralSystem", "CentralSystemFailedToAuthenticate",
    "InvalidCentralSystemCertificate", "InvalidChargePointCertificate",
    "InvalidFirmwareSigningCertificate", "InvalidFirmwareSignature",
    "ReconfigurationOfSecurityParameters",
)
_SECURITY_KEYS = ("SecurityProfile", "AuthorizationKey", "ocppss", "ocppcn", "ocppsc",
                  "ocppcc", "ocppck", "ocppg")
_LOOSE_MAX = const(8)
_FALLBACK_TRIES = const(5)
# Loaded only while an event waits to be sent (Security._load, run).
_EVENTS = "firmware.security.events"
_SEN = "firmware.ops.security_event_notification"


class Security:
    def __init__(self, cp):
        self.cp = cp
        self.dir = cp.data_dir.rstrip("/") + "/security"
        fs.makedirs(self.dir)
        # events.SecurityLog and events.Queue, only while there is work (_load, run).
        self.log = None
        self.queue = None
        self._loose = []  # events to send once, not journaled (at most _LOOSE_MAX)
        self._running = False  # the delivery task (run) started and not yet ended idle
        self._host = None
        self.sent = 0
        self.log_status = None  # (LogStatusNotification status, requestId) of a GetLog
        self._profile = cp.config.get("SecurityProfile")
        d = fs.read_json(self.dir + "/fallback.json", None)
        self._prev = d.get("prev") if isinstance(d, dict) else None  # profile to go back to
        self._fails = 0

    def event(self, kind, tech=None):
        ts = clock.rfc3339()
        try:
            self._load()
        except MemoryError:  # even after router.shed(): the event waits in RAM
            log.oom += 1
            log.error("security", "out of memory:", kind, "not logged, sent once only")
        q = self.queue
        if q is not None:
            self.log.add(ts, kind, tech)
        payload = {"type": kind, "timestamp": ts}
        if tech:
            payload["techInfo"] = tech[:255]
        log.info("security", kind, tech or "")
        if kind in CRITICAL and q is not None:
            try:
                q.append(payload)  # on flash before this returns
                payload = None
            except OSError as e:
                log.error("security", "queue write failed, sent once only:", e)
        if payload is not None:
            self._loose.append(payload)
        if len(self._loose) > _LOOSE_MAX:
            self._loose.pop(0)
        self._deliver()

    def _load(self):
        """firmware/security/events.py, with self.log and self.queue: loaded by an event or
        the delivery task, let go by that task once nothing is left to send (run)."""
        from firmware.ocpp import router

        # An import: tried again after router.shed() when the heap is short (router.roomy).
        mod = router.roomy(__import__, _EVENTS, None, None, ("deliver",))
        if self.queue is None:
            q = mod.Queue(self.dir)  # (the seq and ack from flash)
            self.log = mod.SecurityLog(self.dir)
            self.queue = q
        return mod

    def _deliver(self):
        # The delivery task, unless it runs (or app._revive starts it again after a
        # failure). Short of memory even for that, on_accepted tries again.
        if self._running:
            return
        cp = self.cp
        try:
            t = asyncio.create_task(self.run())
            self._running = True
            cp.makers[t] = self.run  # app._revive starts it again when it fails
            cp.tasks.append(t)
        except MemoryError:
            log.oom += 1
            log.error("security", "out of memory: delivery not started")

    async def run(self):
        """The delivery task: the queue's events in order, then the ones in RAM
        (firmware/security/events.py deliver); it ends once none is left, and the log, the
        queue and their modules go with it. The next event starts it again."""
        await self._load().deliver(self)
        # Nothing left, and no CALL in flight: deliver returns only between two sends.
        from firmware.ocpp import router

        self.log = self.queue = None
        self._running = False
        cp = self.cp
        t = asyncio.current_task()
        cp.makers.pop(t, None)  # ended for good: app._revive must not start it again
        if t in cp.tasks:
            cp.tasks.remove(t)
        router.forget(_EVENTS, _SEN)

    def has_client_cert(self):
        """A charge point certificate installed by CertificateSigned (security/cp.pem)."""
        import os

        try:
            return os.stat(self.dir + "/cp.pem")[6] > 0
        except OSError:
            return False

    # -- SecurityProfile fallback (README "Security profiles") ------------------------------
    def _profile_changed(self):
        new = self.cp.config.get("SecurityProfile")
        if new > self._profile:
            self._prev = self._profile
            try:
                fs.write_json(self.dir + "/fallback.json", {"prev": self._prev})
            except OSError as e:
                log.error("security", "fallback not kept:", e)
            self._fails = 0
        self._profile = new

    def _confirm(self):
        if self._prev is not None:
            log.info("security", "SecurityProfile %d confirmed" % self._profile)
            self._prev = None
            try:
                import os

                os.remove(self.dir + "/fallback.json")
            except OSError:
                pass

    async def on_accepted(self, cp):
        # The hooks run after Accepted, one after another: a raise that arrived meanwhile
        # must not be confirmed by the link the old profile opened.
        if cp.session.profile == self._profile:
            self._confirm()
        if not self._running and (self._loose or self.queue is not None):
            self._deliver()  # it could not be started (out of memory): again

    def on_attempt(self, reached):
        """After a connection attempt: the raised profile falls back after _FALLBACK_TRIES
        attempts in a row that did not reach Accepted."""
        if self._prev is None or reached:
            return
        self._fails += 1
        if self._fails < _FALLBACK_TRIES:
            return
        prev, cur = self._prev, self._profile
        errors = self.cp.config.update({"SecurityProfile": prev}, "fallback")
        if errors:
            log.error("security", "fallback to profile %d impossible: %r" % (prev, errors))
            self._prev = None
            return
        self._confirm()
        self.event("ReconfigurationOfSecurityParameters",
                   "SecurityProfile %d failed %d times: back to %d"
                   % (cur, _FALLBACK_TRIES, prev))

    def on_config(self, changed):
        from firmware.config import url_host

        c = self.cp.config.get
        if "SecurityProfile" in changed:
            self._profile_changed()
        names = [k for k in _SECURITY_KEYS if k in changed]
        if "ocppu" in changed:
            host = url_host(c("ocppu"))
            if host != self._host and c("AuthorizationKey"):
                if host != c("AuthorizationKeyHost"):
                    names.append("ocppu: AuthorizationKey withheld from " + host)
            self._host = host
        if names:
            self.event("ReconfigurationOfSecurityParameters", ",".join(names))


def attach(cp):
    from firmware.config import url_host
    from firmware.ocpp import router

    router.offer(OPS)
    sec = Security(cp)
    sec._host = url_host(cp.config.get("ocppu"))
    cp.security = sec
    cp.config.subscribe(sec.on_config)
    cp.config.client_cert = sec.has_client_cert
    cp.session.on_accepted.append(sec.on_accepted)
    cp.session.on_attempt.append(sec.on_attempt)
    # Loads the log and the queue and starts their delivery: what the queue holds from
    # before (an outage, a power cut) goes first, then this.
    sec.event("StartupOfTheDevice", "firmware " + cp.info.get("fw", ""))
    # The first MemoryError after a boot (lib/log.py memory()) is the critical event
    # MemoryExhaustion; later ones are only counted (`oom`).
    log.on_memory = lambda: sec.event("MemoryExhaustion", "out of memory")
    return []  # the delivery task is started by event() (run)
