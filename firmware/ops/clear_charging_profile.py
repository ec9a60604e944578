"""ClearChargingProfile (OCPP 1.6 §5.5): Accepted / Unknown.

By id alone, or by any combination of connectorId, chargingProfilePurpose and stackLevel;
no criteria clears every profile (see SmartCharging.clear).
"""

from firmware.ocpp import router
from firmware.smart_charging.service import engine

ACTION = "ClearChargingProfile"


@router.on(ACTION)
def clear_charging_profile(cp, payload):
    # Loaded (from profiles.json) if it was not: the limit loop lets it go again when empty.
    status = engine(cp).clear(
        payload.get("id"),
        payload.get("connectorId"),
        payload.get("chargingProfilePurpose"),
        payload.get("stackLevel"),
    )
    return {"status": status}
