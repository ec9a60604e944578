"""Authorization cache (OCPP 1.6 §3.5.2): idTag -> idTagInfo learnt from Authorize,
StartTransaction and StopTransaction answers, on flash.

Bounded to `max_entries`; when full, invalid entries (not Accepted, or expired) go first,
then the least recently used. `clear()` is ClearCache: it empties this cache and touches
nothing else (not the local list, not the transaction journal). Uses only refresh the LRU
order in RAM; the file is rewritten (atomically) when an entry changes, never on a lookup
(the uses go with the next write, or with flush() when the cache is let go).
The cache stays on flash, read a line at a time (firmware/authorization/tagfile.py): RAM
holds its length and the uses since the last write, none of its entries, so its size costs
no heap. File `authcache.jsonl`: {"v": 2}, then [idTag, status, expiryDate or null,
parentIdTag or null, last use] a line; a corrupt file means an empty cache (log.error), never
a failed boot. An `authcache.json` of format 1 is rewritten as lines at the first boot.
"""

import log
from compat import const
from firmware import clock
from firmware.authorization import tagfile

_MAX_ENTRIES = const(64)
_W = const(5)  # fields of an entry


def entry_info(e, now):
    """idTagInfo of a stored [status, expiry, parent, ...]; Expired once the date passed."""
    status, expiry, parent = e[0], e[1], e[2]
    if expiry is not None and status == "Accepted":
        try:
            if clock.parse(expiry) <= now:
                status = "Expired"
        except ValueError:
            status = "Expired"
    info = {"status": status}
    if expiry is not None:
        info["expiryDate"] = expiry
    if parent is not None:
        info["parentIdTag"] = parent
    return info


class AuthCache:
    def __init__(self, data_dir, max_entries=_MAX_ENTRIES):
        base = data_dir.rstrip("/") + "/authcache."
        self._path = base + "jsonl"
        self.max_entries = max_entries
        self.enabled = True  # AuthorizationCacheEnabled
        self.writes = 0
        self._used = {}  # idTag -> its last use, for the lookups since the last write
        self._use = 0
        # A cache of format 1 that cannot be rewritten yet (a full flash) is not served: an
        # empty cache only means asking the central system again.
        tagfile.migrate(base + "json", self._path, _W, lambda d: {})

        def last(r):
            if not isinstance(r[4], int):
                raise ValueError("bad use")
            if r[4] > self._use:
                self._use = r[4]

        self._n = tagfile.load(self._path, _W, "authcache", last)[1]

    def get(self, id_tag, now):
        """idTagInfo for `id_tag` (status Expired once expiryDate passed), or None."""
        if not self.enabled or not self._n:
            return None
        e = tagfile.find(self._path, _W, id_tag)
        if e is None:
            return None
        self._use += 1
        self._used[id_tag] = self._use  # one per cached idTag at most
        return entry_info(e[1:], now)

    def put(self, id_tag, info, now=None):
        """Remember the idTagInfo the central system gave for `id_tag`."""
        if not self.enabled or not isinstance(info, dict) or not isinstance(
                info.get("status"), str):
            return
        self._use += 1
        new = [id_tag, info["status"], info.get("expiryDate"), info.get("parentIdTag"),
               self._use]
        old = tagfile.find(self._path, _W, id_tag) if self._n else None
        if old is not None and old[1:4] == new[1:4]:
            self._used[id_tag] = self._use
            return  # only the use changed: no flash write
        try:
            gone = self._victims(id_tag, now, self._n + (old is None) - self.max_entries)
        except ValueError:
            gone = None  # the file went bad since boot: _save starts it again

        def rows(put):
            def copy(r):
                if r[0] != id_tag and r[0] not in gone:
                    r[4] = self._used.get(r[0], r[4])
                    put(r)

            if self._n and gone is not None:
                tagfile.scan(self._path, _W, copy)
            put(new)

        self._save(rows, new)

    def clear(self):
        """ClearCache: empty the authorization cache, nothing else."""
        self._save(lambda put: None)

    def flush(self):
        """The uses since the last write, written now (the cache is let go and read again
        later: firmware/authorization/auth.py); nothing when there are none. Raises OSError
        (a full flash) or ValueError (the file went bad since it was read): the file stays
        as it was then."""
        used = self._used
        if not used:
            return

        def rows(put):
            def copy(r):
                r[4] = used.get(r[0], r[4])
                put(r)

            tagfile.scan(self._path, _W, copy)

        self._n = tagfile.write(self._path, {}, rows)
        self._used = {}
        self.writes += 1

    def __len__(self):
        return self._n

    def _victims(self, keep, now, count):
        """The `count` entries to drop for room: invalid ones (not Accepted, or expired)
        first, then the least recently used."""
        gone = {}
        best = [None, False, 0]  # idTag, invalid, use

        def pick(r):
            tag = r[0]
            if tag == keep or tag in gone:
                return
            use = self._used.get(tag, r[4])
            bad = r[1] != "Accepted" or (
                now is not None and entry_info(r[1:], now)["status"] != "Accepted")
            if best[0] is None or (bad and not best[1]) or (bad == best[1] and use < best[2]):
                best[0], best[1], best[2] = tag, bad, use

        for _ in range(count):
            best[0] = None
            tagfile.scan(self._path, _W, pick)
            if best[0] is None:
                break
            gone[best[0]] = True
        return gone

    def _save(self, rows, new=None):
        try:
            self._n = tagfile.write(self._path, {}, rows)
        except ValueError as e:  # the file went bad since boot: it starts again, with `new`
            log.error("authcache", "unreadable, starting again:", repr(e))
            self._n = tagfile.write(self._path, {}, lambda put: new and put(new))
        self._used = {}
        self.writes += 1
