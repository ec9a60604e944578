"""Security (OCPP 1.6 Security Whitepaper): security events, the security log, and (loaded
only when a request needs them) certificates and the charge point's key.

`cp.security.event(type, techInfo=None)` records an event: always in the security log on
flash (firmware/security/events.py), then a SecurityEventNotification. Critical events
(CRITICAL) are journaled first and delivered in order with guaranteed delivery: across
outages and power cuts, an event is never lost (at worst sent twice). The others are sent
once while connected (at most 8 wait in RAM, the oldest dropped when more come) and are
still in the log. A critical event the central system refuses with a CALLERROR 3 times is
dropped with log.error (it was received, and must not block the queue for ever).

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
from compat import asleep_ms, const, nap
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
_REFUSALS = const(3)
_RETRY_MS = const(5000)
_FALLBACK_TRIES = const(5)


class Security:
    def __init__(self, cp):
        from firmware.security.events import Queue, SecurityLog

        self.cp = cp
        self.dir = cp.data_dir.rstrip("/") + "/security"
        fs.makedirs(self.dir)
        self.log = SecurityLog(self.dir)
        self.queue = Queue(self.dir)
        self._loose = []
        self._wake = asyncio.Event()
        self._host = None
        self.sent = 0
        self.log_status = None  # (LogStatusNotification status, requestId) of a GetLog
        self._profile = cp.config.get("SecurityProfile")
        d = fs.read_json(self.dir + "/fallback.json", None)
        self._prev = d.get("prev") if isinstance(d, dict) else None  # profile to go back to
        self._fails = 0

    def event(self, kind, tech=None):
        ts = clock.rfc3339()
        self.log.add(ts, kind, tech)
        payload = {"type": kind, "timestamp": ts}
        if tech:
            payload["techInfo"] = tech[:255]
        log.info("security", kind, tech or "")
        if kind in CRITICAL:
            try:
                self.queue.append(payload)
            except OSError as e:
                log.error("security", "queue write failed, sent once only:", e)
                self._loose.append(payload)
        else:
            self._loose.append(payload)
        if len(self._loose) > _LOOSE_MAX:
            self._loose.pop(0)
        self._wake.set()

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

    async def run(self):
        from firmware.ocpp.rpc import CallError
        from firmware.ops import security_event_notification as sen

        session = self.cp.session
        refusals = 0
        while True:
            self._wake.clear()
            if not session.is_accepted():
                await session.accepted.wait()
            head = self.queue.peek()
            payload = head[1] if head is not None else (self._loose[0] if self._loose else None)
            if payload is None:
                await nap(self._wake, _RETRY_MS)
                continue
            try:
                await sen.send(session, payload)
                done = True
                refusals = 0
            except CallError as e:
                refusals += 1
                done = refusals >= _REFUSALS
                log.error("security", "%s refused: %r" % (payload["type"], e))
                refusals = 0 if done else refusals
            except Exception as e:  # no link, timeout: the head waits for the next try
                log.warning("security", "event not sent: %r" % (e,))
                await asleep_ms(_RETRY_MS)
                continue
            if not done:
                continue
            self.sent += 1
            if head is not None:
                try:
                    self.queue.ack(head[0])
                except OSError as e:
                    log.error("security", "ack write failed:", e)
                    await asleep_ms(_RETRY_MS)
            else:
                self._loose.pop(0)


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
    sec.event("StartupOfTheDevice", "firmware " + cp.info.get("fw", ""))
    # The first MemoryError after a boot (lib/log.py memory()) is the critical event
    # MemoryExhaustion; later ones are only counted (`oom`).
    log.on_memory = lambda: sec.event("MemoryExhaustion", "out of memory")
    return [sec.run]
