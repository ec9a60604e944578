"""Local authorization list (OCPP 1.6 LocalAuthListManagement: SendLocalList,
GetLocalListVersion), on flash, apart from the authorization cache (ClearCache leaves it).

Version 0 means no list installed: an update that would leave entries under version 0 (or
below) fails and changes nothing. A Full update replaces the list; a Differential one needs
a listVersion above the installed one (else VersionMismatch), adds or replaces entries with an
idTagInfo and removes those without. An update that would exceed `max_length`
(LocalAuthListMaxLength) fails and changes nothing. File `locallist.json`:
{"v": 1, "ver": n, "e": {idTag: [status, expiryDate or null, parentIdTag or null]}}.
"""

import fs
import log
from compat import const
from firmware.authorization.cache import entry_info

_FORMAT = const(1)
_MAX_LENGTH = const(100)


class LocalList:
    def __init__(self, data_dir, max_length=_MAX_LENGTH):
        self._path = data_dir.rstrip("/") + "/locallist.json"
        self.max_length = max_length
        self.enabled = True  # LocalAuthListEnabled
        self._ver = 0
        self._e = {}
        d = fs.read_json(self._path, None)
        if d is not None:
            try:
                ver = int(d["ver"])
                e = {}
                for tag in d["e"]:
                    v = d["e"][tag]
                    e[tag] = [str(v[0]), v[1], v[2]]
                self._ver, self._e = ver, e
            except Exception as ex:  # noqa: BLE001 - never a failed boot
                log.error("locallist", "unreadable, no list:", ex)

    def version(self):
        """GetLocalListVersion: 0 when no list is installed."""
        return self._ver

    def get(self, id_tag, now):
        if not self.enabled:
            return None
        e = self._e.get(id_tag)
        return None if e is None else entry_info(e, now)

    def __len__(self):
        return len(self._e)

    def update(self, list_version, update_type, entries):
        """SendLocalList; returns the status for SendLocalList.conf."""
        if not self.enabled:
            return "NotSupported"
        if not isinstance(list_version, int) or update_type not in ("Full", "Differential"):
            return "Failed"
        if update_type == "Differential" and list_version <= self._ver:
            return "VersionMismatch"
        e = {} if update_type == "Full" else dict(self._e)
        for item in entries or ():
            tag = item.get("idTag") if isinstance(item, dict) else None
            if not isinstance(tag, str):
                return "Failed"
            info = item.get("idTagInfo")
            if info is None:
                e.pop(tag, None)
            elif isinstance(info, dict) and "status" in info:
                e[tag] = [info["status"], info.get("expiryDate"), info.get("parentIdTag")]
            else:
                return "Failed"
        if len(e) > self.max_length or (e and list_version < 1):
            return "Failed"  # version 0 means "no list": never for a list with entries
        try:
            fs.write_json(self._path, {"v": _FORMAT, "ver": list_version, "e": e})
        except OSError as ex:
            log.error("locallist", "cannot save:", ex)
            return "Failed"
        self._ver, self._e = list_version, e
        return "Accepted"
