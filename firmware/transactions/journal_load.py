"""The loading of the transaction journal at boot (firmware/transactions/journal.py): the
fields Journal.__init__ sets, the newer of the two meta files, the open-transaction records,
and the scan of the log that rebuilds the queue (the head, the live count, the next
sequence, the orphans recover() finishes). Lent by Journal.__init__ (compat.lend) and let go
after: a charger holds only what runs every day (2.3 KB less heap from .mpy, 32-bit).
"""

import os

import fs
import log
from firmware.transactions.journal import (
    _METAS,
    _TAG,
    FORMAT,
    _header,
    _parse,
    _read_json,
    _remove,
)


def _newer(a, b):
    """The newer of two (wh, t) readings (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return (max(a[0], b[0]), max(a[1], b[1]))


def _meta(j):
    best = None
    for i in range(2):
        path = j._dir + "/" + _METAS[i]
        try:
            m = _read_json(path)
            n = int(m.get("n", -1))
            int(m.get("ack", 0))
        except OSError:
            continue
        except Exception as e:  # noqa: BLE001 - corrupt: keep it aside, never boot-loop
            log.error(_TAG, _METAS[i], "unreadable, kept as .bad:", e)
            try:
                os.rename(path, path[:-5] + ".bad")
            except OSError:
                pass
            continue
        if best is None or n > best[0]:
            best = (n, i, m)
    if best is None:
        return {}
    n, i, m = best
    v = m.get("v", 0)
    if v > FORMAT:
        log.warning(_TAG, "meta format", v, "is newer than", FORMAT, "- reading it")
    # v0 (no "v") and v1 (no "n", "o"): same fields; rewritten as v2 on the next ack.
    j._mn = max(n, 0)
    j._slot = i
    j._ack = int(m.get("ack", 0))
    try:
        j.dropped = max(0, int(m.get("d", 0)))
    except Exception:  # noqa: BLE001 - only a counter
        pass
    tx = m.get("tx") or {}
    for k in tx:
        t = tx[k]
        j._tx[int(k)] = t if isinstance(t, int) else None
    out = {}
    o = m.get("o") or {}
    try:
        for k in o:
            out[int(k)] = (int(o[k][0]), int(o[k][1]))
    except Exception:  # noqa: BLE001 - only a hint for recover()
        pass
    return out


def init(j, data_dir, max_bytes, open_every_s):
    """Journal.__init__'s fields (its bytecode lent with this module, not held for good),
    then load()."""
    j._dir = data_dir.rstrip("/") + "/journal"
    fs.makedirs(j._dir)
    fs.cleanup(j._dir)
    j._log = j._dir + "/q.log"
    j.max_bytes = max_bytes
    j.open_every_s = open_every_s
    j.attempts = 3  # TransactionMessageAttempts
    j.retry_interval = 60  # TransactionMessageRetryInterval, s
    j.writes = 0
    j.dropped = 0
    j.rewrites = 0
    j._ack = 0
    j._mn = 0  # meta counter
    j._slot = 1  # meta slot written last; the next write goes to the other one
    j._tx = {}
    j._open = {}
    j._saved = {}  # connector -> time its reading was last persisted (record or line)
    j._flash = {}  # connector -> (wh, t) of the record on flash
    j._orphans = {}  # ref -> (wh, t): no record, no Stop (see recover)
    j._size = 0
    j._head_off = 0
    j._head = None
    j._live = 0
    j._starts = set()
    j._stops = set()
    j._tries = (0, 0)  # (seq, failures in a row of that head)
    j._due = None
    j._full = False
    j._torn = False  # an append failed half way and its partial line is not cut yet
    load(j)


def load(j):
    _remove(j._log + ".new")  # a rewrite cut before its rename
    seen = _meta(j)  # ref -> newest (wh, t) known of a transaction not stopped
    names = os.listdir(j._dir)
    for name in names:
        if name.endswith(".json.tmp") and name[:-4] not in names:
            name = name[:-4]  # FAT: the rename was cut; _read_json takes the .tmp
        if name[0] == "o" and name.endswith(".json"):
            path = j._dir + "/" + name
            try:
                rec = _read_json(path)
                c = int(rec["c"])
                int(rec["r"])
                int(rec["m"])
                int(rec["t"])
                j._open[c] = rec
                j._flash[c] = (rec["m"], rec["t"])
            except Exception as e:  # noqa: BLE001
                log.error(_TAG, name, "unreadable, kept as .bad:", e)
                try:
                    os.rename(path, path + ".bad")
                except OSError:
                    pass
    top = j._ack
    bad = False
    head_off = None
    size = 0
    stopped = set()
    for off, raw in j._lines(0):
        size = off + len(raw)
        e = _header(raw)
        if e is None or (e[0] > j._ack and _parse(raw) is None):
            bad = True
            continue
        seq, code, ref = e[0], e[1], e[2]
        if seq > top:
            top = seq
        if code == "T":
            stopped.add(ref)
            seen.pop(ref, None)
        elif e[4] is not None and ref not in stopped:
            seen[ref] = _newer(seen.get(ref), (e[4], e[5]))
        if seq <= j._ack:
            continue
        if head_off is None:
            head_off = off
        j._live += 1
        if code == "S":
            j._starts.add(ref)
        elif code == "T":
            j._stops.add(ref)
    j._size = size
    j._head_off = size if head_off is None else head_off
    if bad:
        j._rewrite(None)
    refs = set()
    for c in j._open:
        rec = j._open[c]
        r = rec["r"]
        refs.add(r)
        got = _newer((rec["m"], rec["t"]), seen.get(r))
        rec["m"], rec["t"] = got[0], got[1]
    for r in seen:
        if r not in refs and r not in stopped and (r in j._tx or r in j._starts):
            j._orphans[r] = seen[r]
    for k in j._tx:
        top = max(top, k)
    for c in j._open:
        top = max(top, j._open[c]["r"])
    j._next = top + 1
