"""Station service (OCPP 1.6 Core, station-level): availability, StatusNotification, and the
state behind ChangeAvailability, Reset, UnlockConnector, ClearCache and DataTransfer (their
message modules are firmware/ops/<name>.py, which hold the work of ChangeAvailability and
UnlockConnector; a Reset's is firmware/station_reset.py, lent for it).

    st = cp.station            # set by attach(cp)
    st.available(1)            # False while inoperative or resetting (RemoteStart refuses)
    st.reset("Soft")           # False when one is under way (Reset, the go-e rst key)

Availability (§5.2): the wanted operative state of connector 0 (the station) and 1 is kept
in `<data_dir>/availability.json` ({"v": 1, "op": [bool, bool]}, atomic) and survives
reboots. Connector 0 sets both; connector 1 is operative only when both are. A change to
Inoperative while a transaction runs answers Scheduled and takes effect when it stops (a
power cut in between ends the transaction, so the next boot applies it). It drives
`cp.charger.set_available()`.

StatusNotification: the status of each connector (ops/status_notification.py) is checked
every 500 ms and on every charger or transaction event. A new status is sent once it has
held MinimumStatusDuration seconds; these bypass the wait: Faulted (the central system must
learn of a fault at once), the outcome of a ChangeAvailability (§5.2 asks for a
notification of the change), and the statuses sent after every Accepted BootNotification
(connector 0 and 1 with their current values, never a stale queued one: a status that
could not be sent is replaced by the newer one). The timestamp is when the status began
(when the clock was set then), else the time of sending.

Relies on (all optional, guarded): `cp.txn.active(connector_id)` (else `cp.tx`),
`cp.txn.stop(connector_id, reason)`, `cp.txn.subscribe(fn(event, tx))`,
`cp.txn.pending()`, `cp.reservation.reserved(connector_id)`.

Configuration keys:
BlinkRepeat: Times the status light blinks when asked to (no light on this wallbox; stored).
LightIntensity: Status light intensity in percent (no light on this wallbox; stored).
MinimumStatusDuration: Seconds a status must hold before StatusNotification is sent.
ResetRetries: Attempts at a Reset before giving up.
"""

import asyncio

import log
from compat import const, lend, nap, ticks_diff, ticks_ms
from firmware import clock
from firmware.ops import status_notification as sn

FORMAT = const(1)  # of FILE (written by firmware/ops/change_availability.py)
_POLL_MS = const(500)
FILE = "availability.json"


# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (the README table).
_O = const(8)  # OCPP: a standard key
KEYS = (
    ("BlinkRepeat", "i", _O, 3, 0, 100),
    ("LightIntensity", "i", _O, 100, 0, 100),
    ("MinimumStatusDuration", "i", _O, 0, 0, 3600),
    ("ResetRetries", "i", _O, 3, 0, 10),
)


def txn(cp, name):
    """cp.txn's attribute `name`, or None without a transaction service."""
    t = cp.txn
    return None if t is None else getattr(t, name)


class Station:
    def __init__(self, cp, now_ms=ticks_ms):
        # Its fields, the availability of the file (station_init.py, lent for the boot).
        lend("firmware.station_init").init(self, cp, now_ms)

    # -- availability ------------------------------------------------------------------
    def available(self, connector_id=1):
        """Operative right now (False while resetting); RemoteStart refuses otherwise."""
        if self.resetting or self.held or not 0 <= connector_id <= 1:
            return False
        return self.on[connector_id]

    def tx(self, connector_id=1):
        """A transaction runs on the connector (asked of cp.txn)."""
        txn = self.cp.txn
        return txn is not None and txn.active(connector_id) is not None

    def apply(self):
        # The wanted availability applied (firmware/ops/change_availability.py changes it).
        op = self.op
        self.on = [op[0], op[0] and op[1]]
        self.sched = False
        self.cp.charger.set_available(self.available(1))
        self._urgent = [True, True]
        self._wake.set()

    def hold(self, on):
        """No new session while `on` (a firmware installation waits), shown as Unavailable;
        not persisted, and the wanted availability comes back with hold(False)."""
        self.held = bool(on)
        self.cp.charger.set_available(self.available(1))
        self._urgent = [True, True]
        self._wake.set()

    # -- status --------------------------------------------------------------------------
    def status(self, connector_id):
        """The current status tuple of connector 0 or 1 (see ops/status_notification.py)."""
        ch = self.cp.charger
        if connector_id == 0:
            return sn.station(ch, self.available(0), self.reset_failed)
        res = None if self.cp.reservation is None else self.cp.reservation.reserved
        return sn.connector(
            ch,
            self.available(1),
            self.tx(1),
            self._finishing,
            self._ev_left,
            bool(res(1)) if res is not None else False,
            self.cp.txn is not None,
        )

    def _on_charger(self, event, data):
        # Called from the charger's safety tick: flags only.
        if event == "plugged":
            self._ev_left = False
        elif event == "unplugged":
            self._finishing = False
            if self._had_tx:
                self._ev_left = True
        self._wake.set()

    def _on_txn(self, event, tx):
        self._wake.set()

    def _track(self):
        tx = self.tx(1)
        if tx and not self._had_tx:
            self._finishing = False
            self._ev_left = False
        elif self._had_tx and not tx:
            self._finishing = self.cp.charger.plugged
            self._ev_left = False
        self._had_tx = tx
        if self.sched and not tx:
            self.apply()

    def _candidate(self, cid, now):
        cur = self.status(cid)
        c = self._cand[cid]
        if c is None or c[0] != cur:
            c = (cur, now, clock.now() if clock.is_set() else None)
            self._cand[cid] = c
        return c

    def _due(self, cid, c, now):
        if self._sent[cid] == c[0]:
            self._urgent[cid] = False
            return False
        if c[0][0] == "Faulted" or self._urgent[cid]:
            return True
        msd = self.cp.config.get("MinimumStatusDuration") or 0
        return ticks_diff(now, c[1]) >= msd * 1000

    async def _send(self, cid, status, t, force=False):
        async with self._lock:
            if not force and self._sent[cid] == status:
                return True
            p = sn.payload(cid, status, clock.rfc3339(t))
            try:
                await sn.send(self.cp, p)
            except Exception as e:  # not accepted, lost link, timeout: current one goes later
                log.warning("station", "StatusNotification not sent: %r" % (e,))
                return False
            self._sent[cid] = status
            self._urgent[cid] = False
            return True

    async def announce(self, cp=None):
        """on_accepted hook: the current status of connector 0 and 1, at once."""
        session = self.cp.session
        self._track()
        self._sent = [None, None]
        now = self._now()
        for cid in (0, 1):
            c = self._candidate(cid, now)
            await self._send(cid, c[0], None, force=True)
        self._conn = session.accepted_ms

    async def step(self):
        """One look at the statuses; sends the ones that are due."""
        self._track()
        now = self._now()
        s = self.cp.session
        online = self._conn is not None and self._conn == s.accepted_ms and s.is_accepted()
        for cid in (0, 1):
            c = self._candidate(cid, now)
            if online and self._due(cid, c, now):
                await self._send(cid, c[0], c[2])

    async def run(self):
        while True:
            await nap(self._wake, _POLL_MS)
            self._wake.clear()
            try:
                await self.step()
            except Exception as e:  # keep reporting whatever happens
                log.error("station", "status: %r" % (e,))

    # -- Reset -------------------------------------------------------------------------
    def reset(self, kind):
        """Reset "Soft" or "Hard" (after the answer is sent). False if one is under way."""
        if self.reset_task is not None:
            return False
        self.resetting = True
        self.cp.charger.set_available(False)  # no new session; Soft: the car is asked to stop
        self._wake.set()
        # The work (firmware/station_reset.py) is lent for it: the task holds it until the
        # reboot.
        self.reset_task = asyncio.create_task(lend("firmware.station_reset").run(self, kind))
        return True

OPS = ("change_availability", "data_transfer", "reset", "unlock_connector")


def attach(cp, now_ms=ticks_ms):
    from firmware.ocpp import router

    router.offer(OPS)
    st = Station(cp, now_ms)
    cp.station = st
    cp.charger.subscribe(st._on_charger)
    cp.on_tx(st._on_txn)
    # First on every Accepted boot: §4.9 wants the statuses right after BootNotification.
    cp.session.on_accepted.insert(0, st.announce)
    return [st.run]
