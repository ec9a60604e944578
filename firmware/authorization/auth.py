"""The authorization decisions (`cp.auth`): the rules and the configuration keys are
firmware/authorization/service.py's docstring.

Loaded only while authorization is used: service.auth(cp) makes the Auth (the cache and the
local list, read from flash) on first use and service.sweep lets it go, this module with
cache.py, local_list.py and tagfile.py, once it was not used for a while. What it holds in
RAM is reloaded from flash then (the list's version and length, the cache's length and last
use), except the uses of cached idTags since the cache's last write: close() writes them.
"""

import log
from compat import ticks_ms
from firmware import clock
from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList

_TAG = "auth"


class Auth:
    def __init__(self, cp):
        self.cp = cp
        self.busy = 0  # Authorize.req awaiting an answer: never let go then (service.sweep)
        self.used = ticks_ms()  # its last use (service.auth, the end of an Authorize.req)
        self.cache = AuthCache(cp.data_dir)
        self.local = LocalList(cp.data_dir, cp.config.get("LocalAuthListMaxLength"))
        self.configure()

    def configure(self, keys=None):
        c = self.cp.config.get
        self.cache.enabled = bool(c("AuthorizationCacheEnabled"))
        self.local.enabled = bool(c("LocalAuthListEnabled"))

    def close(self):
        """Before it is let go: the cache's uses to flash (the order of its evictions), so
        that the next Auth finds them. Never raises: on a failed write only that order is
        lost."""
        try:
            self.cache.flush()
        except Exception as e:  # noqa: BLE001 - OSError (a full flash), a file gone bad
            log.error(_TAG, "cache uses not written:", repr(e))

    def known(self, id_tag):
        """idTagInfo from the local list, else the cache, else None."""
        now = clock.now()
        info = self.local.get(id_tag, now)
        if info is None:
            info = self.cache.get(id_tag, now)
        return info

    def remember(self, id_tag, info):
        """An idTagInfo from the central system (Authorize, Start/StopTransaction conf)."""
        if isinstance(info, dict) and "status" in info:
            self.cache.put(id_tag, info, clock.now())

    async def authorize(self, id_tag):
        """The idTagInfo deciding whether `id_tag` may charge now."""
        from firmware.ops import authorize as op

        c = self.cp.config.get
        local = self.known(id_tag)
        if local is not None and local["status"] == "Accepted" and c("LocalPreAuthorize"):
            return local
        if self.cp.session.accepted.is_set():
            self.busy += 1  # kept while the answer is awaited: it goes into this cache
            try:
                info = await op.send(self.cp, id_tag)
            except Exception as e:  # noqa: BLE001 - timeout, lost link, CALLERROR: offline
                log.warning(_TAG, "Authorize failed, deciding offline:", repr(e))
            else:
                self.remember(id_tag, info)
                return info
            finally:
                self.busy -= 1
                self.used = ticks_ms()  # idle from the answer on, not from the request
        if local is not None and (c("LocalAuthorizeOffline") or local["status"] != "Accepted"):
            return local  # a known refusal holds offline in any case
        if c("AllowOfflineTxForUnknownId"):
            return {"status": "Accepted"}  # unknown (or not to be looked up offline)
        return {"status": "Invalid"}

    async def may_stop(self, tx, id_tag):
        """True when `id_tag` may end transaction `tx` (same idTag, or same parentIdTag)."""
        if id_tag == tx.id_tag:
            return True
        parent = tx.parent_id_tag
        if parent is None:
            known = self.known(tx.id_tag)
            parent = known.get("parentIdTag") if known else None
        if parent is None:
            return False
        info = self.known(id_tag)
        if info is None or "parentIdTag" not in info:
            info = await self.authorize(id_tag)
        return info.get("parentIdTag") == parent
