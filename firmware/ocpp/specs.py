"""Compact payload specs for light validation on the device (see validate.py).

One string per action, parsed by validate.py each time it checks a payload: only these
strings stay in memory, never the parsed trees. Grammar (the top level is an object's
field list without braces):

    fields  name[!]:type,...          ! marks a required field
    type    s / sN    string / string of at most N characters (maxLength)
            t         string, date-time format (not checked beyond being a string)
            i         integer (not bool, not 5.0)
            n         number
            d         number, multipleOf 0.1 (charging limits)
            b         boolean
            <A|B>     string enum
            {fields}  object; unknown properties are refused (additionalProperties: false)
            [type]    array of type
            @X        the shared type DEFS["X"]

The specs of the requests a central system sends are in request_specs.py, loaded only
while a CALL is validated (a charger at rest holds none of them). tests_host/test_specs.py
checks each string against the official OCPP 1.6 JSON schema.
"""

# Tables of (name, spec) pairs: constant tuples, which a frozen build keeps in flash (a dict
# would live on the heap). `get(table, name)` looks one up.
# Shared types: I an idTagInfo (responses to Authorize/Start/StopTransaction, SendLocalList
# entries). P, a charging profile, is only in requests: request_specs.P.
DEFS = (
    ("I", "{expiryDate:t,parentIdTag:s20,"
    "status!:<Accepted|Blocked|Expired|Invalid|ConcurrentTx>}"),
)

# Responses the charge point receives to its own requests, keyed by the request's action.
RESPONSE = (
    ("Authorize", "idTagInfo!:@I"),
    ("BootNotification", "status!:<Accepted|Pending|Rejected>,currentTime!:t,interval!:i"),
    ("DataTransfer", "status!:<Accepted|Rejected|UnknownMessageId|UnknownVendorId>,data:s"),
    ("DiagnosticsStatusNotification", ""),
    ("FirmwareStatusNotification", ""),
    ("Heartbeat", "currentTime!:t"),
    ("MeterValues", ""),
    ("StartTransaction", "idTagInfo!:@I,transactionId!:i"),
    ("StatusNotification", ""),
    ("StopTransaction", "idTagInfo:@I"),
    ("SecurityEventNotification", ""),
    ("SignCertificate", "status!:<Accepted|Rejected>"),
    ("LogStatusNotification", ""),
    ("SignedFirmwareStatusNotification", ""),
)


def get(table, name, default=None):
    """The spec of `name` in one of the tables above (a linear scan: ~50 entries)."""
    for k, v in table:
        if k == name:
            return v
    return default
