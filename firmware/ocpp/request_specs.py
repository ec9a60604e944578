"""The specs of the requests a central system sends to the charge point (router.KNOWN), in
the grammar of specs.py, whose DEFS they use: loaded by validate.request() to look up a
CALL's spec and let go at once (compat.lend). A charger at rest holds only the specs of
the answers to its own requests (specs.RESPONSE). Loaded from a .mpy file these strings are
about 3 KB of heap (32-bit); frozen, they stay in flash. `@P` in a spec is P below, which
validate.request() puts in while this module is lent (only requests have charging
profiles: a charger at rest does not hold its 400 bytes).
"""

P = ("{chargingProfileId!:i,transactionId:i,stackLevel!:i,"
     "chargingProfilePurpose!:<ChargePointMaxProfile|TxDefaultProfile|TxProfile>,"
     "chargingProfileKind!:<Absolute|Recurring|Relative>,recurrencyKind:<Daily|Weekly>,"
     "validFrom:t,validTo:t,chargingSchedule!:{duration:i,startSchedule:t,"
     "chargingRateUnit!:<A|W>,chargingSchedulePeriod!:[{startPeriod!:i,limit!:d,"
     "numberPhases:i}],minChargingRate:d}}")

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
