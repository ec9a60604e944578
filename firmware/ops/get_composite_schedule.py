"""GetCompositeSchedule (OCPP 1.6 §5.7): the limit schedule from now for `duration` s.

Answers in the requested chargingRateUnit (converting A↔W with the measured voltage and the
phases in use); without one, in A unless only Power is allowed. Rejected for an unknown
connector or a negative duration. The engine rounds limits down to 0.1, merges equal
neighbours and fills gaps with the installation maximum, so no period says -1.
"""

from firmware import clock
from firmware.ocpp import router
from firmware.smart_charging.service import engine

ACTION = "GetCompositeSchedule"


def _unit(cp, asked):
    if asked is not None:
        return asked
    try:
        allowed = cp.config.get("ChargingScheduleAllowedChargingRateUnit")
    except KeyError:
        allowed = None
    return "W" if allowed is not None and "Current" not in allowed else "A"


@router.on(ACTION)
def get_composite_schedule(cp, payload):
    conn = payload["connectorId"]
    now = clock.now()
    tx = cp.tx if conn > 0 else None
    sched = engine(cp).composite(conn, now, payload["duration"], _unit(cp, payload.get(
        "chargingRateUnit")), tx)
    if sched is None:
        return {"status": "Rejected"}
    start = clock.rfc3339(now)
    sched["startSchedule"] = start
    return {"status": "Accepted", "connectorId": conn, "scheduleStart": start,
            "chargingSchedule": sched}
