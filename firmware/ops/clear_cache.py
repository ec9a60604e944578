"""ClearCache (OCPP 1.6 §5.4): empties the authorization cache and nothing else (not the
local authorization list, not the transaction journal, not the configuration).

The cache is `cp.txn.cache` (or `cp.authcache`, where firmware/auth.py shares it).
Rejected when there is no cache (no transaction service) or AuthorizationCacheEnabled is
false, or the cache file cannot be written.
"""

import log
from firmware.ocpp import router

ACTION = "ClearCache"


@router.on(ACTION)
def clear_cache(cp, payload):
    # The transaction service's cache: cp.txn.cache, also shared as cp.authcache.
    # (An empty cache is falsy: it has __len__; compare with None.)
    cache = getattr(getattr(cp, "txn", None), "cache", None)
    if cache is None:
        cache = getattr(cp, "authcache", None)
    if cache is None or not cp.config.get("AuthorizationCacheEnabled"):
        return {"status": "Rejected"}
    try:
        cache.clear()
    except Exception as e:  # OSError from the flash write, most likely
        log.error("ocpp", "ClearCache failed: %r" % (e,))
        return {"status": "Rejected"}
    return {"status": "Accepted"}
