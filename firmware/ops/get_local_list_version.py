"""GetLocalListVersion (OCPP 1.6 §5.10, §6.27): the version of the local authorization list.

-1 while LocalAuthListEnabled is false (or no list exists: the charge point does not support
local lists then), 0 when the list is empty, else the listVersion of the last accepted
SendLocalList (`cp.auth.local`, firmware/authorization/local_list.py).
"""

from firmware.ocpp import router

ACTION = "GetLocalListVersion"


def version(cp):
    ll = None if cp.auth is None else cp.auth.local
    if ll is None or not cp.config.get("LocalAuthListEnabled"):
        return -1
    return ll.version() if len(ll) else 0


@router.on(ACTION)
def get_local_list_version(cp, payload):
    return {"listVersion": version(cp)}
