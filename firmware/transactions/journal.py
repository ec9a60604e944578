"""Transaction journal: OCPP transaction messages on flash, written before they are sent.

StartTransaction, MeterValues inside a transaction and StopTransaction go through here; every
other message does not. An entry is appended before it is sent and leaves only when the central
system has answered (`ack`), or, for a MeterValues only, when TransactionMessageAttempts
attempts failed (`failed`). Delivery is FIFO across outages and reboots (OCPP 1.6 §4.7 / 3.7).

Sender loop::

    e = j.peek(now)           # head entry, transactionId filled in; None if empty or waiting
    ... rpc.call(e["action"], e["payload"]) ...
    j.ack(e["seq"], response)                  # CALLRESULT (False: malformed, call failed())
    retry, at = j.failed(e["seq"], now)        # CALLERROR: wait until `at`, or given up
    retry, at = j.failed(e["seq"], now, timeout=True)  # no answer within the call timeout
    # lost link: do nothing, the head is sent again on the next connection

Retries (the spec allows discarding after TransactionMessageAttempts; a charger that people
bill with must not lose the billing record, so the policy here is):
- A CALLERROR, a malformed answer (e.g. a StartTransaction.conf without an integer
  transactionId) and a call timeout are each one failed attempt of the head entry; after the
  n-th failure in a row it waits `retry_wait(n)`: n x TransactionMessageRetryInterval while
  n < TransactionMessageAttempts (OCPP 1.6 §4.7), then doubling from attempts x interval,
  capped at one hour (or at attempts x interval when that is longer). At the defaults (3,
  60 s): 60, 120, 180, 360, 720, 1440, 2880, then 3600 s.
- StartTransaction and StopTransaction are never given up: they are retried on that
  schedule for as long as it takes (the queue behind them waits: their MeterValues need the
  transactionId, and order is kept).
- A MeterValues is given up after TransactionMessageAttempts failed attempts (the spec's
  discard), so one the central system refuses or never answers holds the Stop behind it for
  minutes (3 attempts, 30 s call timeout: about 4.5 min), not a quarter of an hour.
- `dropped` counts the entries that will never be delivered (MeterValues given up, thinned
  when full, quarantined unreadable ones); it is kept in the meta file ("d"), written with
  the decision itself (thinning's count goes to flash with the next meta write).
The failure count and the wait are RAM only: they start again when the head changes or at
boot (a Start waiting an hour is tried again right after a reboot).

Errors: every flash error (OSError, e.g. ENOSPC, EIO) propagates to the caller and leaves the
journal's RAM state as it was before the call, so the call can simply be retried (the meta
file is written before any RAM state changes). Before an append or a rewrite the free space
is checked (fs.free_bytes): below the size of the write plus 8 KiB the call raises
OSError(ENOSPC, "journal: ...") without writing anything.

Transaction references: Stop and MeterValues may be journaled before StartTransaction.conf
exists (offline session), so entries carry a local reference `ref` (the Start's seq) and
`peek` fills in the transactionId the central system gave. Journals written by older
firmware may hold a Start that was given up (transactionId null in the meta): its MeterValues
and Stop are dropped too (log.error, counted), since a Stop with an invented id would be
refused as well; a MeterValues or Stop whose Start is gone for any other reason (its line
unreadable, quarantined) is quarantined, never sent without an id.
A transaction whose Start is journaled is always stopped exactly once: by `stop`, or by
`recover` after a power cut (even when its open record is lost, see below).

Files under <data_dir>/journal/ (littlefs; why: see the bench notes in the tests):
- q.log: append-only segment, one line per entry
  `J2 <seq> <S|M|T> <ref> <wh> <t> <len> <json>`: wh/t are the meter reading (Wh, -1 when
  unknown) and the time (Unix s) at append: meterStart, the MeterValues reading, meterStop.
  The payload is frozen at append time and re-sent verbatim (a Start sent again after a cut
  between the answer and the ack is identical in every field). J1 lines (no wh/t, before
  2.0) are still read. Removed when fully acknowledged and >= 4 KiB; the acknowledged prefix is
  cut (rewrite to q.log.new, rename) when it passes max_bytes / 2.
- meta.json and meta2.json: {"v", "n", "ack": last seq acknowledged, "tx": {ref:
  transactionId or null}, "o": {ref: [wh, t]} of the open transactions, "d": `dropped`
  (absent in older metas: 0)}, written atomically
  once per ack, alternately to one and the other; load takes the readable one with the higher
  "n", so a corrupt newest copy falls back to the previous state (at worst the last
  acknowledged entry is sent again).
- o<connector>.json: the open-transaction record (ref, idTag, meterStart, start time, last
  meter Wh and time), written at start and from `meter()` when the last persisted reading
  (record or MeterValues line) is more than `open_every_s` + 5 s old - so with MeterValues
  every `open_every_s` it is not rewritten during the session; removed after the Stop is
  journaled. `recover(now)` turns a left-over record into StopTransaction reason PowerLoss
  with the newest of: the record, the last MeterValues line of that transaction, the "o" of
  meta. A transaction whose record is unreadable (kept as .bad) but whose Start is journaled
  or acknowledged and which has no Stop is stopped the same way from the lines and meta.
- bad.log: quarantined lines (corrupt, torn, unknown format), kept up to 16 KiB.
Small files are replaced with fs.write_atomic (temporary file, then rename); leftovers
(*.tmp, q.log.new) are removed at load.
Writes per entry: 1 append + 1 meta write at ack; + the record at start and its removal at
stop. `writes` counts every file write, rename and removal.

When full (live bytes + the new entry > `max_bytes`, default 64 KiB), one rewrite thins the
journal down to 3/4 of max_bytes: it drops MeterValues in rounds, each round keeping every
other one (the first and the last of each transaction kept) of every transaction, oldest
transactions first; only when no transaction has anything left between its first and last
does a final round drop all MeterValues, oldest transactions first. Never dropped: the head
(it may be in flight), StartTransaction, StopTransaction, MeterValues with Transaction.Begin
or Transaction.End samples. A rewrite happens only when it frees at least max_bytes / 8 or
gets back under the budget; otherwise the entry is kept beyond the budget, `full()` turns
True and the app should refuse new sessions; `full()` turns False again once delivered
entries leave room for a session (live bytes + 256 <= max_bytes). So thinning costs one
rewrite per ~max_bytes / 8 appended, not one per append. The rewrites and the thinning are
firmware/transactions/journal_compact.py's, lent for each one (compat.lend).
Capacity at the default budget, measured (test_journal.py prints it): ~270 offline
transactions of Start (~130 B) + Stop (~112 B), or ~4.9 hours of one-measurand MeterValues
(~221 B) at MeterValueSampleInterval 60 s before thinning starts; thinning then halves the
resolution of the oldest data, so a transaction is never lost (a 24 h offline session keeps
its first and last readings and ~1 of 5 between: 8 rewrites for 1442 appends; offline 3-min
sessions until full(): 18 rewrites for 1172 appends). Flash cost of a 1 h online session,
meter() ticked every second and MeterValues every 60 s (test_writes_per_session_and_capacity):
129 writes (188-248 before the MeterValues line carried the reading); 69 block erases on
littlefs with 4 KiB blocks (test_journal_on_littlefs_under_micropython).
One segment file rather than
one file per entry: littlefs inlines only files up to ~128 B, so every entry file would hold
a whole 4 KiB block (64 KiB would keep ~16 entries instead of ~300).
Format versions: lines carry `J1`/`J2`, meta carries "v"; older formats are migrated on load
(read as they are, written in the new format), unreadable entries quarantined, never wiped.
"""

import json
import os
import time

import fs
import log
from compat import MICROPYTHON, SCRATCH_BYTES, const, epoch_offset, lend, scratch
from firmware.ops import meter_values, start_transaction, stop_transaction

FORMAT = const(2)  # of the meta file and the open records (journal_load.py reads it)
_MAX_BYTES = const(65536)
_OPEN_EVERY_S = const(60)
_GRACE_S = const(5)
_COMPACT_BYTES = const(4096)
_BAD_MAX = const(16384)
_FREE_MIN = const(8192)
_SESSION_BYTES = const(256)
_RETRY_CAP_S = const(3600)
_ENOSPC = const(28)
_REWRITES = "firmware.transactions.journal_compact"  # lent for each rewrite
_J2_HEAD = const(72)  # covers "J2 seq code ref wh t length " of any real line

_ACTIONS = {"S": "StartTransaction", "M": "MeterValues", "T": "StopTransaction"}
_METAS = ("meta.json", "meta2.json")
_TAG = "journal"


def _rfc3339(t):
    y, mo, d, h, mi, s = time.gmtime(t - epoch_offset())[:6]
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo, d, h, mi, s)


def _read_json(path):
    """Parsed file; OSError when missing, ValueError (or other) when corrupt. Falls back to a
    complete `.tmp` left by an interrupted fs.write_atomic on FAT."""
    try:
        f = open(path, "rb")
    except OSError:
        f = open(path + ".tmp", "rb")
    with f:
        return json.loads(f.read())


def _sync(f):
    f.flush()
    s = getattr(os, "fsync", None)  # CPython; littlefs commits on close
    if s is not None:
        s(f.fileno())


def _remove(path):
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def _encode(seq, code, ref, payload, wh, t):
    body = _dumps(payload).encode()
    return ("J2 %d %s %d %d %d %d " % (seq, code, ref, wh, t, len(body))).encode() + body + b"\n"


def _estimate(payload):
    """Bytes a streamed line may take, for the room and free-flash checks made before it is
    written (its exact length is known only afterwards): generous per sampled value."""
    n = 256
    for k in ("meterValue", "transactionData"):
        for mv in payload.get(k) or ():
            n += 64 + 160 * len(mv.get("sampledValue") or ())
    return n


def _stream_line(path, seq, code, ref, payload, wh, t):
    """Append one J2 line with the JSON body streamed by json.dump straight into the file, so
    no copy of the payload is made (a 1 KB MeterValues line would otherwise need a 1 KB block
    of a fragmented heap: measured, the first thing to fail on a small heap). The body's
    length, known only afterwards, goes into a fixed-width field; the newline is written last
    and commits the line. Returns the bytes written."""
    head = ("J2 %d %s %d %d %d " % (seq, code, ref, wh, t)).encode()
    try:
        f = open(path, "r+b")
    except OSError:
        f = open(path, "w+b")
    try:
        end = f.seek(0, 2)
        f.write(head)
        f.write(b"000000 ")
        json.dump(payload, f, separators=(",", ":"))
        n = f.tell() - end - len(head) - 7
        f.seek(end + len(head))
        f.write(b"%06d" % n)
        f.seek(0, 2)
        f.write(b"\n")
        _sync(f)
    finally:
        f.close()
    return len(head) + 7 + n + 1


def _header(raw):
    """(seq, code, ref, body, wh, t) of a line (wh and t None for J1, wh None when unknown),
    or None when torn, corrupt or of an unknown format."""
    try:
        if raw[-1:] != b"\n":
            return None
        if raw[:3] == b"J2 ":
            parts = raw[:-1].split(b" ", 7)
            h = _j2(parts) if len(parts) == 8 else None
            if h is None or len(parts[7]) != h[5]:
                return None
            return h[0], h[1], h[2], parts[7], h[3], h[4]
        if raw[:3] != b"J1 ":
            return None  # a future format: quarantined, never guessed
        parts = raw[:-1].split(b" ", 5)
        if len(parts) != 6:
            return None
        code = parts[2].decode()
        body = parts[5]
        if code not in _ACTIONS or len(body) != int(parts[4]):
            return None
        return int(parts[1]), code, int(parts[3]), body, None, None
    except MemoryError:
        raise  # our shortage, not a damaged line: never quarantine an entry for it
    except Exception:  # noqa: BLE001 - any damage means "unreadable", never a crash
        return None


def _j2(parts):
    """(seq, code, ref, wh, t, body length) from the fields of a J2 line split at its
    spaces (wh None when unknown), or None for an unknown code; ValueError when damaged.
    Read by _header (a whole line) and Journal._read_j2 (the head of one)."""
    code = parts[2].decode()
    if code not in _ACTIONS:
        return None
    wh = int(parts[4])
    return int(parts[1]), code, int(parts[3]), None if wh < 0 else wh, int(parts[5]), \
        int(parts[6])


def _parse(raw):
    """(seq, code, ref, payload, wh, t) or None."""
    h = _header(raw)
    if h is None:
        return None
    try:
        p = json.loads(h[3])
    except MemoryError:
        raise  # no room to parse it now: the entry stays, the caller tries again later
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(p, dict):
        return None
    return h[0], h[1], h[2], p, h[4], h[5]


def retry_wait(n, attempts, interval):
    """Seconds to wait after the n-th failure in a row (n >= 1) of the head: OCPP 1.6 §4.7's
    interval x failures while n < attempts, then doubling from attempts x interval, capped
    at an hour (or at attempts x interval when that is longer)."""
    a = max(1, attempts)
    if n < a:
        return n * interval
    first = a * interval
    return min(first << min(n - a, 16), max(_RETRY_CAP_S, first))


class Journal:
    def __init__(self, data_dir, max_bytes=_MAX_BYTES, open_every_s=_OPEN_EVERY_S):
        # Its fields, then the queue as flash holds it (journal_load.py, lent for the boot).
        lend("firmware.transactions.journal_load").init(self, data_dir, max_bytes, open_every_s)

    # ---- public: producing entries

    def start(self, connector, id_tag, meter_start, now, timestamp=None, reservation_id=None):
        """Journal StartTransaction; returns the local transaction reference."""
        if connector in self._open:
            raise ValueError("transaction already open on connector %d" % connector)
        ref = self._next
        ts = timestamp or _rfc3339(now)
        p = start_transaction.payload(connector, id_tag, meter_start, ts, reservation_id)
        rec = {"v": FORMAT, "r": ref, "c": connector, "i": id_tag, "ms": meter_start,
               "ts": ts, "m": meter_start, "t": now}
        # Record first: a cut before the append leaves a record without a Start -> dropped.
        self._save_open(rec, now)
        self._open[connector] = rec
        try:
            self._append("S", ref, p, meter_start, now)
        except Exception:
            self._drop_open(connector)  # no Start: the connector must stay usable
            raise
        return ref

    def meter(self, connector, wh, now):
        """Last known meter reading; persisted when the last persisted one (record or
        MeterValues line) is more than `open_every_s` + 5 s old."""
        rec = self._open.get(connector)
        if rec is None or wh < rec["m"]:
            return
        rec["m"] = wh
        rec["t"] = now
        last = self._saved.get(connector)
        if last is None or now - last >= self.open_every_s + _GRACE_S:
            self._save_open(rec, now)

    def meter_values(self, connector, meter_value, now, wh=None):
        """Journal MeterValues of the open transaction on `connector`; returns its seq.
        `wh` (the register reading) is stored in the line: recover() never stops below it."""
        rec = self._open.get(connector)
        if rec is None:
            raise ValueError("no transaction on connector %d" % connector)
        known = wh is not None and wh >= rec["m"]
        seq = self._append("M", rec["r"], meter_values.payload(connector, meter_value),
                           wh if known else -1, now)
        if known:
            rec["m"] = wh
            rec["t"] = now
            self._saved[connector] = now
        return seq

    def stop(self, connector, meter_stop, now, reason=None, id_tag=None, timestamp=None,
             transaction_data=None):
        """Journal StopTransaction and close the open record; returns its seq."""
        rec = self._open.get(connector)
        if rec is None:
            raise ValueError("no transaction on connector %d" % connector)
        p = stop_transaction.payload(meter_stop, timestamp or _rfc3339(now), reason, id_tag,
                                     transaction_data)
        seq = self._append("T", rec["r"], p, meter_stop, now)
        self._drop_open(connector)  # a cut before this: recover() sees the Stop and skips
        return seq

    def recover(self, now):
        """At boot, before any new session: stop every transaction a power cut left open
        (reason PowerLoss, last known meter and time). Returns the payloads enqueued."""
        out = []
        for c in sorted(self._open):
            rec = self._open[c]
            ref = rec["r"]
            if ref in self._stops:
                pass
            elif ref in self._starts or ref in self._tx:
                out.append(self._power_loss(ref, rec["m"], rec["t"]))
            else:
                log.warning(_TAG, "open record", ref, "without a journaled Start: dropped")
            self._drop_open(c)
        for ref in sorted(self._orphans):
            wh, t = self._orphans[ref]
            log.error(_TAG, "transaction", ref, "lost its open record")
            out.append(self._power_loss(ref, wh, t))
            del self._orphans[ref]
        return out

    # ---- public: delivery

    def peek(self, now=None):
        """The next entry to send as {"seq", "action", "payload", "ref"}, with the
        transactionId filled in; None when empty or (given `now`) before its retry time."""
        for _ in range(64):  # bounded skipping of dropped entries per call
            h = self._head_entry()
            if h is None:
                return None
            seq, code, ref, payload = h[0], h[1], h[2], h[3]
            if code != "S":
                # FIFO: its Start left the queue before it; acked -> id, failed -> None.
                if ref not in self._tx:
                    log.error(_TAG, "no transactionId for ref", ref, "- quarantine", seq)
                    self._quarantine_head()
                    continue
                txid = self._tx[ref]
                if txid is None:  # journals of older firmware gave Starts up
                    log.error(_TAG, "drop", _ACTIONS[code], seq, "of a Start given up", ref)
                    self._advance(seq, code, ref, gave_up=True)
                    continue
                payload["transactionId"] = txid
            due = self._due
            # A due further away than its wait: the clock was set back; retry now.
            if (now is not None and due is not None and now < due
                    and due - now <= self._wait(self._tries[1])):
                return None
            return {"seq": seq, "action": _ACTIONS[code], "payload": payload, "ref": ref}
        return None

    def due(self):
        """Time (s) before which the head must not be re-sent, or None."""
        return self._due

    def ack(self, seq, response):
        """The central system answered the head entry with CALLRESULT `response`.
        False when `seq` is not the head or a StartTransaction answer has no transactionId
        (treat that as a failure). Raises OSError (state unchanged) when flash fails."""
        h = self._head_entry()
        if h is None or h[0] != seq:
            log.warning(_TAG, "ack of", seq, "which is not the head")
            return False
        code, ref = h[1], h[2]
        if code == "S":
            txid = response.get("transactionId") if isinstance(response, dict) else None
            if not isinstance(txid, int) or isinstance(txid, bool):
                log.error(_TAG, "StartTransaction answer without transactionId")
                return False
            self._advance(seq, code, ref, True, txid)
        else:
            self._advance(seq, code, ref)
        return True

    def failed(self, seq, now, timeout=False):
        """The head entry `seq` was not delivered: CALLERROR, a malformed answer, or (with
        timeout=True) no answer within the call timeout: each is one attempt. Returns
        (retry, at): retry not before `at` (retry_wait()), or (False, now) when a
        MeterValues was given up after `attempts` attempts (counted in `dropped`). A Start
        or Stop is never given up."""
        h = self._head_entry()
        if h is None or h[0] != seq:
            return False, now
        n = (self._tries[1] if self._tries[0] == seq else 0) + 1
        code, ref = h[1], h[2]
        if code == "M" and n >= max(1, self.attempts):
            log.error(_TAG, "gave up", _ACTIONS[code], seq, "after", n, "attempts",
                      "(last: no answer)" if timeout else "")
            self._advance(seq, code, ref, gave_up=True)
            return False, now
        self._tries = (seq, n)
        self._due = now + self._wait(n)
        return True, self._due

    def _wait(self, n):
        return retry_wait(n, self.attempts, self.retry_interval)

    def failures(self):
        """Failed attempts in a row of the head entry (0 when it has none; reset whenever the
        head leaves). Reads nothing: the API asks it."""
        return self._tries[1]

    # ---- public: state

    def transaction_id(self, connector):
        """transactionId of the open transaction on `connector` (None until known)."""
        rec = self._open.get(connector)
        return None if rec is None else self._tx.get(rec["r"])

    def open_transaction(self, connector):
        rec = self._open.get(connector)
        return None if rec is None else dict(rec)

    def reservation_used(self, reservation_id, since):
        """True when a StartTransaction journaled at or after `since` (Unix s) carries
        `reservation_id`. Asked once at boot by the reservation feature (firmware/
        reservation.py): a power cut between such a Start and the end of its reservation
        must not leave the reservation standing."""
        for _, raw in self._lines(0):
            h = _header(raw)
            if h is None or h[1] != "S" or h[5] is None or h[5] < since:
                continue
            if b'"reservationId"' in h[3]:
                try:
                    if json.loads(h[3]).get("reservationId") == reservation_id:
                        return True
                except Exception:  # noqa: BLE001 - an unreadable line is not that Start
                    pass
        return False

    def __len__(self):
        return self._live

    def live_bytes(self):
        return self._size - self._head_off

    def full(self):
        """True when what cannot be thinned fills the budget: refuse new sessions. False again
        as soon as delivered entries leave room for one."""
        return self._full and self.live_bytes() + _SESSION_BYTES > self.max_bytes

    # ---- internals

    def _power_loss(self, ref, wh, t):
        p = stop_transaction.payload(wh, _rfc3339(t), "PowerLoss")
        self._append("T", ref, p, wh, t)
        log.info(_TAG, "transaction", ref, "ended by PowerLoss at", wh, "Wh")
        return p

    def _check_free(self, n):
        free = fs.free_bytes(self._dir)
        if free is not None and free < n + _FREE_MIN:
            log.error(_TAG, "flash full:", free, "B free,", n, "B to write")
            raise OSError(_ENOSPC, "journal: flash full (%d B free, %d B needed)"
                          % (free, n + _FREE_MIN))

    def _save_open(self, rec, now):
        fs.write_atomic(self._dir + "/o%d.json" % rec["c"], _dumps(rec).encode())
        self._saved[rec["c"]] = now
        self._flash[rec["c"]] = (rec["m"], rec["t"])
        self.writes += 1

    def _flush_open(self):
        """Persist records older than RAM (before lines holding newer readings go)."""
        for c in self._open:
            rec = self._open[c]
            if self._flash.get(c) != (rec["m"], rec["t"]):
                self._save_open(rec, rec["t"])

    def _drop_open(self, c):
        self._open.pop(c, None)
        self._saved.pop(c, None)
        self._flash.pop(c, None)
        if _remove(self._dir + "/o%d.json" % c):
            self.writes += 1

    def _save_meta(self, ack, tx, dropped):
        t = {}
        for k in tx:
            t[str(k)] = tx[k]
        o = {}
        for c in self._open:
            rec = self._open[c]
            o[str(rec["r"])] = [rec["m"], rec["t"]]
        slot = 1 - self._slot
        data = {"v": FORMAT, "n": self._mn + 1, "ack": ack, "tx": t, "o": o, "d": dropped}
        fs.write_atomic(self._dir + "/" + _METAS[slot], _dumps(data).encode())
        self._mn += 1
        self._slot = slot
        self.writes += 1

    def _append(self, code, ref, payload, wh, t):
        seq = self._next
        if self._torn:  # a failed append left a partial line: never write after it
            self._rewrite(None)
            self._torn = False
        wh = -1 if wh is None else wh
        if MICROPYTHON:
            size = _estimate(payload)
        else:  # CPython: the line in one piece (heap is not scarce there)
            raw = _encode(seq, code, ref, payload, wh, t)
            size = len(raw)
        self._make_room(size)
        self._check_free(size)
        try:
            if MICROPYTHON:
                size = _stream_line(self._log, seq, code, ref, payload, wh, t)
            else:
                with open(self._log, "ab") as f:
                    f.write(raw)
                    _sync(f)
        except Exception as e:  # OSError, or MemoryError in the middle of the line
            log.failed(_TAG, "append failed", e)
            self._torn = True
            self._rewrite(None)  # cut the partial line
            self._torn = False
            raise
        self._next = seq + 1
        self.writes += 1
        self._size += size
        self._live += 1
        if code == "S":
            self._starts.add(ref)
        elif code == "T":
            self._stops.add(ref)
        return seq

    def _head_entry(self):
        if self._head is None and self._head_off < self._size:
            with open(self._log, "rb") as f:
                f.seek(self._head_off)
                self._head = self._read_j2(f)
                if self._head is not None:
                    return self._head[0]
                f.seek(self._head_off)
                raw = f.readline()
            e = _parse(raw)
            if e is None:  # damaged after load (flash error): never block the queue
                log.error(_TAG, "unreadable entry at", self._head_off, "- quarantined")
                self._quarantine(raw)
                self._head_off += len(raw) or (self._size - self._head_off)
                self._live -= 1
                return self._head_entry()
            self._head = (e, len(raw))
        return None if self._head is None else self._head[0]

    def _read_j2(self, f):
        """The J2 line at f's position as (entry, line length), its body read into
        compat.scratch() (taken at boot; a longer line gets its own block), so sending an
        entry allocates no line-sized block in a heap that is fragmented by then (a readline
        plus the header's copies of the body were three ~0.8 KB blocks, the first thing to
        fail under memory pressure). None for anything but a whole, well-formed J2 line:
        the caller then reads it with readline and _parse, which decide as before."""
        h = f.read(_J2_HEAD)
        parts = h.split(b" ", 7)
        if len(parts) != 8 or parts[0] != b"J2":
            return None
        try:
            h6 = _j2(parts)
        except ValueError:
            return None
        if h6 is None or h6[5] < 0:
            return None
        n = h6[5]
        head = len(h) - len(parts[7])
        if h.find(b"\n", 0, head) >= 0:
            return None
        # (no await below: scratch() is ours meanwhile)
        buf = scratch() if n < SCRATCH_BYTES else bytearray(n + 1)
        mv = memoryview(buf)
        f.seek(f.tell() - len(parts[7]))
        got = f.readinto(mv[: n + 1])
        # A body is JSON without raw newlines: the first newline must be the one after it.
        if got != n + 1 or buf[n] != 10 or buf.find(b"\n", 0, n) >= 0:
            return None
        try:
            p = json.loads(mv[:n] if MICROPYTHON else bytes(mv[:n]))
        except MemoryError:
            raise  # no room to parse it now: the entry stays, the caller tries again later
        except Exception:  # noqa: BLE001 - damaged: readline and _parse decide
            return None
        if not isinstance(p, dict):
            return None
        return (h6[0], h6[1], h6[2], p, h6[3], h6[4]), head + n + 1

    def _quarantine_head(self):
        e = self._head[0]
        self._quarantine(_encode(e[0], e[1], e[2], e[3], -1 if e[4] is None else e[4],
                                 e[5] or 0))
        self._advance(e[0], e[1], e[2], gave_up=True)

    def _advance(self, seq, code, ref, set_tx=False, txid=None, gave_up=False):
        """The head `seq` leaves the queue: one meta write (watermark, transactionIds, the
        count of entries never delivered), made before any RAM state changes, so a flash
        error leaves everything as it was."""
        n = self._head[1]
        tx = dict(self._tx)
        if set_tx:
            tx[ref] = txid
        if code == "T":
            tx.pop(ref, None)
        dropped = self.dropped + (1 if gave_up else 0)
        self._save_meta(seq, tx, dropped)  # raises: nothing changed
        self.dropped = dropped
        self._tx = tx
        self._ack = seq
        if code == "S":
            self._starts.discard(ref)
        elif code == "T":
            self._stops.discard(ref)
        self._head = None
        self._head_off += n
        self._live -= 1
        self._tries = (0, 0)
        self._due = None
        if self._head_off >= self._size and self._size >= _COMPACT_BYTES:
            # The meta just written holds the open transactions' readings ("o").
            if _remove(self._log):
                self.writes += 1
                self._size = self._head_off = 0

    def _quarantine(self, raw):
        path = self._dir + "/bad.log"
        if _size(path) + len(raw) > _BAD_MAX:
            log.error(_TAG, "quarantine full, oldest quarantined lines discarded")
            _remove(path)
        with open(path, "ab") as f:
            f.write(raw if raw[-1:] == b"\n" else raw + b"\n")
        self.writes += 1

    def _lines(self, start):
        """Yield (offset, raw) of every line from `start`."""
        try:
            f = open(self._log, "rb")
        except OSError:
            return
        try:
            f.seek(start)
            off = start
            while True:
                raw = f.readline()
                if not raw:
                    break
                yield off, raw
                off += len(raw)
        finally:
            f.close()

    def _rewrite(self, drop):
        """The live entries (minus drop(header) ones) to a new segment
        (firmware/transactions/journal_compact.py, lent for it)."""
        lend(_REWRITES).rewrite(self, drop)

    def _make_room(self, n):
        if self.live_bytes() + n <= self.max_bytes and self._head_off <= self.max_bytes // 2:
            self._full = False  # what nearly every entry finds: nothing to do
            return
        lend(_REWRITES).make_room(self, n)
