"""SetChargingProfile (OCPP 1.6 §5.16): Accepted / Rejected.

The engine (firmware/smart_charging/profiles.py) checks purpose against connector and transaction,
the
configured limits (ChargeProfileMaxStackLevel, ChargingScheduleAllowedChargingRateUnit,
ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled) and persists the profile.
"""

from firmware import clock
from firmware.ocpp import router
from firmware.smart_charging.service import engine

ACTION = "SetChargingProfile"


@router.on(ACTION)
def set_charging_profile(cp, payload):
    conn = payload["connectorId"]
    # A TxProfile binds to the connector's running transaction (one connector: cp.tx).
    tx = cp.tx if conn > 0 else None
    # The engine is loaded on first use (a charger without profiles holds none).
    status = engine(cp).set_profile(conn, payload["csChargingProfiles"], tx=tx, now=clock.now())
    return {"status": status}
