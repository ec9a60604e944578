"""ChangeConfiguration (OCPP 1.6 §5.3): Accepted / Rejected / RebootRequired / NotSupported.

The config store parses and validates the text value per key type and persists it; a
change that needs a new connection (AuthorizationKey, SecurityProfile) makes the session
reconnect through the store's change notification.
"""

from firmware.ocpp import router

ACTION = "ChangeConfiguration"


@router.on(ACTION)
def change_configuration(cp, payload):
    return {"status": cp.config.ocpp_set(payload["key"], payload["value"])}
