"""DataTransfer (OCPP 1.6 §5.6) from the central system: the vendor extension of this firmware.

vendorId "OpenWallbox" (the BootNotification chargePointVendor), messages:

- messageId "GetStatus": the live charger status as the local API shows it. `data`
  (optional): comma-separated key names, like `/api/status?filter=`. Answer Accepted, `data`
  a JSON object string with the go-e keys car, err, acu, alw, nrg, eto, wh, cus, tma, var,
  fwv, amp, ama, frc, psm, ust, dwo (see the README's charger keys) and `ocs`, the OCPP
  status of connector 0 and 1, e.g. `{"car": 2, "amp": 16, "ocs": ["Available",
  "Charging"], ...}`. Unknown names in the filter are left out.
- messageId "SetCurrent": `data` the requested current in A as JSON (`"10"`); sets `amp`
  (6..32, persisted like any `amp`), as `/api/set?amp=10` would. Answer Accepted, or
  Rejected with `data` the reason as a JSON object (`{"amp": "out of range"}`).

Any other messageId: UnknownMessageId; any other vendorId: UnknownVendorId.
"""

import json

from firmware.ocpp import router

ACTION = "DataTransfer"
VENDOR = "OpenWallbox"
_CONFIG_KEYS = ("amp", "ama", "frc", "psm", "ust", "dwo")


def get_status(cp, data):
    from firmware.evse.api_keys import ChargerKeys

    out = {}
    ChargerKeys(cp.charger, cp.info.get("fw", "")).status(out)
    for k in _CONFIG_KEYS:
        out[k] = cp.config.get(k)
    st = cp.station
    if st is not None:
        out["ocs"] = [st.status(0)[0], st.status(1)[0]]
    if data:
        want = data.split(",")
        out = {k: out[k] for k in want if k in out}
    return "Accepted", json.dumps(out)


def set_current(cp, data):
    try:
        amps = json.loads(data or "")
    except ValueError:
        amps = None
    if type(amps) is float and amps == int(amps):
        amps = int(amps)
    if type(amps) is not int:
        return "Rejected", json.dumps({"amp": "not an integer"})
    errors = cp.config.update({"amp": amps}, "api")
    if errors:
        return "Rejected", json.dumps(errors)
    return "Accepted", None


_MESSAGES = {"GetStatus": get_status, "SetCurrent": set_current}


@router.on(ACTION)
def data_transfer(cp, payload):
    if payload["vendorId"] != VENDOR:
        return {"status": "UnknownVendorId"}
    fn = _MESSAGES.get(payload.get("messageId"))
    if fn is None:
        return {"status": "UnknownMessageId"}
    status, data = fn(cp, payload.get("data"))
    res = {"status": status}
    if data is not None:
        res["data"] = data
    return res
