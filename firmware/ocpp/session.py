"""Connection supervisor: the one task that owns the OCPP websocket.

Per connection it runs three tasks that start and stop together (a failure of any one
tears down all three, then the supervisor reconnects):
- reader: every incoming frame goes to the RPC layer;
- keepalive: a websocket ping every WebSocketPingInterval; when nothing at all (pong
  included) has arrived for 1.5 intervals the link is declared dead, so a dead link is
  noticed within two intervals and never shown as connected;
- main: BootNotification until Accepted (Pending/Rejected retried after `interval`), then
  the on-accepted hooks (StatusNotification, journal delivery…), then Heartbeat every
  HeartbeatInterval. A BootNotification sent on TriggerMessage and answered Accepted ends
  Pending (or Rejected) at once, as the scheduled one would (`boot_answer`): that is how
  central systems provision a charger (Pending, configure, trigger, accept).

Reconnect: jittered exponential backoff, 1 s doubling to a 60 s cap, each wait drawn
uniformly from [b/2, b]; reset once a connection reaches Accepted. A change of `ocppe`,
`ocppu`, a TLS key or the AuthorizationKey closes the link and connects anew at once.

Liveness: the supervisor's loop and the main task beat (`cp.beat("session")`) at every step,
at least every ~30 s plus the waits on the one RPC lock; app._watch restarts a session that
stops beating (a hang: a stream that never drains, a lock never released), and the
teardown of the connection runs then too.
"""

import asyncio
import random

import log
import ws as wsmod
from compat import asleep_ms, const, lend, nap, ticks_diff, ticks_ms, uptime_ms, wait_for_ms
from firmware.config import url_host
from firmware.ocpp import router
from firmware.ocpp.rpc import RPC
from firmware.ops import heartbeat

_BACKOFF_MIN_MS = const(1000)
_BACKOFF_MAX_MS = const(60000)
_CALL_TIMEOUT_MS = const(30000)
_HANDSHAKE_TIMEOUT_MS = const(15000)
_MAX_MESSAGE = const(16384)
_IDLE_MS = const(10000)
# A BootNotification answered Pending/Rejected with interval 0, or not answered, is sent
# again after this (firmware/ops/boot_notification.py, lent for each: one per connection).
BOOT_RETRY_S = const(60)

RECONNECT_KEYS = (
    "ocppe", "ocppu", "ocppg", "ocppcn", "ocppss", "ocppcc", "ocppck", "ocppsc",
    "AuthorizationKey", "SecurityProfile",
)


class NotAccepted(Exception):
    pass


def identity(url):
    """The charge point identity: the last segment of the endpoint URL's path."""
    return url.rstrip("/").rsplit("/", 1)[-1]


class Session:
    def __init__(self, cp):
        self.cp = cp
        self._running = False
        self.connected_ms = None
        self.accepted_ms = None
        self.rpc = None
        self.boot_status = None
        self.accepted = asyncio.Event()
        self.on_accepted = []  # async fn(cp) run after every Accepted BootNotification
        self.on_attempt = []  # fn(reached) after every connection: True if it was Accepted
        self._ws = None
        self._kick = asyncio.Event()
        self._booted = asyncio.Event()  # a triggered BootNotification was Accepted
        self._down = None
        self._fail_kind = None
        self.profile = None  # SecurityProfile the current link was opened with
        cp.config.subscribe(self._on_config)

    @property
    def started(self):
        """`ocpps`: the supervisor runs and OCPP is enabled with a URL (from the moment
        the setting changes, not when the old connection has finished closing)."""
        c = self.cp.config
        return self._running and bool(c.get("ocppe")) and bool(c.get("ocppu"))

    @property
    def connected(self):
        return self._ws is not None and not self._ws.closed

    def is_accepted(self):
        return self.accepted_ms is not None and self.connected

    async def call(self, action, payload):
        """A CALL on the current connection; only after BootNotification was Accepted."""
        rpc = self.rpc
        if rpc is None or self.accepted_ms is None:
            raise NotAccepted(action)
        return await rpc.call(action, payload)

    def boot_answer(self, rpc, status):
        """A BootNotification sent outside the boot loop (TriggerMessage) got `status` on
        `rpc`: Accepted ends Pending at once, as any Accepted BootNotification does."""
        if status == "Accepted" and rpc is self.rpc and self.accepted_ms is None:
            self._booted.set()

    def _on_config(self, keys):
        for k in RECONNECT_KEYS:
            if k in keys:
                self.reconnect("settings changed (%s)" % k)
                return

    def reconnect(self, why):
        """Close the link (if up) and connect anew at once; when a CALL made the change
        (ChangeConfiguration of AuthorizationKey, SecurityProfile…), once it is answered, or
        the central system never gets the answer."""
        log.info("ocpp", why + ": reconnecting")
        self._kick.set()
        down, rpc = self._down, self.rpc
        if down is None:
            return
        if rpc is not None and rpc.answering:
            rpc.then = down.set  # this link's, never the next one's
        else:
            down.set()

    def _auth(self, url):
        """HTTP Basic credentials, only for the central system the key was given for: after
        a change of the URL's host (or port) the key is withheld until it is set again."""
        c = self.cp.config.get
        key = c("AuthorizationKey")
        if not key or c("SecurityProfile") == 3:  # profile 3: the client certificate only
            return None
        if url_host(url) != c("AuthorizationKeyHost"):
            log.warning("ocpp", "AuthorizationKey withheld: set for another central system")
            return None
        return (identity(url), key)

    def _tls(self, url):
        return self.tls() if url.startswith("wss:") else None

    def tls(self):
        """The TLS settings of the OCPP link (ws.ssl_context), also used for https transfers."""
        c = self.cp.config.get
        strict = c("SecurityProfile") >= 2  # the Whitepaper: TLS always verifies the server
        cadata = c("ocppsc")
        cert = c("ocppcc") or None
        key = c("ocppck") or None
        if self.cp.security is not None:  # installed CentralSystemRootCertificates
            from firmware.security import certs

            cadata += certs.trusted_pem(self.cp)
            pair = certs.client_pair(self.cp)  # from CertificateSigned: wins over ocppcc
            if pair is not None:
                cert, key = pair
        return {
            "cadata": cadata or None,
            "use_global_ca": bool(c("ocppg")),
            "check_hostname": strict or not c("ocppcn"),
            "verify": strict or not c("ocppss"),
            "cert": cert,
            "key": key,
            "ca_file": self.cp.data_dir + "/ca.pem",
        }

    def _failed(self, url, e):
        """A security event for a refused login or server certificate, once per streak."""
        text = repr(e)
        kind = None
        if "HTTP 401" in text:
            kind = "FailedToAuthenticateAtCentralSystem"
        elif url.startswith("wss:") and ("CERT" in text.upper() or "-9984" in text):
            kind = "InvalidCentralSystemCertificate"  # -9984: mbedTLS X509 verify failed
        if kind != self._fail_kind:
            self._fail_kind = kind
            if kind is not None and getattr(self.cp, "security", None) is not None:
                self.cp.security.event(kind, text)

    async def _sleep_or_kick(self, ms):
        await nap(self._kick, ms)

    def _beat(self):
        self.cp.beat("session")  # liveness: app._watch restarts a session silent too long

    async def run(self):
        backoff = _BACKOFF_MIN_MS
        cfg = self.cp.config
        while True:
            self._beat()
            url = cfg.get("ocppu")
            self._running = True
            if not cfg.get("ocppe") or not url:
                self._kick.clear()
                await self._sleep_or_kick(_IDLE_MS)  # steps: beats while OCPP is off
                continue
            self._kick.clear()
            self.profile = cfg.get("SecurityProfile")
            reached = await self._connection(url)
            if reached:
                backoff = _BACKOFF_MIN_MS
            if self._kick.is_set():
                continue
            for fn in self.on_attempt:
                fn(reached)
            wait = backoff // 2 + random.randint(0, backoff // 2)
            log.info("ocpp", "reconnecting in %d ms" % wait)
            self._beat()
            await self._sleep_or_kick(wait)
            backoff = min(backoff * 2, _BACKOFF_MAX_MS)

    async def _connection(self, url):
        """One connection from connect to teardown; True when it reached Accepted."""
        try:
            ws = await wsmod.connect(
                url,
                auth=self._auth(url),
                tls=self._tls(url),
                timeout_ms=_HANDSHAKE_TIMEOUT_MS,
                max_size=_MAX_MESSAGE,
            )
        except Exception as e:  # every failure here means: try again later
            log.error("ocpp", "connect to %s failed: %r" % (url, e))
            self._failed(url, e)
            return False
        # Long frames are kept on flash while they are parsed (lib/wsbig.py).
        ws.spool = self.cp.data_dir.rstrip("/") + "/frame.tmp"
        ws.room = router.room
        if self._kick.is_set():  # the settings changed while connecting: they win
            try:
                await wait_for_ms(ws.close(), 2000)
            except Exception:
                pass
            return False
        log.info("ocpp", "connected to", url)
        self._fail_kind = None
        self._ws = ws
        self.connected_ms = uptime_ms()
        rpc = RPC(ws.send, self.cp, timeout_ms=_CALL_TIMEOUT_MS, send_json=ws.send_json)
        self.rpc = rpc
        down = self._down = asyncio.Event()
        tasks = [
            asyncio.create_task(self._guard(self._reader(ws, rpc), down, "reader")),
            asyncio.create_task(self._guard(self._keepalive(ws), down, "keepalive")),
            asyncio.create_task(self._guard(self._main(rpc), down, "main")),
        ]
        reached = False
        try:
            await down.wait()
            reached = self.accepted_ms is not None
        finally:  # also when the supervisor itself is cancelled (a restart by app._watch)
            for t in tasks:
                t.cancel()
            self.rpc = None
            self._down = None
            self.accepted_ms = None
            self.accepted.clear()
            self.connected_ms = None
            self._ws = None
            rpc.close()
            try:
                await wait_for_ms(ws.close(), 2000)
            except (Exception, asyncio.CancelledError):  # a dead link fails in many ways
                pass
            log.info("ocpp", "disconnected")
        return reached

    async def _guard(self, coro, down, name):
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except wsmod.ConnectionClosed as e:
            log.error("ocpp", "connection closed (%s): %r" % (name, e))
        except Exception as e:
            log.error("ocpp", "%s failed: %r" % (name, e))
        finally:
            down.set()

    async def _reader(self, ws, rpc):
        while True:
            box = []  # a text frame: on_frame takes it out, it goes once parsed
            try:
                msg = await ws.recv(raw=True, box=box)  # (never through this frame)
            except wsmod.TooLarge as e:  # no heap for it: answered, the link stays up
                log.memory("ocpp", "frame of %d bytes" % e.size)
                await rpc.on_oom(e.head)
                continue
            if msg is not None:
                log.warning("ocpp", "binary frame ignored (%d bytes)" % len(msg))
            else:
                try:
                    await rpc.on_frame(box, ws.cut)
                except MemoryError:
                    # Not even the answer could be made (nothing of it was sent: a message
                    # cut short closes the link instead). Counted; the link stays up, as a
                    # reconnect (TLS) needs more than the next frame does; the CALL gets
                    # its InternalError if there is room for it now.
                    log.memory("ocpp", "answer")
                    msg = None
                    try:
                        await rpc.last_word()
                    except MemoryError:
                        pass
                msg = None

    async def _keepalive(self, ws):
        # Checked every second, so a changed WebSocketPingInterval applies at once. The link
        # is dead when nothing (pong included) arrived for 1.5 intervals: with a ping every
        # interval that is noticed within two intervals of the last frame.
        cfg = self.cp.config
        last_ping = ticks_ms()
        while True:
            await asleep_ms(1000)
            interval = cfg.get("WebSocketPingInterval") * 1000
            if interval <= 0:
                continue
            now = ticks_ms()
            if ticks_diff(now, ws.last_rx_ms) > interval + interval // 2:
                log.error("ocpp", "no traffic for %d ms: link dead"
                          % ticks_diff(now, ws.last_rx_ms))
                return
            if ticks_diff(now, last_ping) >= interval:
                last_ping = now
                await ws.ping()

    async def _boot_wait(self, seconds):
        """Wait until the next BootNotification is due; True as soon as a triggered one was
        Accepted meanwhile (1 s steps: the interval may be any int the central system sent)."""
        for _ in range(max(1, seconds)):
            self._beat()
            try:
                await wait_for_ms(self._booted.wait(), 1000)
                return True
            except asyncio.TimeoutError:
                pass
        return False

    async def _main(self, rpc):
        cp = self.cp
        self._booted.clear()
        while True:
            self._beat()
            try:
                status, wait_s = await lend("firmware.ops.boot_notification").send(cp, rpc)
            except Exception as e:
                log.error("ocpp", "BootNotification failed: %r" % (e,))
                status, wait_s = None, BOOT_RETRY_S
            self.boot_status = status
            if status == "Accepted":
                break
            log.info("ocpp", "BootNotification %s, retry in %d s" % (status, wait_s))
            if await self._boot_wait(wait_s):
                self.boot_status = "Accepted"
                break
        self.accepted_ms = uptime_ms()
        self.accepted.set()
        log.info("ocpp", "accepted by the central system")
        for hook in self.on_accepted:
            self._beat()
            try:
                await hook(cp)
            except Exception as e:
                log.error("ocpp", "on-accepted hook failed: %r" % (e,))
        last = ticks_ms()
        while True:
            self._beat()
            await asleep_ms(1000)
            interval = cp.config.get("HeartbeatInterval")
            if interval > 0 and ticks_diff(ticks_ms(), last) >= interval * 1000:
                last = ticks_ms()
                try:
                    await heartbeat.send(cp, rpc)
                except Exception as e:
                    log.warning("ocpp", "Heartbeat failed: %r" % (e,))


class SessionKeys:
    """API provider for the read-only OCPP status keys of CONTRACT.md §2."""

    _KEYS = ("ocpps", "ocppc", "ocppca", "ocppa", "ocppaa", "ocpple", "ocpplea", "rbt", "oom")

    def __init__(self, session):
        self.s = session

    def status(self, out):
        s = self.s
        connected = s.connected
        out["ocpps"] = s.started
        out["ocppc"] = connected
        out["ocppca"] = s.connected_ms if connected else None
        out["ocppa"] = connected and s.accepted_ms is not None
        out["ocppaa"] = s.accepted_ms if out["ocppa"] else None
        out["ocpple"] = log.last_error
        out["ocpplea"] = log.last_error_ms
        out["rbt"] = uptime_ms()
        out["oom"] = log.oom  # MemoryErrors survived since boot (see lib/log.py memory())

    def owns(self, key):
        return key in self._KEYS

    def check(self, key, value):
        return "read-only"

    def apply(self, changes):
        pass
