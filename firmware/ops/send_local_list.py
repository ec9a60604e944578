"""SendLocalList (OCPP 1.6 §5.15, §6.41): install or update the local authorization list.

The list is `cp.auth.local` (firmware/authorization/local_list.py, owned by the
authorization feature, which loads it if it was not: auth(cp); it persists every accepted
update atomically). A long request's list stays on flash and is read a card at a time
(lib/wslist.py, firmware/ocpp/rpc.py): 32 cards cost one card of heap. Answers:
- NotSupported while LocalAuthListEnabled is false;
- Failed for more than SendLocalListMaxLength entries in the request, a duplicate idTag
  (§5.15: idTags must be unique; the list checks it), a negative listVersion, listVersion 0
  for a list that would have entries (0 means "no list", §5.10: GetLocalListVersion could
  not tell them apart), a result of more than LocalAuthListMaxLength idTags, or a flash write error
  (nothing changes then);
- VersionMismatch for a Differential update whose listVersion is not above the installed one;
- Accepted otherwise. A list left empty is stored as version 0: GetLocalListVersion must
  report 0 for an empty list (§5.10), and a later Differential update is then checked
  against the version it was told.
"""

from firmware.authorization.service import auth
from firmware.ocpp import router

ACTION = "SendLocalList"


def update(cp, payload):
    """The SendLocalList.conf status for `payload` (applied when "Accepted")."""
    c = cp.config.get
    if not c("LocalAuthListEnabled"):
        return "NotSupported"
    entries = payload.get("localAuthorizationList") or ()
    ver = payload["listVersion"]
    if len(entries) > c("SendLocalListMaxLength") or ver < 0:
        return "Failed"
    ll = auth(cp).local  # loaded for an update that may be applied (Failed: a duplicate idTag)
    ll.max_length = c("LocalAuthListMaxLength")
    status = ll.update(ver, payload["updateType"], entries)
    if status == "Accepted" and len(ll) == 0 and ll.version() != 0:
        ll.update(0, "Full", None)
    return status


@router.on(ACTION)
def send_local_list(cp, payload):
    return {"status": update(cp, payload)}
