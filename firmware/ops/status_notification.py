"""StatusNotification (OCPP 1.6 §4.9): the status of connector 0 (the station) and 1.

Derived from the charger (firmware/evse/charger.py: `status`, `err`, `faults`, `meter_ok`), the
transaction state and the availability; the station service (firmware/station.py) decides
when to send (MinimumStatusDuration, after every Accepted BootNotification). Not journaled:
only the current status is ever sent, never a stale one.

Connector 1, first match wins:
- Faulted: a latched fault that blocks charging (the charger's status "faulted");
- a transaction runs: Charging / SuspendedEV / SuspendedEVSE / Preparing from the charger;
  car unplugged during the transaction: SuspendedEV (Preparing if no car came yet);
- Unavailable: set inoperative by ChangeAvailability (or a Reset in progress);
- no car: Available (Reserved while a reservation holds it);
- car plugged, no transaction: Finishing after a transaction ended, else Preparing (when no
  transaction service runs, the charger's own charging status is reported instead).
Connector 0 (the station): Faulted on station-wide faults (RCD, its self-test, contactor
welded or not closing, failed temperature sensor), Unavailable when inoperative, else
Available.

Error codes from the go-e `err` codes (vendorErrorCode is the number, info its name):
FiAc/FiDc/FiUnknown/GndInvalid -> GroundFailure, Overvolt -> OverVoltage, Overamp ->
OverCurrentFailure, Diode -> EVCommunicationError, ContactorStuck/ContactorMiss ->
PowerSwitchFailure, Overtemp -> HighTemperature, LockStuckOpen/LockStuckLocked ->
ConnectorLockFailure, Unknown -> EVCommunicationError for a pilot fault (state E) else
InternalError, NoComm -> InternalError, Phase/PpInvalid -> OtherError. An energy meter that
stopped answering -> PowerMeterFailure (charging goes on at 6 A, so the status is not
Faulted). A Reset whose every retry failed -> ResetFailure on connector 0. The charger cannot
detect ReaderFailure, UnderVoltage, WeakSignal or LocalListConflict, so they are never sent.
"""

ACTION = "StatusNotification"

# go-e err code -> (OCPP ChargePointErrorCode, go-e name)
_ERR = (
    ("NoError", ""),
    ("GroundFailure", "FiAc"),
    ("GroundFailure", "FiDc"),
    ("OtherError", "Phase"),
    ("OverVoltage", "Overvolt"),
    ("OverCurrentFailure", "Overamp"),
    ("EVCommunicationError", "Diode"),
    ("OtherError", "PpInvalid"),
    ("GroundFailure", "GndInvalid"),
    ("PowerSwitchFailure", "ContactorStuck"),
    ("PowerSwitchFailure", "ContactorMiss"),
    ("GroundFailure", "FiUnknown"),
    ("InternalError", "Unknown"),
    ("HighTemperature", "Overtemp"),
    ("InternalError", "NoComm"),
    ("ConnectorLockFailure", "LockStuckOpen"),
    ("ConnectorLockFailure", "LockStuckLocked"),
)
# Charger fault names that concern the whole station (connector 0), not only the connector.
_STATION_FAULTS = ("weld", "rcd", "rcd_test", "miss", "sensor")
_PLUGGED = {
    "charging": "Charging",
    "suspended_ev": "SuspendedEV",
    "suspended_evse": "SuspendedEVSE",
    "preparing": "Preparing",
}
_NO_ERROR = ("NoError", None, None)


def error(charger):
    """(errorCode, info or None, vendorErrorCode or None) of the charger right now."""
    err = charger.err
    if err:
        if 0 < err < len(_ERR):
            code, name = _ERR[err]
        else:
            code, name = "OtherError", "err"
        if err == 12 and "pilot" in charger.faults:
            code = "EVCommunicationError"
        return (code, name, str(err))
    if not charger.meter_ok:
        return ("PowerMeterFailure", "meter offline", None)
    return _NO_ERROR


def connector(charger, available, tx, finishing=False, ev_left=False, reserved=False,
              tx_aware=True):
    """(status, errorCode, info, vendorErrorCode) of connector 1.

    tx: a transaction runs; finishing: one ended and the car is still plugged; ev_left: the
    car left during the running transaction; tx_aware: a transaction service exists (without
    one the charger's own status is reported)."""
    code, info, vendor = error(charger)
    s = charger.status
    unplugged = s == "available" or s == "unavailable"
    if s == "faulted":
        st = "Faulted"
    elif tx:
        if unplugged:
            st = "SuspendedEV" if ev_left else "Preparing"
        else:
            st = _PLUGGED.get(s, "Preparing")
    elif not available:
        st = "Unavailable"
    elif unplugged:
        st = "Reserved" if reserved else "Available"
    elif finishing:
        st = "Finishing"
    elif tx_aware and not charger.energized:
        st = "Preparing"
    else:
        st = _PLUGGED.get(s, "Preparing")
    return (st, code, info, vendor)


def station(charger, available, reset_failed=False):
    """(status, errorCode, info, vendorErrorCode) of connector 0: Available, Unavailable or
    Faulted (OCPP 1.6 §4.9: the statuses that apply to the whole charge point)."""
    faults = charger.faults
    for name in _STATION_FAULTS:
        if name in faults:
            code, info, vendor = error(charger)
            return ("Faulted", code, info, vendor)
    st = "Available" if available else "Unavailable"
    if reset_failed:
        return (st, "ResetFailure", None, None)
    return (st,) + _NO_ERROR


def payload(connector_id, status, timestamp):
    """The request for `status` (a tuple of connector() / station()), timestamp RFC 3339."""
    p = {
        "connectorId": connector_id,
        "status": status[0],
        "errorCode": status[1],
        "timestamp": timestamp,
    }
    if status[2]:
        p["info"] = status[2][:50]
    if status[3]:
        p["vendorErrorCode"] = status[3][:50]
    return p


async def send(cp, p):
    """Send one StatusNotification (raises when not accepted or no answer)."""
    return await cp.session.call(ACTION, p)
