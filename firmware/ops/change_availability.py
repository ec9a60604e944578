"""ChangeAvailability (OCPP 1.6 §5.2): Accepted / Rejected / Scheduled.

Connector 0 is the whole station (and every connector), 1 the connector; any other id is
Rejected, and so is a change that cannot be saved. To Inoperative while a transaction runs:
Scheduled, applied when it stops. The state persists across reboots; a StatusNotification
with the new status follows at once (firmware/station.py).
"""

from firmware.ocpp import router

ACTION = "ChangeAvailability"


@router.on(ACTION)
def change_availability(cp, payload):
    return {"status": cp.station.change(payload["connectorId"], payload["type"])}
