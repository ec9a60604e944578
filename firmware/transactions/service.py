"""Transactions (OCPP 1.6 Core): authorization, start and stop, metering, journal delivery.

    cp.txn.active(connector_id)      -> Tx or None (cp.tx is connector 1's)
    cp.txn.stop(connector_id, reason, id_tag=None) -> True when a transaction was stopped
    cp.txn.subscribe(fn)             fn(event, tx), event "started" | "stopped"
    cp.txn.pending()                 journal entries not yet delivered

A transaction starts when an idTag is authorized AND a car is plugged (§3: the transaction
begins there, energy flows after); the StartTransaction is journaled (firmware/journal.py)
before anything is sent, meterStart and timestamp frozen. It ends on unplug
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
CALLERROR -> failed() (TransactionMessageAttempts / TransactionMessageRetryInterval), timeout
or lost link -> the head stays and is sent again. Each acknowledged StopTransaction logs
`I txn: journal writes N` (flash writes of that session, from its Start to its Stop's ack);
the API key `jw` shows the last one, `jq` the entries waiting.

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
TransactionMessageAttempts: Tries of a transaction message the central system rejects.
TransactionMessageRetryInterval: Seconds before the first retry (doubled each retry).
ocppd: Dummy card idTag used when charging starts without a card ("" = none).
"""

import asyncio

import log
from compat import asleep_ms, const, ticks_diff, ticks_ms, wait_for_ms
from firmware import clock
from firmware.keys import API, BOOL, CSL, INT, MEASURANDS, OCPP, RO, STR
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


_O = OCPP
_OR = OCPP | RO
# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (keys.doc, the README table).
KEYS = (
    ("ClockAlignedDataInterval", INT, _O, 900, 0, 86400),
    ("ConnectionTimeOut", INT, _O, 60, 1, 3600),
    ("MaxEnergyOnInvalidId", INT, _O, 0, 0, 1000000),
    ("MeterValuesAlignedData", CSL, _O, "Energy.Active.Import.Register", MEASURANDS,
     "MeterValuesAlignedDataMaxLength"),
    ("MeterValuesAlignedDataMaxLength", INT, _OR, 8, None, None),
    ("MeterValuesSampledData", CSL, _O,
     "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage", MEASURANDS,
     "MeterValuesSampledDataMaxLength"),
    ("MeterValuesSampledDataMaxLength", INT, _OR, 8, None, None),
    ("MeterValueSampleInterval", INT, _O, 60, 0, 86400),
    ("StopTransactionOnEVSideDisconnect", BOOL, _O, True, None, None),
    ("StopTransactionOnInvalidId", BOOL, _O, True, None, None),
    ("StopTxnAlignedData", CSL, _O, "", MEASURANDS, "StopTxnAlignedDataMaxLength"),
    ("StopTxnAlignedDataMaxLength", INT, _OR, 8, None, None),
    ("StopTxnSampledData", CSL, _O, "", MEASURANDS, "StopTxnSampledDataMaxLength"),
    ("StopTxnSampledDataMaxLength", INT, _OR, 8, None, None),
    ("TransactionMessageAttempts", INT, _O, 3, 1, 10),
    ("TransactionMessageRetryInterval", INT, _O, 60, 1, 3600),
    ("ocppd", STR, API, "", 1, 20),
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
    """API provider: `jw` journal writes of the last session, `jq` entries waiting."""

    def __init__(self, txn):
        self.txn = txn

    def status(self, out):
        out["jw"] = self.txn.last_writes
        out["jq"] = len(self.txn.journal)

    def owns(self, key):
        return key in ("jw", "jq")

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
        self._plug_ms = 0
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
        return self.cp.auth

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
        self.cp.charger.authorize(False)
        self._gate()
        log.info(_TAG, "stopped", tx.local_ref, "id", tx.transaction_id, reason, wh, "Wh")
        self._notify("stopped", tx)
        self._kick.set()
        return True

    def remote_start(self, id_tag, connector_id=1, profile=None):
        self._queue("remote", (id_tag, connector_id, profile))

    def card(self, id_tag):
        """An idTag as if held to the reader (the API's trx=n)."""
        self._queue("card", id_tag)

    # ---- used by the message modules and metering

    def on_transaction_id(self, tx):
        prof = tx.profile
        smart = self.cp.smart
        if prof is not None and smart is not None and self._tx.get(tx.connector_id) is tx:
            tx.profile = None
            st = smart.set_profile(tx.connector_id, prof, tx=tx, now=clock.now())
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
                self.cp.charger.authorize(False)
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

    def _start(self, id_tag, info, connector, profile=None):
        if self.journal.full():
            log.error(_TAG, "journal full: no new transaction")
            return None
        now = clock.now()
        wh = self._wh()
        w0 = self.journal.writes
        ref = self.journal.start(connector, id_tag, wh, now)
        tx = Tx(connector, id_tag, ref, now, wh)
        tx.parent_id_tag = info.get("parentIdTag")
        tx.profile = profile
        self.metering.begin(tx, now)
        self._w0[ref] = w0
        while len(self._w0) > 8:
            self._w0.pop(min(self._w0))
        self._tx[connector] = tx
        self._pending = None
        self.cp.charger.authorize(True)
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
            info = await self.auth.authorize(id_tag)
        if info.get("status") != "Accepted":
            log.info(_TAG, "idTag", id_tag, "refused:", info.get("status"))
            return
        self._pending = [id_tag, info, ticks_ms(), connector, profile]
        self._try_start()

    async def _card(self, tag):
        tx = self._tx.get(1)
        if tx is not None:
            if await self.auth.may_stop(tx, tag):
                self.stop(tx.connector_id, "Local", id_tag=tag)
            else:
                log.info(_TAG, "card", tag, "may not stop transaction", tx.local_ref)
            return
        if not self._ocpp():
            # OCPP off (acs=1): the local list, the cache and the cards (firmware/cards.py)
            # decide, no transaction.
            info = self.auth.known(tag)
            cards = self.cp.cards
            self.cp.charger.authorize((info is not None and info["status"] == "Accepted")
                                      or (cards is not None and cards.slot(tag) is not None))
            return
        # Again before a car came: authorized anew, the ConnectionTimeOut window restarts.
        await self._authorize(tag)

    async def _handle(self, event, data):
        ocpp = self._ocpp()
        if event == "plugged":
            self._plug_ms = ticks_ms()
            self._dummy_done = False
            tx = self._tx.get(1)
            if tx is not None and not tx.suspended:
                self.cp.charger.authorize(True)  # came back (StopTransactionOnEVSide... off)
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
            try:
                await wait_for_ms(self._wake.wait(), 1000)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            while self._events:
                event, data = self._events.pop(0)
                try:
                    await self._handle(event, data)
                except Exception as e:  # noqa: BLE001 - keep serving the next event
                    log.error(_TAG, event, "failed:", repr(e))
            try:
                self._timers()
            except Exception as e:  # noqa: BLE001
                log.error(_TAG, "timers:", repr(e))

    async def _idle(self, ms):
        try:
            await wait_for_ms(self._kick.wait(), ms)
        except asyncio.TimeoutError:
            pass
        self._kick.clear()

    async def sender(self):
        """Deliver the journal in order whenever the session is accepted. Never ends: a
        flash error (ENOSPC, EIO) or a bug in one step is logged and retried later, since
        a dead sender would silently hold back every transaction message."""
        while True:
            try:
                await self._send_next()
            except asyncio.CancelledError:
                raise
            except Exception as ex:  # noqa: BLE001 - see the docstring
                log.error(_TAG, "journal sender:", repr(ex))
                await asleep_ms(_FLASH_RETRY_MS)

    async def _send_next(self):
        s = self.cp.session
        j = self.journal
        if not s.accepted.is_set():
            await s.accepted.wait()
        e = j.peek(clock.now())
        if e is None:
            await self._idle(_RETRY_MS if j.due() is not None else _IDLE_MS)
            return
        try:
            conf = await s.call(e["action"], e["payload"])
        except CallError as ex:
            retry, at = j.failed(e["seq"], clock.now())
            log.warning(_TAG, e["action"], e["seq"], "refused:", str(ex),
                        "retry at %d" % at if retry else "dropped")
            return
        except ConnectionLost as ex:  # the link went: the head is sent on the next one
            log.warning(_TAG, e["action"], e["seq"], "not delivered:", repr(ex))
            await asleep_ms(_RETRY_MS)
            return
        except CallTimeout:
            # No answer: counted apart (journal.timeouts_cap()), so a message the central
            # system never answers cannot block the queue forever.
            retry, _ = j.failed(e["seq"], clock.now(), timeout=True)
            log.warning(_TAG, e["action"], e["seq"], "no answer",
                        "" if retry else "- dropped after too many timeouts")
            # A real timeout took the whole call timeout; this pause only keeps a call that
            # fails at once from spinning the event loop.
            await asleep_ms(_TIMEOUT_PAUSE_MS)
            return
        except Exception as ex:  # noqa: BLE001 - NotAccepted, send failure: head stays
            log.warning(_TAG, e["action"], e["seq"], "not delivered:", repr(ex))
            await asleep_ms(_RETRY_MS)
            return
        if not j.ack(e["seq"], conf):
            j.failed(e["seq"], clock.now())
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
    return [txn.run(), txn.sender(), txn.metering.run_sampled(), txn.metering.run_aligned()]
