"""Transactions (OCPP 1.6 Core): authorization, start and stop, metering, journal delivery.

    cp.txn.active(connector_id)      -> Tx or None (cp.tx is connector 1's)
    cp.txn.stop(connector_id, reason, id_tag=None) -> True when a transaction was stopped
    cp.txn.subscribe(fn)             fn(event, tx), event "started" | "stopped"
    cp.txn.pending()                 journal entries not yet delivered

A transaction starts when an idTag is authorized AND a car is plugged (§3: the transaction
begins there, energy flows after), if a reservation of the connector admits the idTag
(`cp.reservation.admit`, asked after the authorization and again at the start; the
reservationId goes into the StartTransaction, which ends the reservation); the
StartTransaction is journaled (firmware/transactions/journal.py) before anything is sent,
meterStart and
timestamp frozen. It ends on unplug
(StopTransactionOnEVSideDisconnect, EVDisconnected), the same or a related card (Local),
RemoteStop (Remote), an invalid idTag (DeAuthorized), frc=1 on the API (Local), another
service (`stop`), or a power cut (PowerLoss: journal.recover at attach, before anything).

Sources of an idTag: the card reader (or `card(tag)`: the API's trx), RemoteStartTransaction,
and the dummy card `ocppd` when the car is plugged and no card came within ConnectionTimeOut,
or frc=2 asks for charging without one. An authorization without a car expires after
ConnectionTimeOut.

frc=2 with OCPP on: every delivery of energy is a transaction the central system sees, so
frc=2 does not bypass the authorization as it does standalone (the charger's rule): while no
transaction runs (or it is suspended for an invalid idTag) the charger gets the limit 0 A
(source "frc"). frc=2 then starts a transaction with `ocppd` when set (authorized like a
card); without it charging waits for a card or a RemoteStartTransaction. With OCPP off,
frc=2 charges without authorization, as before.

The charger's listener runs in its 20 ms safety tick: it only queues the event; flash writes
and network waits happen in this service's task.

Journal sender: while the session is Accepted it delivers the journal head through
`cp.session.call`; CALLRESULT -> ack (StartTransaction.conf: transactionId, idTagInfo),
CALLERROR, a malformed answer or a timeout -> failed() (the retry schedule and the
never-drop policy for Start and Stop: firmware/transactions/journal.py), lost link -> the
head stays and is sent again on the next connection. Each acknowledged StopTransaction logs
`I txn: journal writes N` (flash writes of that session, from its Start to its Stop's ack);
the API keys: `jw` the last one, `jq` the entries waiting, `jd` the messages never to be
delivered, `jr` the failed attempts in a row of the head.

Configuration keys:
ClockAlignedDataInterval: Seconds between clock-aligned meter values; 0 turns them off.
ConnectionTimeOut: Seconds after plug-in to wait for authorization before giving up.
MaxEnergyOnInvalidId: Wh still delivered after an idTag turns invalid during a transaction.
MeterValuesAlignedData: Measurands sent at each clock-aligned interval.
MeterValuesAlignedDataMaxLength: Maximum entries in MeterValuesAlignedData.
MeterValuesSampledData: Measurands sent every MeterValueSampleInterval in a transaction.
MeterValuesSampledDataMaxLength: Maximum entries in MeterValuesSampledData.
MeterValueSampleInterval: Seconds between sampled meter values in a transaction; 0 = off.
StopTransactionOnEVSideDisconnect: Stop the transaction when the cable leaves the car.
StopTransactionOnInvalidId: Stop the transaction when its idTag turns out invalid.
StopTxnAlignedData: Clock-aligned measurands in StopTransaction's transactionData.
StopTxnAlignedDataMaxLength: Maximum entries in StopTxnAlignedData.
StopTxnSampledData: Sampled measurands in StopTransaction's transactionData.
StopTxnSampledDataMaxLength: Maximum entries in StopTxnSampledData.
TransactionMessageAttempts: Tries of a refused or unanswered MeterValues; Start, Stop: no limit.
TransactionMessageRetryInterval: Seconds to the 1st retry; n x it after n failures, then x2 to 1 h.
ocppd: Dummy card idTag used when charging starts without a card ("" = none).
"""

import asyncio

import log
from compat import asleep_ms, const, nap, ticks_diff, ticks_ms, wait_for_ms
from firmware import clock
from firmware.keys import CSL
from firmware.ocpp.rpc import CallError, CallTimeout, ConnectionLost
from firmware.ops import start_transaction, stop_transaction
from firmware.transactions.journal import Journal
from firmware.transactions.metering import Metering, transaction_data

_TAG = "txn"
_MAX_EVENTS = const(16)
_IDLE_MS = const(5000)
_RETRY_MS = const(1000)
_FLASH_RETRY_MS = const(10000)  # after a flash error in the sender
_TIMEOUT_PAUSE_MS = const(100)
_CFG_KEYS = ("TransactionMessageAttempts", "TransactionMessageRetryInterval", "ocppe", "acs",
             "frc")
OPS = ("remote_start_transaction", "remote_stop_transaction", "start_transaction",
       "stop_transaction")
_CONF = {
    "StartTransaction": start_transaction.on_conf,
    "StopTransaction": stop_transaction.on_conf,
}


# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (the README table).
_A = const(16)  # API: a product key
_O = const(8)  # OCPP: a standard key
_OR = const(9)  # OCPP | RO
KEYS = (
    ("ClockAlignedDataInterval", "i", _O, 900, 0, 86400),
    ("ConnectionTimeOut", "i", _O, 60, 1, 3600),
    ("MaxEnergyOnInvalidId", "i", _O, 0, 0, 1000000),
    ("MeterValuesAlignedData", "l", _O, "Energy.Active.Import.Register", "MEASURANDS",
     "MeterValuesAlignedDataMaxLength"),
    ("MeterValuesAlignedDataMaxLength", "i", _OR, 8, None, None),
    ("MeterValuesSampledData", CSL, _O,
     "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage", "MEASURANDS",
     "MeterValuesSampledDataMaxLength"),
    ("MeterValuesSampledDataMaxLength", "i", _OR, 8, None, None),
    ("MeterValueSampleInterval", "i", _O, 60, 0, 86400),
    ("StopTransactionOnEVSideDisconnect", "b", _O, True, None, None),
    ("StopTransactionOnInvalidId", "b", _O, True, None, None),
    ("StopTxnAlignedData", "l", _O, "", "MEASURANDS", "StopTxnAlignedDataMaxLength"),
    ("StopTxnAlignedDataMaxLength", "i", _OR, 8, None, None),
    ("StopTxnSampledData", "l", _O, "", "MEASURANDS", "StopTxnSampledDataMaxLength"),
    ("StopTxnSampledDataMaxLength", "i", _OR, 8, None, None),
    ("TransactionMessageAttempts", "i", _O, 3, 1, 10),
    ("TransactionMessageRetryInterval", "i", _O, 60, 1, 3600),
    ("ocppd", "s", _A, "", 1, 20),
)


class Tx:
    """A running transaction (cp.tx). transaction_id: int once StartTransaction.conf came."""

    def __init__(self, connector_id, id_tag, local_ref, start_time, meter_start):
        self.connector_id = connector_id
        self.id_tag = id_tag
        self.local_ref = local_ref
        self.start_time = start_time
        self.meter_start = meter_start
        self.transaction_id = None
        self.parent_id_tag = None
        self.last_wh = meter_start
        self.begin = None  # Transaction.Begin sample for StopTxnSampledData
        self.aligned = None  # last clock-aligned sample for StopTxnAlignedData
        self.sampled_ms = 0
        self.profile = None  # TxProfile of a RemoteStart, until the transactionId is known
        self.invalid_wh = None  # energy when the idTag was found invalid
        self.suspended = False


class TxnKeys:
    """API provider: `jw` journal writes of the last session, `jq` entries waiting, `jd`
    transaction messages never to be delivered (MeterValues given up or thinned; on flash),
    `jr` failed attempts in a row of the entry at the head (a Start or Stop the central system
    keeps refusing shows here while it is retried), `mvm` periodic meter samples that could
    not be taken (memory pressure; counted, not made up)."""

    def __init__(self, txn):
        self.txn = txn

    def status(self, out):
        j = self.txn.journal
        out["jw"] = self.txn.last_writes
        out["jq"] = len(j)
        out["jd"] = j.dropped
        out["jr"] = j.failures()
        out["mvm"] = self.txn.metering.missed

    def owns(self, key):
        return key in ("jw", "jq", "jd", "jr", "mvm")

    def check(self, key, value):
        return "read-only"

    def apply(self, changes):
        return None


class Txn:
    def __init__(self, cp):
        self.cp = cp
        self.journal = Journal(cp.data_dir)
        # PowerLoss stops for what a cut left open: first, before any new session.
        self.recovered = self.journal.recover(clock.now())
        self.metering = Metering(cp, self)
        self.last_writes = None
        self._tx = {}
        self._w0 = {}  # local_ref -> journal.writes at its start
        self._events = []
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._pending = None  # [id_tag, idTagInfo, since_ms, connector, profile]
        self._asking = None  # connector whose idTag is being authorized
        self._plug_ms = 0
        self._local_ok = False  # OCPP off: the last card was accepted locally
        self._dummy_done = False
        self._on_config(_CFG_KEYS)
        cp.config.subscribe(self._on_config)
        cp.charger.subscribe(self._on_charger)

    # ---- public interface

    def active(self, connector_id=1):
        return self._tx.get(connector_id)

    def by_ref(self, ref):
        for c in self._tx:
            if self._tx[c].local_ref == ref:
                return self._tx[c]
        return None

    @property
    def auth(self):
        """cp.auth, loaded if it was not (it is let go when idle: asked anew each time)."""
        from firmware.authorization.service import auth

        return auth(self.cp)

    def remember(self, id_tag, info):
        """The idTagInfo of a Start/StopTransaction.conf into the authorization cache, when
        it is enabled (nothing is loaded otherwise); no room to load the authorization costs
        only that entry, counted and logged."""
        if not self.cp.config.get("AuthorizationCacheEnabled"):
            return
        try:
            self.auth.remember(id_tag, info)
        except MemoryError:
            log.memory(_TAG, "idTagInfo of", id_tag, "not cached")

    def subscribe(self, fn):
        """Transaction events: the same as cp.on_tx (kept for the tests and tools)."""
        self.cp.on_tx(fn)

    def pending(self):
        return len(self.journal)

    def stop(self, connector_id, reason, id_tag=None):
        """Journal the StopTransaction of the connector's transaction; False if none runs."""
        tx = self._tx.get(connector_id)
        if tx is None:
            return False
        now = clock.now()
        wh = max(self._wh(tx.last_wh), tx.last_wh)
        try:
            data = transaction_data(self.cp, tx, now)
        except Exception as e:  # noqa: BLE001 - never lose the Stop over its extras
            log.error(_TAG, "transactionData:", repr(e))
            data = None
        self.journal.stop(connector_id, wh, now, reason=reason, id_tag=id_tag,
                          transaction_data=data)
        del self._tx[connector_id]
        self._grant()
        self._gate()
        log.info(_TAG, "stopped", tx.local_ref, "id", tx.transaction_id, reason, wh, "Wh")
        self._notify("stopped", tx)
        self._kick.set()
        return True

    def remote_start(self, id_tag, connector_id=1, profile=None):
        self._queue("remote", (id_tag, connector_id, profile))

    def start_pending(self, connector_id=1):
        """A start is on its way on the connector: a RemoteStart queued or being authorized,
        or an idTag authorized and waiting for the car (RemoteStart refuses then)."""
        p = self._pending
        if (p is not None and p[3] == connector_id) or self._asking == connector_id:
            return True
        for event, data in self._events:
            if event == "remote" and data[1] == connector_id:
                return True
        return False

    def card(self, id_tag):
        """An idTag as if held to the reader (the API's trx=n)."""
        self._queue("card", id_tag)

    # ---- used by the message modules and metering

    def on_transaction_id(self, tx):
        prof = tx.profile
        if prof is not None and self._tx.get(tx.connector_id) is tx:
            from firmware.smart_charging.service import engine

            tx.profile = None
            try:
                # engine(): loaded if the charger had no profile (the TxProfile is not lost)
                st = engine(self.cp).set_profile(tx.connector_id, prof, tx=tx, now=clock.now())
            except Exception as e:  # noqa: BLE001 - no room for the engine: the start stands
                log.failed(_TAG, "remote start profile", e)
                return
            log.info(_TAG, "remote start profile:", st)

    def invalidated(self, tx, status):
        """StartTransaction.conf said the idTag is not Accepted (§5.11, §9.1)."""
        log.warning(_TAG, "idTag of", tx.transaction_id, "is", status)
        if self._tx.get(tx.connector_id) is not tx:
            return
        if self.cp.config.get("StopTransactionOnInvalidId"):
            self.stop(tx.connector_id, "DeAuthorized")
        else:
            tx.invalid_wh = self._wh(tx.last_wh)  # suspended after MaxEnergyOnInvalidId

    def meter_tick(self, tx):
        """Every second of a transaction: last known meter (PowerLoss), energy limits."""
        wh = self._wh(tx.last_wh)
        if wh > tx.last_wh:
            tx.last_wh = wh
        self.journal.meter(tx.connector_id, tx.last_wh, clock.now())
        if tx.invalid_wh is not None and not tx.suspended:
            if tx.last_wh - tx.invalid_wh >= self.cp.config.get("MaxEnergyOnInvalidId"):
                tx.suspended = True
                self._grant()
                self._gate()
                log.info(_TAG, "suspended: invalid idTag, energy allowance spent")

    def journal_meter_values(self, tx, mv):
        if self._tx.get(tx.connector_id) is not tx:
            return
        wh = self._wh(tx.last_wh)
        if wh > tx.last_wh:
            tx.last_wh = wh
        self.journal.meter_values(tx.connector_id, [mv], clock.now(), wh=tx.last_wh)
        self._kick.set()

    # ---- internals

    def _grant(self):
        """The one place that tells the charger whether the car may draw power: a running,
        not suspended transaction, or (OCPP off) a card the local list or cache accepts."""
        tx = self._tx.get(1)
        self.cp.charger.authorize(
            (tx is not None and not tx.suspended) or (tx is None and self._local_ok))

    def _notify(self, event, tx):
        self.cp.tx_event(event, tx)

    def _wh(self, default=0):
        e = self.cp.charger.energy_wh
        return default if e is None else int(e)

    def _ocpp(self):
        return bool(self.cp.config.get("ocppe"))

    def _on_config(self, keys):
        c = self.cp.config.get
        j = self.journal
        j.attempts = c("TransactionMessageAttempts")
        j.retry_interval = c("TransactionMessageRetryInterval")
        self.cp.charger.auth_required = bool(c("ocppe")) or c("acs") == 1
        if "frc" in keys and c("frc") == 1:
            for conn in list(self._tx):
                self.stop(conn, "Local")
        self._gate()
        if "frc" in keys:
            self._frc_start()

    def _gate(self):
        """OCPP on and frc=2: no energy outside a transaction (see the module docstring)."""
        tx = self._tx.get(1)
        block = (self._ocpp() and self.cp.config.get("frc") == 2
                 and (tx is None or tx.suspended))
        self.cp.charger.set_limit(0 if block else None, "frc")

    def _frc_start(self):
        """frc=2 with OCPP on and a car: a transaction with the dummy card `ocppd`."""
        c = self.cp.config.get
        dummy = c("ocppd")
        if (dummy and c("frc") == 2 and self._ocpp() and self.cp.charger.plugged
                and self._tx.get(1) is None and self._pending is None):
            log.info(_TAG, "frc=2 without a card: dummy card", dummy)
            self._queue("card", dummy)

    def _on_charger(self, event, data):
        # In the safety tick: queue only.
        if event in ("plugged", "unplugged", "card", "charging"):
            self._queue(event, data)

    def _queue(self, event, data):
        if len(self._events) >= _MAX_EVENTS:
            log.error(_TAG, "event queue full, dropped", event)
            return
        self._events.append((event, data))
        self._wake.set()

    def _admit(self, connector, id_tag, info):
        """(may start, reservationId or None): asks the reservation feature, if any."""
        rsv = self.cp.reservation
        ok = (True, None) if rsv is None else rsv.admit(connector, id_tag, info)
        if not ok[0]:
            log.info(_TAG, "idTag", id_tag, "refused: connector", connector, "is reserved")
        return ok

    def _start(self, id_tag, info, connector, profile=None):
        if self.journal.full():
            log.error(_TAG, "journal full: no new transaction")
            return None
        ok, rid = self._admit(connector, id_tag, info)
        if not ok:
            self._pending = None
            return None
        now = clock.now()
        wh = self._wh()
        w0 = self.journal.writes
        ref = self.journal.start(connector, id_tag, wh, now, reservation_id=rid)
        if rid is not None:
            self.cp.reservation.used(rid)  # after the Start is on flash (see reservation.py)
        tx = Tx(connector, id_tag, ref, now, wh)
        tx.parent_id_tag = info.get("parentIdTag")
        tx.profile = profile
        self.metering.begin(tx, now)
        self._w0[ref] = w0
        while len(self._w0) > 8:
            self._w0.pop(min(self._w0))
        self._tx[connector] = tx
        self._pending = None
        self._local_ok = False  # a transaction's end never falls back to an old local card
        self._grant()
        self._gate()
        log.info(_TAG, "started", ref, id_tag, wh, "Wh")
        self._notify("started", tx)
        self._kick.set()
        return tx

    def _try_start(self):
        p = self._pending
        if p is None or not self.cp.charger.plugged or self._tx.get(p[3]) is not None:
            return
        self._start(p[0], p[1], p[3], p[4])

    async def _authorize(self, id_tag, connector=1, profile=None, remote=False):
        if remote and not self.cp.config.get("AuthorizeRemoteTxRequests"):
            info = {"status": "Accepted"}
        else:
            self._asking = connector
            try:
                info = await self.auth.authorize(id_tag)
            finally:
                self._asking = None
        if info.get("status") != "Accepted":
            log.info(_TAG, "idTag", id_tag, "refused:", info.get("status"))
            return
        if not self._admit(connector, id_tag, info)[0]:
            return
        self._pending = [id_tag, info, ticks_ms(), connector, profile]
        self._try_start()

    async def _card(self, tag):
        tx = self._tx.get(1)
        if tx is not None:
            # The card that started it needs nothing loaded (nor room for it).
            if tag == tx.id_tag or await self.auth.may_stop(tx, tag):
                self.stop(tx.connector_id, "Local", id_tag=tag)
            else:
                log.info(_TAG, "card", tag, "may not stop transaction", tx.local_ref)
            return
        if not self._ocpp():
            # OCPP off (acs=1): the local list, the cache and the cards (firmware/cards.py)
            # decide, no transaction.
            info = self.auth.known(tag)
            cards = self.cp.cards
            self._local_ok = ((info is not None and info["status"] == "Accepted")
                              or (cards is not None and cards.slot(tag) is not None))
            self._grant()
            return
        # Again before a car came: authorized anew, the ConnectionTimeOut window restarts.
        await self._authorize(tag)

    async def _handle(self, event, data):
        ocpp = self._ocpp()
        if event == "plugged":
            self._plug_ms = ticks_ms()
            self._dummy_done = False
            tx = self._tx.get(1)
            if tx is not None:
                self._grant()  # came back (StopTransactionOnEVSideDisconnect off)
            self._try_start()
            self._frc_start()
        elif event == "unplugged":
            self._pending = None
            if self._tx.get(1) is not None and self.cp.config.get(
                    "StopTransactionOnEVSideDisconnect"):
                self.stop(1, "EVDisconnected")
        elif event == "card":
            await self._card(data)
        elif event == "remote":
            if ocpp and self._tx.get(data[1]) is None:
                await self._authorize(data[0], data[1], data[2], remote=True)
        elif event == "charging":
            dummy = self.cp.config.get("ocppd")
            if ocpp and dummy and self._tx.get(1) is None and self._pending is None:
                # Energy without a card (frc=2, or authorization not required).
                self._start(dummy, {"status": "Accepted"}, 1)

    def _timers(self):
        c = self.cp.config.get
        now = ticks_ms()
        window = c("ConnectionTimeOut") * 1000
        plugged = self.cp.charger.plugged
        p = self._pending
        if p is not None and not plugged and ticks_diff(now, p[2]) >= window:
            log.info(_TAG, "authorization of", p[0], "expired: no car")
            self._pending = None
        dummy = c("ocppd")
        if (dummy and plugged and not self._dummy_done and self._pending is None
                and self._tx.get(1) is None and self._ocpp()
                and ticks_diff(now, self._plug_ms) >= window):
            self._dummy_done = True
            log.info(_TAG, "no card within", window // 1000, "s: dummy card", dummy)
            self._queue("card", dummy)

    async def run(self):
        while True:
            self.cp.beat("txn")
            await nap(self._wake, 1000)
            self._wake.clear()
            while self._events:
                event, data = self._events.pop(0)
                try:
                    await self._handle(event, data)
                except Exception as e:  # noqa: BLE001 - keep serving the next event
                    log.failed(_TAG, event + " failed", e)
            try:
                self._timers()
            except Exception as e:  # noqa: BLE001
                log.error(_TAG, "timers:", repr(e))

    async def _idle(self, ms):
        await nap(self._kick, ms)
        self._kick.clear()

    async def sender(self):
        """Deliver the journal in order whenever the session is accepted. Never ends: a
        flash error (ENOSPC, EIO) or a bug in one step is logged and retried later, since
        a dead sender would silently hold back every transaction message."""
        while True:
            self.cp.beat("journal")  # liveness: app._watch restarts a silent sender
            try:
                await self._send_next()
            except asyncio.CancelledError:
                raise
            except Exception as ex:  # noqa: BLE001 - see the docstring
                log.failed(_TAG, "journal sender", ex)
                await asleep_ms(_FLASH_RETRY_MS)

    def _failed(self, e, why, timeout=False):
        retry, at = self.journal.failed(e["seq"], clock.now(), timeout)
        if retry:
            log.warning(_TAG, e["action"], e["seq"], why, "- attempt",
                        self.journal.failures(), "- retry in %d s" % (at - clock.now()))

    async def _send_next(self):
        s = self.cp.session
        j = self.journal
        if not s.accepted.is_set():
            try:  # in steps, so the loop beats while offline
                await wait_for_ms(s.accepted.wait(), _IDLE_MS)
            except asyncio.TimeoutError:
                pass
            return
        e = j.peek(clock.now())
        if e is None:
            await self._idle(_RETRY_MS if j.due() is not None else _IDLE_MS)
            return
        try:
            conf = await s.call(e["action"], e["payload"])
        except CallError as ex:  # refused, or a malformed answer (BadResponse)
            self._failed(e, "refused: " + str(ex))
            return
        except ConnectionLost as ex:  # the link went: the head is sent on the next one
            log.warning(_TAG, e["action"], e["seq"], "not delivered:", repr(ex))
            await asleep_ms(_RETRY_MS)
            return
        except CallTimeout:
            # No answer: an attempt like a CALLERROR, the retry interval applies (journal).
            self._failed(e, "no answer", True)
            # A real timeout took the whole call timeout; this pause only keeps a call that
            # fails at once from spinning the event loop.
            await asleep_ms(_TIMEOUT_PAUSE_MS)
            return
        except Exception as ex:  # noqa: BLE001 - NotAccepted, send failure: head stays
            log.warning(_TAG, e["action"], e["seq"], "not delivered:", repr(ex))
            await asleep_ms(_RETRY_MS)
            return
        if not j.ack(e["seq"], conf):
            self._failed(e, "answer without a usable transactionId")
            return
        fn = _CONF.get(e["action"])
        if fn is not None:
            try:
                fn(self.cp, e, conf)
            except Exception as ex:  # noqa: BLE001 - the ack stands
                log.error(_TAG, e["action"], "answer:", repr(ex))
        if e["action"] == "StopTransaction":
            w0 = self._w0.pop(e["ref"], None)
            if w0 is not None:
                self.last_writes = j.writes - w0
                log.info(_TAG, "journal writes", self.last_writes)


def attach(cp):
    from firmware.ocpp import router

    router.offer(OPS)
    txn = Txn(cp)
    cp.txn = txn
    cp.status_keys(TxnKeys(txn))
    # The event loop and the journal sender are watched for hangs (app._watch).
    return [cp.keep("txn", txn.run), cp.keep("journal", txn.sender),
            txn.metering.run_sampled, txn.metering.run_aligned]
