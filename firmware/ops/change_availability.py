"""ChangeAvailability (OCPP 1.6 §5.2): Accepted / Rejected / Scheduled.

Connector 0 is the whole station (and every connector), 1 the connector; any other id is
Rejected, and so is a change that cannot be saved. To Inoperative while a transaction runs:
Scheduled, applied when it stops. The state persists across reboots; a StatusNotification
with the new status follows at once (firmware/station.py).
"""

import fs
import log
from firmware import station
from firmware.ocpp import router

ACTION = "ChangeAvailability"


@router.on(ACTION)
def change_availability(cp, payload):
    return {"status": change(cp.station, payload["connectorId"], payload["type"])}


def change(st, connector_id, kind):
    """The station `st` (cp.station) to `kind` on the connector: "Accepted" | "Rejected" |
    "Scheduled"."""
    n = st.cp.config.get("NumberOfConnectors")
    if not 0 <= connector_id <= n or connector_id > 1:
        return "Rejected"
    want = kind == "Operative"
    op = [want, want] if connector_id == 0 else [st.op[0], want]
    if op != st.op:
        try:
            fs.write_json(st.path, {"v": station.FORMAT, "op": op})
        except OSError as e:
            log.error("station", "availability not saved:", e)
            return "Rejected"
        st.op = op
    log.info("station", "connector", connector_id, kind)
    if not (op[0] and op[1]) and st.on[1] and st.tx(1):
        st.sched = True  # §5.2: after the transaction has finished
        return "Scheduled"
    st.apply()
    return "Accepted"
