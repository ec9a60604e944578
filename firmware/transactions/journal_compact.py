"""The transaction journal's rewrites (firmware/transactions/journal.py): a new segment with
the live entries only, when the acknowledged prefix has grown past half the budget or a
torn line must go; and, when the journal is full, the thinning of the MeterValues of the
oldest transactions (every other one, then every fourth, …, first and last kept, never a
Transaction.Begin or .End sample, never a Start or a Stop). Lent by the journal
(compat.lend) for each rewrite: a charger rewrites its journal a few times a day at most,
and holds none of this in between.
"""

import os

import log
from compat import const
from firmware.transactions.journal import _TAG, _header, _sync

_ALL = const(99)  # thinning level: every droppable MeterValues of the transaction


def rewrite(j, drop):
    """Copy the live entries (minus drop(header) ones and unreadable lines) to a
    new segment, atomically replacing the old one. RAM state changes only once the new
    segment is in place."""
    if drop is not None:
        j._flush_open()  # the last MeterValues of an open transaction may go
    j._check_free(j.live_bytes())
    tmp = j._log + ".new"
    size = live = dropped = 0
    with open(tmp, "wb") as out:
        for _, raw in j._lines(j._head_off):
            h = _header(raw)
            if h is None:
                log.error(_TAG, "torn or unreadable line quarantined")
                j._quarantine(raw)
                continue
            if drop is not None and live and drop(h):  # never the head
                dropped += 1
                continue
            out.write(raw)
            size += len(raw)
            live += 1
        _sync(out)
    os.rename(tmp, j._log)
    j.writes += 1
    j.rewrites += 1
    j.dropped += dropped
    j._size, j._head_off, j._live = size, 0, live
    j._head = None


def make_room(j, n):
    """Room for an entry of n bytes within the budget (max_bytes), where there is any: the
    acknowledged prefix dropped, else the oldest transactions' MeterValues thinned; past
    it, the entry is kept all the same and the journal says it is full."""
    over = j.live_bytes() + n - j.max_bytes
    if over <= 0:
        j._full = False
        if j._head_off > j.max_bytes // 2:
            rewrite(j, None)  # drop the acknowledged prefix
        return
    plan = _plan(j, j.live_bytes() + n - j.max_bytes * 3 // 4)
    if plan is None or (plan[1] < over and plan[1] < j.max_bytes // 8):
        if j._head_off > j.max_bytes // 2:
            rewrite(j, None)  # not worth a thinning rewrite; the prefix is
    else:
        levels, saved, counts = plan
        idx = {}

        def drop(h):
            lv = levels.get(h[2], 0)
            if not lv or not _thinnable(h):
                return False
            i = idx.get(h[2], 0)
            idx[h[2]] = i + 1
            if lv >= _ALL:
                return True
            return i % (1 << lv) != 0 and i != counts[h[2]] - 1

        log.warning(_TAG, "full: thinning MeterValues of", len(levels), "transactions,",
                    saved, "B")
        rewrite(j, drop)
    if j.live_bytes() + n > j.max_bytes:
        if not j._full:
            log.error(_TAG, "full: nothing left to thin, kept beyond the budget")
        j._full = True
    else:
        j._full = False


def _plan(j, need):
    """Thinning levels {ref: level} freeing about `need` bytes, with the estimated bytes
    freed and the droppable count per ref; None when nothing can be dropped."""
    stats = {}  # ref -> [count, bytes] of droppable MeterValues (the head excluded)
    head = True
    for _, raw in j._lines(j._head_off):
        h = _header(raw)
        if h is None:
            continue
        if head:
            head = False
            continue
        if _thinnable(h):
            s = stats.get(h[2])
            if s is None:
                stats[h[2]] = [1, len(raw)]
            else:
                s[0] += 1
                s[1] += len(raw)
    refs = sorted(stats)  # refs grow with time: oldest transactions first
    levels = {}
    saved = 0
    top = 1
    for r in refs:
        top = max(top, stats[r][0])
    lv = 1
    while saved < need:
        for r in refs:
            c, b = stats[r]
            cur = levels.get(r, 0)
            gain = _kept(c, cur) - _kept(c, lv)
            if gain > 0:
                levels[r] = lv
                saved += gain * b // c
                if saved >= need:
                    break
        if lv >= _ALL:
            break
        lv = lv + 1 if (1 << lv) < top else _ALL
    if not levels:
        return None
    counts = {}
    for r in levels:
        counts[r] = stats[r][0]
    return levels, saved, counts


def _thinnable(h):
    return h[1] == "M" and b"Transaction.Begin" not in h[3] and b"Transaction.End" not in h[3]


def _kept(count, level):
    """MeterValues of a transaction left at a thinning level (first and last kept)."""
    if level >= _ALL:
        return 0
    if level == 0 or count <= 2:
        return count
    s = 1 << level
    return (count - 1) // s + 1 + (1 if (count - 1) % s else 0)
