"""Authorization cache (OCPP 1.6 §3.5.2): idTag -> idTagInfo learnt from Authorize,
StartTransaction and StopTransaction answers, on flash.

Bounded to `max_entries`; when full, invalid entries (not Accepted, or expired) go first,
then the least recently used. `clear()` is ClearCache: it empties this cache and touches
nothing else (not the local list, not the transaction journal). Uses only refresh the LRU
order in RAM; the file is rewritten (atomically) when an entry changes, never on a lookup.
File `authcache.json`: {"v": 1, "e": {idTag: [status, expiryDate or null, parentIdTag or null,
last use]}}; a corrupt file means an empty cache (log.error), never a failed boot.
"""

import fs
import log
from compat import const
from firmware import clock

_FORMAT = const(1)
_MAX_ENTRIES = const(64)


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
        self._path = data_dir.rstrip("/") + "/authcache.json"
        self.max_entries = max_entries
        self.enabled = True  # AuthorizationCacheEnabled
        self.writes = 0
        self._e = {}
        self._use = 0
        d = fs.read_json(self._path, None)
        if d is not None:
            try:
                if d.get("v", 0) > _FORMAT:
                    log.warning("authcache", "format", d["v"], "is newer; reading it")
                e = d["e"]
                for tag in e:
                    v = e[tag]
                    self._e[tag] = [str(v[0]), v[1], v[2], int(v[3])]
                    if v[3] > self._use:
                        self._use = v[3]
            except Exception as ex:  # noqa: BLE001 - wrong shape: start empty, never crash
                log.error("authcache", "unreadable, starting empty:", ex)
                self._e = {}

    def get(self, id_tag, now):
        """idTagInfo for `id_tag` (status Expired once expiryDate passed), or None."""
        if not self.enabled:
            return None
        e = self._e.get(id_tag)
        if e is None:
            return None
        self._use += 1
        e[3] = self._use
        return entry_info(e, now)

    def put(self, id_tag, info, now=None):
        """Remember the idTagInfo the central system gave for `id_tag`."""
        if not self.enabled or not isinstance(info, dict) or "status" not in info:
            return
        self._use += 1
        new = [info["status"], info.get("expiryDate"), info.get("parentIdTag"), self._use]
        old = self._e.get(id_tag)
        self._e[id_tag] = new
        if old is not None and old[:3] == new[:3]:
            return  # only the use changed: no flash write
        while len(self._e) > self.max_entries:
            self._evict(id_tag, now)
        self._save()

    def clear(self):
        """ClearCache: empty the authorization cache, nothing else."""
        self._e = {}
        self._save()

    def __len__(self):
        return len(self._e)

    def _evict(self, keep, now):
        victim = None
        bad = False
        for tag in self._e:
            if tag == keep:
                continue
            e = self._e[tag]
            invalid = now is not None and entry_info(e, now)["status"] != "Accepted"
            invalid = invalid or e[0] != "Accepted"
            if victim is None or (invalid and not bad) or (
                invalid == bad and e[3] < self._e[victim][3]
            ):
                victim, bad = tag, invalid
        self._e.pop(victim)

    def _save(self):
        fs.write_json(self._path, {"v": _FORMAT, "e": self._e})
        self.writes += 1
