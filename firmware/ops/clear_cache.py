"""ClearCache (OCPP 1.6 §5.4): empties the authorization cache and nothing else (not the
local authorization list, not the transaction journal, not the configuration).

The cache is `cp.auth.cache` (firmware/authorization). Rejected when there is no
authorization feature or AuthorizationCacheEnabled is false, or the cache file cannot be
written.
"""

import log
from firmware.ocpp import router

ACTION = "ClearCache"


@router.on(ACTION)
def clear_cache(cp, payload):
    cache = None if cp.auth is None else cp.auth.cache
    if cache is None or not cp.config.get("AuthorizationCacheEnabled"):
        return {"status": "Rejected"}
    try:
        cache.clear()
    except Exception as e:  # OSError from the flash write, most likely
        log.error("ocpp", "ClearCache failed: %r" % (e,))
        return {"status": "Rejected"}
    return {"status": "Accepted"}
