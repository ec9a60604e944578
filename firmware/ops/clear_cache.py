"""ClearCache (OCPP 1.6 §5.4): empties the authorization cache and nothing else (not the
local authorization list, not the transaction journal, not the configuration).

The cache is `cp.auth.cache` (firmware/authorization; auth(cp) loads it if it was not).
Rejected when AuthorizationCacheEnabled is false (nothing is loaded then), or the cache file
cannot be written.
"""

import log
from firmware.authorization.service import auth
from firmware.ocpp import router

ACTION = "ClearCache"


@router.on(ACTION)
def clear_cache(cp, payload):
    if not cp.config.get("AuthorizationCacheEnabled"):
        return {"status": "Rejected"}
    cache = auth(cp).cache
    try:
        cache.clear()
    except Exception as e:  # OSError from the flash write, most likely
        log.error("ocpp", "ClearCache failed: %r" % (e,))
        return {"status": "Rejected"}
    return {"status": "Accepted"}
