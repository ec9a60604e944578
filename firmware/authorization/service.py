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

The feature owns `cp.auth` (an Auth, firmware/authorization/auth.py): the cache
(`.cache`, ClearCache) and the local list (`.local`, SendLocalList, GetLocalListVersion); the
transaction service and the reservation ask it. It is loaded only while it is used: both
stay on flash, and a charger uses them when a card is presented, a transaction starts or
stops, or one of those messages comes. Whoever needs it asks auth(cp), which loads it (the
module, cache.py, local_list.py, tagfile.py) on first use; the app's housekeeping asks
sweep() every second, which lets it go (cp.auth None, the modules out of sys.modules) after
router.IDLE_MS without a use, at once on a tight heap, but never while an Authorize.req
awaits its answer (Auth.busy) or a CALL that asked for it is in hand. All it holds is on
flash: loaded again, it decides exactly as before (Auth.close writes the cache's uses
before it goes).

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

from compat import const, ticks_diff, ticks_ms

OPS = ("clear_cache", "send_local_list", "get_local_list_version")
AUTH = "firmware.authorization.auth"  # the Auth, loaded while it is used (auth)
# What goes with it: loaded for the Auth only (firmware.ops.authorize by its authorize()).
_MODULES = (AUTH, "firmware.authorization.local_list", "firmware.authorization.cache",
            "firmware.authorization.tagfile", "firmware.ops.authorize")


# This feature's configuration keys (row format: firmware/keys.py TABLE); their meanings
# are the "Configuration keys" lines of the module docstring (the README table).
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


def auth(cp):
    """cp.auth, the Auth (the cache and the local list as they are on flash), loaded on first
    use; sweep() lets it go again once it is idle."""
    from firmware.ocpp import router

    a = cp.auth
    if a is None:
        # An import: tried again after router.shed() when the heap is short (router.roomy).
        mod = router.roomy(__import__, AUTH, None, None, ("Auth",))
        a = mod.Auth(cp)
        cp.auth = a
    a.used = ticks_ms()
    a.hands = router.hands()  # the CALLs in hand that may hold it (sweep)
    return a


def sweep(cp, now, idle_ms):
    """The app's housekeeping, every second (ticks_ms `now`; idle_ms as router.sweep chose
    it: IDLE_MS, or 0 on a tight heap): cp.auth unused for idle_ms goes, with its modules,
    unless an Authorize.req awaits its answer or a CALL that asked for it is still in hand
    (another CALL in hand, a certificate's, does not keep it: the next user loads it anew).
    True if it went."""
    a = cp.auth
    if a is None or a.busy or ticks_diff(now, a.used) < idle_ms:
        return False
    from firmware.ocpp import router

    if router.in_hand(getattr(a, "hands", ())):  # a CALL in hand that asked for it
        return False
    a.close()  # the cache's uses to flash (never raises)
    cp.auth = None
    router.forget(*_MODULES)
    return True


def attach(cp):
    from firmware.ocpp import router

    router.offer(OPS)
    cp.auth = None  # loaded on first use (auth)
    # Short of memory in a CALL that never asked for it (a certificate's RSA check): it goes
    # at once, as on a tight heap, rather than a minute after its last use.
    router.SHED["authorization"] = lambda: sweep(cp, ticks_ms(), 0)

    def configure(keys):
        a = cp.auth
        if a is not None:  # else the next one reads the keys when it is loaded
            a.configure(keys)

    cp.config.subscribe(configure)
    return []
