"""GetLocalListVersion (OCPP 1.6 §5.10, §6.27): the version of the local authorization list.

-1 while LocalAuthListEnabled is false (the charge point does not support local lists then;
nothing is loaded), 0 when the list is empty, else the listVersion of the last accepted
SendLocalList (`cp.auth.local`, firmware/authorization/local_list.py; auth(cp) loads it if it
was not).
"""

from firmware.authorization.service import auth
from firmware.ocpp import router

ACTION = "GetLocalListVersion"


def version(cp):
    if not cp.config.get("LocalAuthListEnabled"):
        return -1
    ll = auth(cp).local
    return ll.version() if len(ll) else 0


@router.on(ACTION)
def get_local_list_version(cp, payload):
    return {"listVersion": version(cp)}
