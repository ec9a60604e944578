"""ClearChargingProfile (OCPP 1.6 §5.5): Accepted / Unknown.

By id alone, or by any combination of connectorId, chargingProfilePurpose and stackLevel;
no criteria clears every profile (see SmartCharging.clear).
"""

from firmware.ocpp import router

ACTION = "ClearChargingProfile"


@router.on(ACTION)
def clear_charging_profile(cp, payload):
    status = cp.smart.clear(
        payload.get("id"),
        payload.get("connectorId"),
        payload.get("chargingProfilePurpose"),
        payload.get("stackLevel"),
    )
    return {"status": status}
