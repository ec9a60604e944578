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

tests_host/test_specs.py checks each string against the official OCPP 1.6 JSON schema.
"""

# Tables of (name, spec) pairs: constant tuples, which a frozen build keeps in flash (a dict
# would live on the heap). `get(table, name)` looks one up.
# Shared types: P a charging profile (SetChargingProfile, RemoteStartTransaction),
# I an idTagInfo (responses to Authorize/Start/StopTransaction, SendLocalList entries).
DEFS = (
    ("P", "{chargingProfileId!:i,transactionId:i,stackLevel!:i,"
    "chargingProfilePurpose!:<ChargePointMaxProfile|TxDefaultProfile|TxProfile>,"
    "chargingProfileKind!:<Absolute|Recurring|Relative>,recurrencyKind:<Daily|Weekly>,"
    "validFrom:t,validTo:t,chargingSchedule!:{duration:i,startSchedule:t,"
    "chargingRateUnit!:<A|W>,chargingSchedulePeriod!:[{startPeriod!:i,limit!:d,"
    "numberPhases:i}],minChargingRate:d}}"),
    ("I", "{expiryDate:t,parentIdTag:s20,"
    "status!:<Accepted|Blocked|Expired|Invalid|ConcurrentTx>}"),
)

# Requests a central system sends to the charge point (router.KNOWN).
REQUEST = (
    # Core
    ("ChangeAvailability", "connectorId!:i,type!:<Inoperative|Operative>"),
    ("ChangeConfiguration", "key!:s50,value!:s500"),
    ("ClearCache", ""),
    ("DataTransfer", "vendorId!:s255,messageId:s50,data:s"),
    ("GetConfiguration", "key:[s50]"),
    ("RemoteStartTransaction", "connectorId:i,idTag!:s20,chargingProfile:@P"),
    ("RemoteStopTransaction", "transactionId!:i"),
    ("Reset", "type!:<Hard|Soft>"),
    ("UnlockConnector", "connectorId!:i"),
    # FirmwareManagement
    ("GetDiagnostics", "location!:s,retries:i,retryInterval:i,startTime:t,stopTime:t"),
    ("UpdateFirmware", "location!:s,retries:i,retrieveDate!:t,retryInterval:i"),
    # LocalAuthListManagement
    ("GetLocalListVersion", ""),
    ("SendLocalList", "listVersion!:i,localAuthorizationList:[{idTag!:s20,idTagInfo:@I}],"
    "updateType!:<Differential|Full>"),
    # Reservation
    ("CancelReservation", "reservationId!:i"),
    ("ReserveNow", "connectorId!:i,expiryDate!:t,idTag!:s20,parentIdTag:s20,reservationId!:i"),
    # SmartCharging
    ("ClearChargingProfile", "id:i,connectorId:i,"
    "chargingProfilePurpose:<ChargePointMaxProfile|TxDefaultProfile|TxProfile>,stackLevel:i"),
    ("GetCompositeSchedule", "connectorId!:i,duration!:i,chargingRateUnit:<A|W>"),
    ("SetChargingProfile", "connectorId!:i,csChargingProfiles!:@P"),
    # RemoteTrigger
    ("TriggerMessage", "requestedMessage!:<BootNotification|DiagnosticsStatusNotification|"
    "FirmwareStatusNotification|Heartbeat|MeterValues|StatusNotification>,connectorId:i"),
    # Security Whitepaper
    ("CertificateSigned", "certificateChain!:s10000"),
    ("DeleteCertificate", "certificateHashData!:{hashAlgorithm!:<SHA256|SHA384|SHA512>,"
    "issuerNameHash!:s128,issuerKeyHash!:s128,serialNumber!:s40}"),
    ("ExtendedTriggerMessage", "requestedMessage!:<BootNotification|LogStatusNotification|"
    "FirmwareStatusNotification|Heartbeat|MeterValues|SignChargePointCertificate|"
    "StatusNotification>,connectorId:i"),
    ("GetInstalledCertificateIds", "certificateType!:<CentralSystemRootCertificate|"
    "ManufacturerRootCertificate>"),
    ("GetLog", "log!:{remoteLocation!:s512,oldestTimestamp:t,latestTimestamp:t},"
    "logType!:<DiagnosticsLog|SecurityLog>,requestId!:i,retries:i,retryInterval:i"),
    ("InstallCertificate", "certificateType!:<CentralSystemRootCertificate|"
    "ManufacturerRootCertificate>,certificate!:s5500"),
    ("SignedUpdateFirmware", "retries:i,retryInterval:i,requestId!:i,firmware!:{location!:s512,"
    "retrieveDateTime!:t,installDateTime:t,signingCertificate!:s5500,signature!:s800}"),
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
