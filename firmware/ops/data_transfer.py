"""DataTransfer (OCPP 1.6 §5.6) from the central system: the vendor extension of this firmware.

vendorId "OpenWallbox" (the BootNotification chargePointVendor), messages:

- messageId "GetStatus": the live charger status as the local API shows it. `data`
  (optional): comma-separated key names, like `/api/status?filter=`. Answer Accepted, `data`
  a JSON object string with the go-e keys car, err, acu, alw, nrg, eto, wh, cus, tma, var,
  fwv, amp, ama, frc, psm, ust, dwo (see the README's charger keys) and `ocs`, the OCPP
  status of connector 0 and 1, e.g. `{"car": 2, "amp": 16, "ocs": ["Available",
  "Charging"], ...}`. Unknown names in the filter are left out.
- messageId "SetCurrent": `data` the requested current in A as a JSON number (`"10"`, `"1e1"`
  and `"10.0"` too; at most 32 characters, whole, finite); sets `amp` (6..32, persisted like
  any `amp`), as `/api/set?amp=10` would. Answer Accepted, or Rejected with `data` the
  reason as a JSON object (`{"amp": "out of range"}`, `{"amp": "not an integer"}` for
  anything else: a malformed, overflowing (1e400) or nested value is Rejected, never an
  error).

Any other messageId: UnknownMessageId; any other vendorId: UnknownVendorId. A `data` longer
than 6 KiB (read compacted by lib/ws.py, never decoded) is Rejected, `{"data": "too long"}`.
"""

import json

from compat import const
from firmware.ocpp import router

_MAX_DATA = const(32)
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


def _digits(s, i):
    while i < len(s) and s[i] in "0123456789":
        i += 1
    return i


def _is_number(s):
    """`s` is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?"""
    i = 1 if s[:1] == "-" else 0
    j = _digits(s, i)
    if j == i or (s[i] == "0" and j > i + 1):
        return False
    if s[j : j + 1] == ".":
        i = j + 1
        j = _digits(s, i)
        if j == i:
            return False
    if s[j : j + 1] in ("e", "E"):
        i = j + 1
        if s[i : i + 1] in ("+", "-"):
            i += 1
        j = _digits(s, i)
        if j == i:
            return False
    return j == len(s)


def amps(data):
    """The whole number of amps a JSON number string denotes, or None: malformed, longer
    than 32 characters, not finite (1e400) or not whole. Parsed by its grammar, never by
    json.loads, so no input can overflow, recurse or fill the heap."""
    if type(data) is not str or len(data) > _MAX_DATA:
        return None
    s = data.strip(" \t\r\n")
    if not _is_number(s):
        return None
    if _digits(s, 1 if s[:1] == "-" else 0) == len(s):
        return int(s)
    v = float(s)
    if v - v != 0 or v != int(v):  # inf - inf is nan: not finite
        return None
    return int(v)


def set_current(cp, data):
    n = amps(data)
    if n is None:
        return "Rejected", json.dumps({"amp": "not an integer"})
    errors = cp.config.update({"amp": n}, "api")
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
    if payload.get(router.CUT_KEY):  # `data` cut: longer than any message of ours takes
        # (lib/ws.py); a "\u0000cut" the peer sent in a frame kept whole is only data
        return {"status": "Rejected", "data": json.dumps({"data": "too long"})}
    status, data = fn(cp, payload.get("data"))
    res = {"status": status}
    if data is not None:
        res["data"] = data
    return res
