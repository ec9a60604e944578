"""RFID cards the charger knows by name, and the energy charged with each (go-e API v2
`cards`, `trx`, `lrn`, `del`).

    cp.cards.slot(id_tag)   -> 0..9, or None for a card not stored here
    cp.cards.tag(slot)      -> the idTag in slot 0..9, or None

Ten slots, kept in `<data_dir>/cards.json` ({"v": 1, "c": [[name, idTag, Wh] or null, ...]});
written when the cards change and once at the end of each session with a card.

API keys (go-e API v2 names, types and meanings):
- `cards` R/W: ten objects {"name": string, "energy": Wh charged with the card (integer),
  "cardId": bool, an idTag is stored (the idTag itself is never read back, as on a go-e)}.
  Written as a list of up to ten objects, one per slot from slot 0: `{}` leaves a slot,
  {"name": "Anna", "rfid": "04A1B2C3"} sets its name and idTag, "energy" its counter; a
  field left out stays, "rfid": "" forgets the idTag.
- `lrn` W: `lrn=n` stores the last card read (any card held to the reader) in slot n (0..9).
- `del` W: `del=n` clears slot n (0..9): name, idTag and energy.
- `trx` R/W: null no session, 0 a session without a card, n a session with the card of slot
  n-1. Written: null ends the session (OCPP: StopTransaction, reason Local; standalone: the
  authorization is withdrawn), 0 allows charging without a card (OCPP: a transaction with the
  dummy card `ocppd`, refused without one), n with the card of slot n-1 (OCPP: authorized by
  the central system like a card at the reader). With OCPP on, 0 or n while a transaction
  runs is refused (trx=null ends it first).

Standalone (OCPP off, `acs=1`) a card stored here authorizes charging, as do the local list
and the cache. The energy of a session goes to its card when it ends: with OCPP the
transaction's meterStop - meterStart, standalone the session's `wh` at unplug.

Heap: loaded only while it has work (firmware/app.py LAZY_API, provider): while a card with
an idTag is stored (from boot when `cards.json` is there) or energy waits to be booked, and
for router.IDLE_MS after its keys were last asked for. A charger nobody stores cards on or
reads them from (an OCPP charger no local client polls) pays no heap for it (1.1 KiB 32-bit
frozen, 4 KB from .mpy). The last card read (`lrn`) is kept by the app meanwhile
(cp.card_last); with no card stored there is nothing else to remember.
"""

import asyncio

import fs
import log
from compat import asleep_ms, const

_SLOTS = const(10)
_FORMAT = const(1)
_NAME_MAX = const(32)
_TAG_MAX = const(20)
_FILE = "/cards.json"
_KEYS = ("cards", "trx", "lrn", "del")


class Cards:
    def __init__(self, cp):
        self.cp = cp
        self._path = cp.data_dir.rstrip("/") + _FILE
        self._c = [None] * _SLOTS  # [name, idTag, Wh] or None
        self._tag = None  # standalone: the card of the running session
        self._book = []  # (idTag, Wh) to add, from the charger's tick or a transaction
        self._dirty = False  # energy added that is not on flash yet
        self._wake = asyncio.Event()
        self._task = None
        self._hears = (self._on_charger, self._on_tx)  # one bound method each (unsubscribe)
        d = fs.read_json(self._path, None)
        try:
            if d is not None:
                c = d["c"]
                for i in range(min(len(c), _SLOTS)):
                    e = c[i]
                    if e is not None:
                        self._c[i] = [str(e[0]), e[1] or None, int(e[2])]
        except Exception as ex:  # noqa: BLE001 - never a failed boot
            log.error("cards", "file unreadable, no cards:", repr(ex))
            self._c = [None] * _SLOTS

    # -- look-ups -------------------------------------------------------------------------
    def slot(self, id_tag):
        if not id_tag:
            return None
        for i in range(_SLOTS):
            e = self._c[i]
            if e is not None and e[1] == id_tag:
                return i
        return None

    def tag(self, i):
        e = self._c[i] if 0 <= i < _SLOTS else None
        return None if e is None else e[1]

    def view(self):
        out = []
        for e in self._c:
            if e is None:
                out.append({"name": "", "energy": 0, "cardId": False})
            else:
                out.append({"name": e[0], "energy": e[2], "cardId": bool(e[1])})
        return out

    def _ocpp(self):
        return bool(self.cp.config.get("ocppe"))

    def trx(self):
        cp = self.cp
        if self._ocpp():
            tx = cp.tx
            if tx is None:
                return None
            i = self.slot(tx.id_tag)
            return 0 if i is None else i + 1
        ch = cp.charger
        if not ch.plugged:
            return None
        i = self.slot(self._tag)
        if i is not None:
            return i + 1
        if ch.authorized or not ch.auth_required or cp.config.get("frc") == 2:
            return 0
        return None

    # -- loaded and let go (firmware/app.py _Lazy) -----------------------------------------
    def start(self):
        """cp.cards; listens to the charger and the transactions (provider() starts its
        booking task too)."""
        cp = self.cp
        cp.cards = self
        cp.charger.subscribe(self._hears[0])
        cp.on_tx(self._hears[1])

    def idle(self):
        """It may go: no card with an idTag stored, nothing left to book or write."""
        if self._book or self._dirty or self._tag is not None:
            return False
        for e in self._c:
            if e is not None and e[1]:
                return False
        return True

    def close(self):
        cp = self.cp
        cp.charger.unsubscribe(self._hears[0])
        cp.off_tx(self._hears[1])
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if cp.cards is self:
            cp.cards = None

    # -- events ---------------------------------------------------------------------------
    def _on_charger(self, event, data):
        # In the charger's 20 ms tick: remember only; the flash write happens in run().
        # (The last card read, for lrn, the app keeps: cp.card_last.)
        if event == "card":
            if not self._ocpp() and self.slot(data) is not None and self._tag is None:
                self._tag = data
        elif event == "unplugged":
            tag = self._tag
            self._tag = None
            if tag is not None and not self._ocpp():
                self._book.append((tag, self.cp.charger.session_wh))
                self._wake.set()

    def _on_tx(self, event, tx):
        if event == "stopped" and self.slot(tx.id_tag) is not None:
            e = self.cp.charger.energy_wh  # the meterStop the transaction service sends
            stop = tx.last_wh if e is None else max(int(e), tx.last_wh)
            self._book.append((tx.id_tag, stop - tx.meter_start))
            self._wake.set()

    def _save(self):
        """A change of the API to flash. One that cannot be written now stays in RAM, keeps
        the module loaded (idle) and is written by its task (run) when it can."""
        self._dirty = True
        try:
            self._write()
        except (OSError, MemoryError) as ex:
            log.failed("cards", "cannot save now", ex)
        finally:
            if self._dirty:
                self._wake.set()

    def _write(self):
        fs.write_json(self._path, {"v": _FORMAT, "c": self._c})
        self._dirty = False

    def settle(self):
        """The energy of the sessions that ended goes to their cards, and what is not on flash
        yet is written (one write). Raises what the write raised (nothing is lost: run tries
        again)."""
        while self._book:
            tag, wh = self._book.pop(0)
            i = self.slot(tag)
            if i is not None and wh > 0:
                self._c[i][2] += int(wh + 0.5)
                self._dirty = True
        if self._dirty:
            self._write()

    async def run(self):
        """Never ends but by close(): a step that fails is logged (if there is room for that)
        and tried again, after 5 s short of memory, else after a minute."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                self.settle()
            except Exception as ex:  # noqa: BLE001 - MemoryError, OSError (flash), any other
                self._wake.set()
                try:
                    log.failed("cards", "energy not written yet", ex)
                except Exception:  # noqa: BLE001 - no room even for that
                    pass
                await asleep_ms(5000 if isinstance(ex, MemoryError) else 60000)

    # -- API ------------------------------------------------------------------------------
    def status(self, out):
        out["cards"] = self.view()
        out["trx"] = self.trx()

    def owns(self, key):
        return key in _KEYS

    def check(self, key, value):
        if key == "cards":
            return _check_cards(value)
        if key in ("lrn", "del"):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _SLOTS:
                return "expected a slot 0..9"
            if key == "lrn" and not self.cp.card_last:
                return "no card read yet"
            return None
        return self._check_trx(value)

    def _check_trx(self, v):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or not 0 <= v <= _SLOTS):
            return "expected null, 0 or a card 1..10"
        if v and not self.tag(v - 1):
            return "no card in slot %d" % (v - 1)
        if v is None or not self._ocpp():
            return None
        if self.cp.txn is None:
            return "no transaction service"
        if self.cp.tx is not None:
            return "a transaction runs (trx=null ends it)"
        if v == 0 and not self.cp.config.get("ocppd"):
            return "OCPP needs a card: set ocppd (the dummy card) for trx=0"
        return None

    def apply(self, changes):
        save = False
        if "cards" in changes:
            _apply_cards(self._c, changes["cards"])
            save = True
        if "del" in changes:
            self._c[changes["del"]] = None
            save = True
        if "lrn" in changes:
            i = changes["lrn"]
            e = self._c[i] or ["", None, 0]
            e[1] = self.cp.card_last
            self._c[i] = e
            save = True
        if save:
            self._save()
        if "trx" in changes:
            self._trx(changes["trx"])
        return None

    def _trx(self, v):
        cp = self.cp
        if self._ocpp():
            if v is None:
                cp.txn.stop(1, "Local")
            else:
                cp.txn.card(self.tag(v - 1) if v else cp.config.get("ocppd"))
            return
        self._tag = None if not v else self.tag(v - 1)
        cp.charger.authorize(v is not None)


def _check_cards(value):
    if not isinstance(value, list) or len(value) > _SLOTS:
        return "expected a list of at most 10 objects"
    for e in value:
        if not isinstance(e, dict):
            return "expected a list of at most 10 objects"
        for k in e:
            v = e[k]
            if k == "name":
                if not isinstance(v, str) or len(v) > _NAME_MAX:
                    return "name: a string of at most 32 characters"
            elif k == "rfid":
                if not isinstance(v, str) or len(v) > _TAG_MAX:
                    return "rfid: an idTag of at most 20 characters"
            elif k == "energy":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                    return "energy: Wh, a number >= 0"
                if v > 1e12:
                    return "energy: Wh, a number >= 0"
            elif k != "cardId":  # what a read shows may be written back unchanged
                return "unknown field " + k
    return None


def _apply_cards(slots, value):
    for i in range(len(value)):
        e = value[i]
        if not ("name" in e or "rfid" in e or "energy" in e):
            continue  # {} (or a read's object echoed back with its cardId only)
        cur = slots[i] or ["", None, 0]
        if "name" in e:
            cur[0] = e["name"]
        if "rfid" in e:
            cur[1] = e["rfid"] or None
        if "energy" in e:
            cur[2] = int(e["energy"] + 0.5)
        slots[i] = cur


def provider(cp):
    """cp.cards, listening and booking (firmware/app.py LAZY_API); close() lets it go."""
    cards = Cards(cp)
    try:
        cards.start()
        cards._task = asyncio.create_task(cards.run())
    except BaseException:  # a MemoryError half-way: nothing of it stays subscribed
        cards.close()
        raise
    return cards
