"""Transaction journal: OCPP transaction messages on flash, written before they are sent.

StartTransaction, MeterValues inside a transaction and StopTransaction go through here; every
other message does not. An entry is appended before it is sent and leaves only when the central
system has answered (`ack`) or TransactionMessageAttempts CALLERRORs were spent (`failed`).
Delivery is FIFO across outages and reboots (OCPP 1.6 §4.7 / 3.7).

Sender loop::

    e = j.peek(now)           # head entry, transactionId filled in; None if empty or waiting
    ... rpc.call(e["action"], e["payload"]) ...
    j.ack(e["seq"], response)                  # CALLRESULT
    retry, at = j.failed(e["seq"], now)        # CALLERROR: wait until `at`, or it was dropped
    # timeout / lost link: do nothing, the head is sent again on the next connection

Transaction references: Stop and MeterValues may be journaled before StartTransaction.conf
exists (offline session), so entries carry a local reference `ref` (the Start's seq) and
`peek` fills in the transactionId the central system gave. A StartTransaction dropped after
TransactionMessageAttempts CALLERRORs leaves no transactionId: its MeterValues and Stop are
dropped too (log.error), since the central system never knew the transaction and a Stop with
an invented id would be refused as well (MicroOcpp does the same). A transaction whose Start
is journaled is always stopped exactly once: by `stop`, or by `recover` after a power cut.

Files under <data_dir>/journal/ (littlefs; why: see the bench notes in the tests):
- q.log: append-only segment, one line per entry `J1 <seq> <S|M|T> <ref> <len> <json>`;
  the payload is frozen at append time and re-sent verbatim (a Start sent again after a cut
  between the answer and the ack is identical in every field).
- meta.json: {"v", "ack": last seq acknowledged, "tx": {ref: transactionId or null}}, written
  atomically once per ack (the ack watermark and the transactionId land in one write).
- o<connector>.json: the open-transaction record (ref, idTag, meterStart, start time, last
  meter Wh and time), written at start, at every journaled MeterValues and at most every
  `open_every_s` seconds from `meter()`; removed after the Stop is journaled. `recover(now)`
  turns a left-over record into StopTransaction reason PowerLoss with the last known meter.
- bad.log: quarantined lines (corrupt, torn, unknown format), kept up to 16 KiB.
Small files are replaced with fs.write_atomic (temporary file, then rename).
Writes per entry: 1 append + 1 meta write at ack (+1 open record for Start/MeterValues).
`writes` counts every file write, rename and removal.

Full-flash policy (live bytes > `max_bytes`, default 64 KiB): 1) every other MeterValues of
the oldest transaction that has at least three (its first and last are kept), repeated;
2) then the oldest MeterValues overall; 3) Start and Stop are never dropped: they are kept
beyond the budget, `full()` turns True and the app should refuse new sessions. Capacity at
the default budget, measured (test_journal.py prints it): ~310 offline transactions of
Start (112 B) + Stop (94 B), or ~5.4 hours of one-measurand MeterValues (203 B) at
MeterValueSampleInterval 60 s before thinning starts; thinning then halves the resolution of
the oldest data, so a transaction is never lost. Flash cost, measured on littlefs (4 KiB
blocks): a 1 h online session with 60 MeterValues = 188 writes, 76 block erases. One segment
file rather than one file per entry: littlefs inlines only files up to ~128 B, so every
entry file would hold a whole 4 KiB block (64 KiB would keep ~16 entries instead of ~300).
Format versions: lines carry `J1`, meta.json carries "v"; older formats are
migrated on load, unreadable entries quarantined, never wiped.
"""

import json
import os
import time

import fs
import log
from compat import const, epoch_offset

_FORMAT = const(1)
_MAX_BYTES = const(65536)
_OPEN_EVERY_S = const(60)
_COMPACT_BYTES = const(4096)
_BAD_MAX = const(16384)
_THIN_PASSES = const(16)

_ACTIONS = {"S": "StartTransaction", "M": "MeterValues", "T": "StopTransaction"}
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


def _encode(seq, code, ref, payload):
    body = _dumps(payload).encode()
    return ("J1 %d %s %d %d " % (seq, code, ref, len(body))).encode() + body + b"\n"


def _header(raw):
    """(seq, code, ref, body) of a line, or None when torn, corrupt or of an unknown format."""
    try:
        if raw[-1:] != b"\n":
            return None
        parts = raw[:-1].split(b" ", 5)
        if len(parts) != 6 or parts[0] != b"J1":
            return None  # J2+ would be migrated here; J1 is the first format
        code = parts[2].decode()
        body = parts[5]
        if code not in _ACTIONS or len(body) != int(parts[4]):
            return None
        return int(parts[1]), code, int(parts[3]), body
    except Exception:  # noqa: BLE001 - any damage means "unreadable", never a crash
        return None


def _parse(raw):
    h = _header(raw)
    if h is None:
        return None
    try:
        p = json.loads(h[3])
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(p, dict):
        return None
    return h[0], h[1], h[2], p


class Journal:
    def __init__(self, data_dir, max_bytes=_MAX_BYTES, open_every_s=_OPEN_EVERY_S):
        self._dir = data_dir.rstrip("/") + "/journal"
        fs.makedirs(self._dir)
        fs.cleanup(self._dir)
        self._log = self._dir + "/q.log"
        self._meta = self._dir + "/meta.json"
        self.max_bytes = max_bytes
        self.open_every_s = open_every_s
        self.attempts = 3  # TransactionMessageAttempts
        self.retry_interval = 60  # TransactionMessageRetryInterval, s
        self.writes = 0
        self.dropped = 0
        self._ack = 0
        self._tx = {}
        self._open = {}
        self._saved = {}
        self._size = 0
        self._head_off = 0
        self._head = None
        self._live = 0
        self._starts = set()
        self._stops = set()
        self._tries = (0, 0)
        self._due = None
        self._full = False
        self._load()

    # ---- public: producing entries

    def start(self, connector, id_tag, meter_start, now, timestamp=None, reservation_id=None):
        """Journal StartTransaction; returns the local transaction reference."""
        if connector in self._open:
            raise ValueError("transaction already open on connector %d" % connector)
        ref = self._next
        ts = timestamp or _rfc3339(now)
        p = {"connectorId": connector, "idTag": id_tag, "meterStart": meter_start, "timestamp": ts}
        if reservation_id is not None:
            p["reservationId"] = reservation_id
        rec = {"v": _FORMAT, "r": ref, "c": connector, "i": id_tag, "ms": meter_start,
               "ts": ts, "m": meter_start, "t": now}
        # Record first: a cut before the append leaves a record without a Start -> dropped.
        self._open[connector] = rec
        self._save_open(rec, now)
        self._append("S", ref, p)
        return ref

    def meter(self, connector, wh, now):
        """Last known meter reading; persisted at most every `open_every_s` seconds."""
        rec = self._open.get(connector)
        if rec is None or wh < rec["m"]:
            return
        rec["m"] = wh
        rec["t"] = now
        last = self._saved.get(connector)
        if last is None or now - last >= self.open_every_s:
            self._save_open(rec, now)

    def meter_values(self, connector, meter_value, now, wh=None):
        """Journal MeterValues of the open transaction on `connector`; returns its seq."""
        rec = self._open.get(connector)
        if rec is None:
            raise ValueError("no transaction on connector %d" % connector)
        if wh is not None and wh >= rec["m"]:
            rec["m"] = wh
            rec["t"] = now
            self._save_open(rec, now)  # before the entry: meterStop never below a sent value
        return self._append("M", rec["r"], {"connectorId": connector, "meterValue": meter_value})

    def stop(self, connector, meter_stop, now, reason=None, id_tag=None, timestamp=None,
             transaction_data=None):
        """Journal StopTransaction and close the open record; returns its seq."""
        rec = self._open.get(connector)
        if rec is None:
            raise ValueError("no transaction on connector %d" % connector)
        p = {"meterStop": meter_stop, "timestamp": timestamp or _rfc3339(now)}
        if reason:
            p["reason"] = reason
        if id_tag:
            p["idTag"] = id_tag
        if transaction_data:
            p["transactionData"] = transaction_data
        seq = self._append("T", rec["r"], p)
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
                p = {"meterStop": rec["m"], "timestamp": _rfc3339(rec["t"]), "reason": "PowerLoss"}
                self._append("T", ref, p)
                out.append(p)
                log.info(_TAG, "transaction", ref, "ended by PowerLoss at", rec["m"], "Wh")
            else:
                log.warning(_TAG, "open record", ref, "without a journaled Start: dropped")
            self._drop_open(c)
        return out

    # ---- public: delivery

    def peek(self, now=None):
        """The next entry to send as {"seq", "action", "payload", "ref"}, with the
        transactionId filled in; None when empty or (given `now`) before its retry time."""
        for _ in range(64):  # bounded skipping of dropped entries per call
            h = self._head_entry()
            if h is None:
                return None
            seq, code, ref, payload = h
            if code != "S":
                if ref in self._tx:
                    txid = self._tx[ref]
                    if txid is None:
                        log.error(_TAG, "drop", _ACTIONS[code], seq, "of failed Start", ref)
                        self._advance(seq, code, ref)
                        continue
                    payload["transactionId"] = txid
                elif ref not in self._starts:
                    log.error(_TAG, "no transactionId for ref", ref, "- quarantine", seq)
                    self._quarantine_head()
                    continue
            if now is not None and self._due is not None and now < self._due:
                return None
            return {"seq": seq, "action": _ACTIONS[code], "payload": payload, "ref": ref}
        return None

    def due(self):
        """Time (s) before which the head must not be re-sent, or None."""
        return self._due

    def ack(self, seq, response):
        """The central system answered the head entry with CALLRESULT `response`.
        False when `seq` is not the head or a StartTransaction answer has no transactionId
        (treat that as a failure)."""
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
            self._tx[ref] = txid
        self._advance(seq, code, ref)
        return True

    def failed(self, seq, now):
        """CALLERROR for the head entry. Returns (retry, at): retry after `at` (attempt n waits
        n x retry_interval, OCPP 1.6 §4.7), or (False, now) when the entry was dropped."""
        h = self._head_entry()
        if h is None or h[0] != seq:
            return False, now
        n = (self._tries[1] if self._tries[0] == seq else 0) + 1
        self._tries = (seq, n)
        if n >= max(1, self.attempts):
            code, ref = h[1], h[2]
            log.error(_TAG, "drop", _ACTIONS[code], seq, "after", n, "attempts")
            if code == "S":
                self._tx[ref] = None  # its MeterValues and Stop are dropped in turn
            self._advance(seq, code, ref)
            return False, now
        self._due = now + n * self.retry_interval
        return True, self._due

    # ---- public: state

    def transaction_id(self, connector):
        """transactionId of the open transaction on `connector` (None until known)."""
        rec = self._open.get(connector)
        return None if rec is None else self._tx.get(rec["r"])

    def open_transaction(self, connector):
        rec = self._open.get(connector)
        return None if rec is None else dict(rec)

    def __len__(self):
        return self._live

    def live_bytes(self):
        return self._size - self._head_off

    def full(self):
        """True when only Start/Stop entries fill the budget: refuse new sessions."""
        return self._full

    # ---- internals

    def _save_open(self, rec, now):
        fs.write_atomic(self._dir + "/o%d.json" % rec["c"], _dumps(rec).encode())
        self._saved[rec["c"]] = now
        self.writes += 1

    def _drop_open(self, c):
        self._open.pop(c, None)
        self._saved.pop(c, None)
        if _remove(self._dir + "/o%d.json" % c):
            self.writes += 1

    def _save_meta(self):
        tx = {}
        for k in self._tx:
            tx[str(k)] = self._tx[k]
        fs.write_atomic(self._meta, _dumps({"v": _FORMAT, "ack": self._ack, "tx": tx}).encode())
        self.writes += 1

    def _append(self, code, ref, payload):
        seq = self._next
        raw = _encode(seq, code, ref, payload)
        self._make_room(len(raw))
        try:
            with open(self._log, "ab") as f:
                f.write(raw)
                _sync(f)
        except OSError as e:
            log.error(_TAG, "append failed", e)
            self._rewrite(None)  # cut any partial line
            raise
        self._next = seq + 1
        self.writes += 1
        self._size += len(raw)
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

    def _quarantine_head(self):
        e, n = self._head
        self._quarantine(_encode(e[0], e[1], e[2], e[3]))
        self.dropped += 1
        self._advance(e[0], e[1], e[2])

    def _advance(self, seq, code, ref):
        """The head `seq` leaves the queue: one meta write (watermark + transactionIds)."""
        n = self._head[1]
        if code == "S":
            self._starts.discard(ref)
        elif code == "T":
            self._stops.discard(ref)
            self._tx.pop(ref, None)
        self._ack = seq
        self._save_meta()
        self._head = None
        self._head_off += n
        self._live -= 1
        self._tries = (0, 0)
        self._due = None
        if self._head_off >= self._size and self._size >= _COMPACT_BYTES:
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
        """Copy the live entries (minus drop(seq, code, ref) ones and unreadable lines) to a
        new segment, atomically replacing the old one."""
        tmp = self._log + ".new"
        size = live = 0
        with open(tmp, "wb") as out:
            for _, raw in self._lines(self._head_off):
                h = _header(raw)
                if h is None:
                    log.error(_TAG, "torn or unreadable line quarantined")
                    self._quarantine(raw)
                    continue
                if drop is not None and live and drop(h[0], h[1], h[2]):  # never the head
                    self.dropped += 1
                    continue
                out.write(raw)
                size += len(raw)
                live += 1
            _sync(out)
        os.rename(tmp, self._log)
        self.writes += 1
        self._size, self._head_off, self._live = size, 0, live
        self._head = None

    def _make_room(self, n):
        if self._head_off > self.max_bytes // 2:
            self._rewrite(None)  # drop the acknowledged prefix
        for _ in range(_THIN_PASSES):
            if self._size - self._head_off + n <= self.max_bytes:
                self._full = False
                return
            if not self._thin():
                if not self._full:
                    log.error(_TAG, "full: only Start/Stop left, kept beyond the budget")
                self._full = True
                return

    def _thin(self):
        counts = {}
        oldest = None
        head = True
        for _, raw in self._lines(self._head_off):
            h = _header(raw)
            if head or h is None:
                head = False
                continue
            if h[1] == "M":
                counts[h[2]] = counts.get(h[2], 0) + 1
                if oldest is None:
                    oldest = h[0]
        victim = None
        for ref in counts:
            if counts[ref] >= 3 and (victim is None or ref < victim):
                victim = ref
        if victim is not None:
            total = counts[victim]
            idx = [0]

            def drop(seq, code, ref):
                if code != "M" or ref != victim:
                    return False
                i = idx[0]
                idx[0] = i + 1
                return i & 1 == 1 and i != total - 1

            log.warning(_TAG, "full: thinning MeterValues of transaction", victim)
        elif oldest is not None:

            def drop(seq, code, ref):
                return seq == oldest

            log.warning(_TAG, "full: dropping MeterValues", oldest)
        else:
            return False
        self._rewrite(drop)
        return True

    def _load(self):
        try:
            m = _read_json(self._meta)
            v = m.get("v", 0)
            if v > _FORMAT:
                log.warning(_TAG, "meta format", v, "is newer than", _FORMAT, "- reading it")
            # v0 (no "v"): same fields; it is rewritten as v1 on the next ack.
            self._ack = int(m.get("ack", 0))
            tx = m.get("tx") or {}
            for k in tx:
                t = tx[k]
                self._tx[int(k)] = t if isinstance(t, int) else None
        except OSError:
            pass
        except Exception as e:  # noqa: BLE001 - corrupt: keep it aside, never boot-loop
            log.error(_TAG, "meta.json unreadable, kept as meta.bad:", e)
            try:
                os.rename(self._meta, self._dir + "/meta.bad")
            except OSError:
                pass
        top = self._ack
        bad = False
        head_off = None
        size = 0
        for off, raw in self._lines(0):
            size = off + len(raw)
            e = _parse(raw)
            if e is None:
                bad = True
                continue
            seq, code, ref = e[0], e[1], e[2]
            if seq > top:
                top = seq
            if seq <= self._ack:
                continue
            if head_off is None:
                head_off = off
            self._live += 1
            if code == "S":
                self._starts.add(ref)
            elif code == "T":
                self._stops.add(ref)
        self._size = size
        self._head_off = size if head_off is None else head_off
        if bad:
            self._rewrite(None)
        names = os.listdir(self._dir)
        for name in names:
            if name.endswith(".json.tmp") and name[:-4] not in names:
                name = name[:-4]  # FAT: the rename was cut; _read_json takes the .tmp
            if name[0] == "o" and name.endswith(".json"):
                path = self._dir + "/" + name
                try:
                    rec = _read_json(path)
                    c = int(rec["c"])
                    int(rec["r"])
                    int(rec["m"])
                    int(rec["t"])
                    self._open[c] = rec
                except Exception as e:  # noqa: BLE001
                    log.error(_TAG, name, "unreadable, kept as .bad:", e)
                    try:
                        os.rename(path, path + ".bad")
                    except OSError:
                        pass
        for k in self._tx:
            top = max(top, k)
        for c in self._open:
            top = max(top, self._open[c]["r"])
        self._next = top + 1
