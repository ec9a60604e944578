"""Local authorization list (OCPP 1.6 LocalAuthListManagement: SendLocalList,
GetLocalListVersion), on flash, apart from the authorization cache (ClearCache leaves it).

Version 0 means no list installed: an update that would leave entries under version 0 (or
below) fails and changes nothing. A Full update replaces the list; a Differential one needs
a listVersion above the installed one (else VersionMismatch), adds or replaces entries with an
idTagInfo and removes those without. An update that would exceed `max_length`
(LocalAuthListMaxLength) fails and changes nothing.

The list stays on flash, read a line at a time (firmware/authorization/tagfile.py): RAM holds
its version and length, none of its entries, so its length costs no heap. File
`locallist.jsonl`: {"v": 2, "ver": n}, then [idTag, status, expiryDate or null, parentIdTag
or null] a line. A `locallist.json` of format 1 is rewritten as lines at the first boot.
"""

import log
from compat import const
from firmware.authorization import tagfile
from firmware.authorization.cache import entry_info

_MAX_LENGTH = const(100)
_W = const(4)  # fields of an entry


class LocalList:
    def __init__(self, data_dir, max_length=_MAX_LENGTH):
        base = data_dir.rstrip("/") + "/locallist."
        self._path = base + "jsonl"
        self.max_length = max_length
        self.enabled = True  # LocalAuthListEnabled
        self._old_path = base + "json"
        self._open()

    def _open(self):
        # A list of format 1 that could not be rewritten as lines (a full flash) is served
        # from RAM as it was before, and no update is accepted until it is rewritten.
        self._old = tagfile.migrate(self._old_path, self._path, _W,
                                    lambda d: {"ver": int(d["ver"])})
        if self._old is not None:
            self._ver, self._n = int(self._old["ver"]), len(self._old["e"])
            return
        head, self._n = tagfile.load(self._path, _W, "locallist")
        self._ver = 0
        if head is not None:
            try:
                self._ver = int(head["ver"])
            except Exception as ex:  # noqa: BLE001 - never a failed boot
                log.error("locallist", "unreadable, no list:", repr(ex))
                self._n = 0

    def version(self):
        """GetLocalListVersion: 0 when no list is installed."""
        return self._ver

    def get(self, id_tag, now):
        if not self.enabled or not self._n:
            return None
        if self._old is not None:
            e = self._old["e"].get(id_tag)
            return None if e is None else entry_info(e, now)
        e = tagfile.find(self._path, _W, id_tag)
        return None if e is None else entry_info(e[1:], now)

    def __len__(self):
        return self._n

    def update(self, list_version, update_type, entries):
        """SendLocalList; returns the status for SendLocalList.conf. `entries`: a list, or
        any sequence iterated more than once (lib/wslist.py Far: each card parsed from flash
        at every pass, so the list is never whole on the heap); its idTags must be unique
        (§5.15), else Failed."""
        if not self.enabled:
            return "NotSupported"
        if not isinstance(list_version, int) or update_type not in ("Full", "Differential"):
            return "Failed"
        tags = set()  # the idTags of the update: only they are held at once
        added = 0
        for item in entries or ():
            tag = item.get("idTag") if isinstance(item, dict) else None
            if not isinstance(tag, str) or tag in tags:
                return "Failed"
            info = item.get("idTagInfo")
            if info is not None:  # None: the idTag is removed (Differential)
                if not (isinstance(info, dict) and isinstance(info.get("status"), str)):
                    return "Failed"
                added += 1
            tags.add(tag)
        if self._old is not None:
            self._open()  # the old list rewritten now, or still nothing changes
            if self._old is not None:
                return "Failed"
        if update_type == "Differential" and list_version <= self._ver:
            return "VersionMismatch"
        kept = [0]  # entries of the old list that stay (Differential)

        def count(r):
            if r[0] not in tags:
                kept[0] += 1

        if update_type == "Differential" and self._n:
            try:
                tagfile.scan(self._path, _W, count)
            except (OSError, ValueError) as ex:
                log.error("locallist", "cannot read:", repr(ex))
                return "Failed"
        n = kept[0] + added
        if n > self.max_length or (n and list_version < 1):
            return "Failed"  # version 0 means "no list": never for a list with entries

        def rows(put):
            if kept[0]:
                tagfile.scan(self._path, _W, lambda r: None if r[0] in tags else put(r))
            for item in entries or ():
                info = item.get("idTagInfo")
                if info is not None:
                    put([item["idTag"], info["status"], info.get("expiryDate"),
                         info.get("parentIdTag")])

        try:
            self._n = tagfile.write(self._path, {"ver": list_version}, rows)
        except (OSError, ValueError) as ex:
            log.error("locallist", "cannot save:", repr(ex))
            return "Failed"
        self._ver = list_version
        return "Accepted"
