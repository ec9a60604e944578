"""Authorization decisions (OCPP 1.6 §3.5, §9.1): may this idTag start or stop a transaction.

    info = await auth.authorize(id_tag)      # idTagInfo dict, "status" always present

Order of the checks:
1. LocalPreAuthorize and the idTag Accepted in the local list or the cache: Accepted at once,
   no Authorize.req (§3.5.1).
2. Online (BootNotification accepted): Authorize.req; the answer is the decision and goes
   into the cache (AuthorizationCacheEnabled).
3. Offline, or the request timed out: LocalAuthorizeOffline and the idTag in the local list or
   the cache: that entry's status (a known refusal holds even without LocalAuthorizeOffline).
   Otherwise (unknown idTag): Accepted when AllowOfflineTxForUnknownId, else Invalid.
The local list wins over the cache (§3.5.3). `info["offline"]` is never set: the decision is
the whole answer.

Who may stop (§3.5.4, parentIdTag): the idTag that started the transaction, or any idTag
with the same parentIdTag (as the local list, the cache or the central system knows it).

The feature (attach) owns `cp.auth`: the cache (`cp.auth.cache`, ClearCache) and the local
list (`cp.auth.local`, SendLocalList, GetLocalListVersion); the transaction service asks it.

Configuration keys:
AllowOfflineTxForUnknownId: Start a transaction for an unknown idTag while offline.
AuthorizationCacheEnabled: Keep an authorization cache of idTags the central system accepted.
AuthorizeRemoteTxRequests: Send Authorize before a RemoteStartTransaction starts charging.
LocalAuthorizeOffline: Start offline for idTags in the local list or cache.
LocalPreAuthorize: Start at once for idTags valid in the local list or cache.
LocalAuthListEnabled: Use the local authorization list.
LocalAuthListMaxLength: Maximum idTags in the local authorization list.
SendLocalListMaxLength: Maximum idTags in one SendLocalList request.
"""

import log
from compat import const
from firmware import clock
from firmware.authorization.cache import AuthCache
from firmware.authorization.local_list import LocalList

_TAG = "auth"
OPS = ("clear_cache", "send_local_list", "get_local_list_version")


# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (keys.doc, the README table).
_O = const(8)  # OCPP: a standard key
_OR = const(9)  # OCPP | RO
KEYS = (
    ("AllowOfflineTxForUnknownId", "b", _O, False, None, None),
    ("AuthorizationCacheEnabled", "b", _O, True, None, None),
    ("AuthorizeRemoteTxRequests", "b", _O, False, None, None),
    ("LocalAuthorizeOffline", "b", _O, True, None, None),
    ("LocalPreAuthorize", "b", _O, False, None, None),
    ("LocalAuthListEnabled", "b", _O, True, None, None),
    ("LocalAuthListMaxLength", "i", _OR, 64, None, None),
    ("SendLocalListMaxLength", "i", _OR, 32, None, None),
)


class Auth:
    def __init__(self, cp):
        self.cp = cp
        self.cache = AuthCache(cp.data_dir)
        self.local = LocalList(cp.data_dir, cp.config.get("LocalAuthListMaxLength"))
        self.configure()

    def configure(self, keys=None):
        c = self.cp.config.get
        self.cache.enabled = bool(c("AuthorizationCacheEnabled"))
        self.local.enabled = bool(c("LocalAuthListEnabled"))

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
            try:
                info = await op.send(self.cp, id_tag)
            except Exception as e:  # noqa: BLE001 - timeout, lost link, CALLERROR: offline
                log.warning(_TAG, "Authorize failed, deciding offline:", repr(e))
            else:
                self.remember(id_tag, info)
                return info
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


def attach(cp):
    from firmware.ocpp import router

    router.offer(OPS)
    cp.auth = Auth(cp)
    cp.config.subscribe(cp.auth.configure)
    return []
