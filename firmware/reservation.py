"""Reservation profile (OCPP 1.6 §5.13 ReserveNow, §5.1 CancelReservation): one reservation
at most, kept on flash; its message modules are firmware/ops/reserve_now.py and
firmware/ops/cancel_reservation.py (loaded on their first CALL).

    rsv = cp.reservation                   # set by attach(cp)
    rsv.reserved(1)                        # a reservation holds connector 1 (StatusNotification)
    ok, rid = rsv.admit(1, id_tag, info)   # may id_tag start; rid: the reservationId to send
    rsv.used(rid)                          # its StartTransaction is journaled: it ends

One connector: a reservation for connector 0 (ReserveConnectorZeroSupported is true) reserves
the station, whose one connector is then held exactly as by a reservation for connector 1
(§5.13: one connector must stay available to the idTag); connector 0's StatusNotification
stays Available, connector 1's shows Reserved while no car is plugged.

While a reservation holds the connector only its idTag, or an idTag whose parentIdTag (from
the idTagInfo of the authorization, else the local list or the cache) equals the
reservation's parentIdTag, may start a transaction (firmware/transactions/service.py asks
`admit` after the authorization and again when the transaction begins); any other card,
RemoteStartTransaction or the dummy card `ocppd` starts nothing, and the car is not offered
power (`frc=2`, the owner's local override, still charges, without a transaction).

It ends when (§5.13): a transaction it admitted is journaled (StartTransaction carries the
reservationId); expiryDate is reached (checked every second, so the StatusNotification
Available follows within about a second, also after a reboot); CancelReservation; the
charge point or the connector turns Faulted or Unavailable (not during a Reset, which
reboots and finds the reservation on flash again).

Flash: `<data_dir>/reservation.json` {"v": 1, "id", "c": connectorId, "tag": idTag, "p":
parentIdTag or null, "exp": expiry (Unix s), "t0": when it was made (Unix s)}, written
atomically, removed when the reservation ends. A corrupt file means no reservation (log.error)
and is removed. A power cut between the journaled StartTransaction and the removal of the
file would leave a used reservation standing: at boot the watcher asks the journal whether a
StartTransaction made since `t0` carries its id, and ends it if so.

Heap: a dormant feature (firmware/app.py DORMANT): loaded at boot only when a reservation is
on flash, else by the first ReserveNow; until then `cp.reservation` is None (no reservation)
and the API key `rsv` is null.

API status key `rsv`: null, or {"id", "connectorId", "idTag", "parentIdTag" (when set),
"expiryDate"} of the active reservation.

Its configuration key is a row of firmware/keys.py (a dormant feature of firmware/app.py).
"""

import asyncio
import os

import fs
import log
from compat import asleep_ms, const
from firmware import clock

FILE = "reservation.json"
OPS = ("reserve_now", "cancel_reservation")
_FORMAT = const(1)
_STEP_MS = const(1000)
_TAG = "rsv"


def _valid(r):
    try:
        p = r.get("p")
        return (isinstance(r["id"], int) and r["c"] in (0, 1) and isinstance(r["tag"], str)
                and isinstance(r["exp"], int) and isinstance(r["t0"], int)
                and (p is None or isinstance(p, str)))
    except Exception:  # noqa: BLE001 - not a dict, a key missing: unreadable
        return False


def blocked(cp):
    """"Faulted" or "Unavailable" when the charge point or connector 1 reports so in its
    StatusNotification (the station decides), else None."""
    st = cp.station
    if st is None:
        return "Faulted" if cp.charger.status == "faulted" else None
    for c in (0, 1):
        s = st.status(c)[0]
        if s == "Faulted" or s == "Unavailable":
            return s
    return None


class Reservation:
    def __init__(self, cp):
        self.cp = cp
        self.path = cp.data_dir.rstrip("/") + "/" + FILE
        self._task = None
        r = fs.read_json(self.path, None)  # corrupt: log.error there, None here
        if not _valid(r):
            if r is not None:
                log.error(_TAG, "reservation file unreadable, no reservation")
            r = None
            self._remove()  # a corrupt file, never read again (missing: nothing happens)
        self.r = r

    def _remove(self):
        try:
            os.remove(self.path)
        except OSError:
            return False
        return True

    # ---- asked by the station and the transaction service

    def reserved(self, connector):
        """True while the reservation holds `connector` (the one connector 1, or the
        station 0 when it was made for 0)."""
        r = self.r
        return r is not None and (connector == 1 or connector == r["c"])

    def admit(self, connector, id_tag, info=None):
        """(may `id_tag` start on `connector`, the reservationId its StartTransaction carries
        or None). `info`: its idTagInfo from the authorization, for the parentIdTag."""
        r = self.r
        if r is not None and clock.now() >= r["exp"]:
            self.end("expired")
            r = None
        if r is None or connector != 1:
            return True, None
        if id_tag == r["tag"]:
            return True, r["id"]
        want = r.get("p")
        if want is None:
            return False, None
        got = info.get("parentIdTag") if info else None
        if got is None:
            from firmware.authorization.service import auth  # loaded if it was not

            known = auth(self.cp).known(id_tag)
            got = known.get("parentIdTag") if known else None
        return (True, r["id"]) if got == want else (False, None)

    def used(self, reservation_id):
        """The StartTransaction carrying `reservation_id` is journaled: the reservation ends."""
        r = self.r
        if r is not None and r["id"] == reservation_id:
            self.end("used by a transaction")

    # ---- changed by the message modules

    def set(self, r):
        """Make `r` (the file's fields) the reservation, on flash first (raises OSError)."""
        r["v"] = _FORMAT
        fs.write_json(self.path, r)
        self.r = r
        if self._task is None:
            self._task = asyncio.create_task(self.run())

    def end(self, why):
        r = self.r
        if r is None:
            return
        self.r = None
        if not self._remove():
            log.error(_TAG, "could not remove", self.path)
        log.info(_TAG, "reservation", r["id"], "ended:", why)

    # ---- the watcher: expiry, Faulted, Unavailable (only while a reservation exists)

    async def run(self, boot=False):
        try:
            while self.r is not None:
                try:
                    if boot:  # restored from flash: was it used just before a power cut?
                        boot = False
                        r = self.r
                        txn = self.cp.txn
                        if txn is not None and txn.journal.reservation_used(r["id"], r["t0"]):
                            self.end("used by a transaction before the power cut")
                    self.step()
                except Exception as e:  # noqa: BLE001 - keep watching
                    log.error(_TAG, "watch: %r" % (e,))
                await asleep_ms(_STEP_MS)
        finally:
            self._task = None

    def step(self):
        r = self.r
        if r is None:
            return
        if clock.now() >= r["exp"]:
            self.end("expired")
            return
        s = blocked(self.cp)
        st = self.cp.station
        if s is not None and not (st is not None and st.resetting):
            self.end(s)

    # ---- local API provider (firmware/api.py): `rsv`, read-only

    def status(self, out):
        r = self.r
        if r is None:
            out["rsv"] = None
            return
        v = {"id": r["id"], "connectorId": r["c"], "idTag": r["tag"],
             "expiryDate": clock.rfc3339(r["exp"])}
        if r.get("p") is not None:
            v["parentIdTag"] = r["p"]
        out["rsv"] = v

    def owns(self, key):
        return key == "rsv"

    def check(self, key, value):
        return "read-only"

    def apply(self, changes):
        return None


def detach(cp):
    """Undo attach once no reservation is left (app: cp.rest): True if done."""
    rsv = cp.reservation
    if rsv is None or rsv.r is not None or rsv._task is not None:
        return False
    cp.reservation = None
    if cp.api is not None and rsv in cp.api.providers:
        cp.api.providers.remove(rsv)
    return True


def attach(cp):
    from firmware.ocpp import router

    router.offer(OPS)
    rsv = Reservation(cp)
    cp.reservation = rsv
    cp.status_keys(rsv)
    if rsv.r is None:
        return []
    log.info(_TAG, "reservation", rsv.r["id"], "restored")
    rsv._task = rsv.run(boot=True)  # the app makes it a task; set() starts no second one
    return [rsv._task]
