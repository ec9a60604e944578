"""Configuration keys: OCPP 1.6 standard keys (section 9 and the Security Whitepaper) and the
product keys of the local API (go-eCharger names). Meanings, one line each, for
`doc(name)` and the README table (this docstring costs nothing on the board: MicroPython drops
docstrings):

AllowOfflineTxForUnknownId: Start a transaction for an unknown idTag while offline.
AuthorizationCacheEnabled: Keep an authorization cache of idTags the central system accepted.
AuthorizeRemoteTxRequests: Send Authorize before a RemoteStartTransaction starts charging.
BlinkRepeat: Times the status light blinks when asked to (no light on this wallbox; stored).
ClockAlignedDataInterval: Seconds between clock-aligned meter values; 0 turns them off.
ConnectionTimeOut: Seconds after plug-in to wait for authorization before giving up.
ConnectorPhaseRotation: Wiring of each connector to the grid, `<connector>.<rotation>` list.
ConnectorPhaseRotationMaxLength: Maximum entries in ConnectorPhaseRotation.
GetConfigurationMaxKeys: Maximum keys in one GetConfiguration request.
HeartbeatInterval: Seconds of inactivity after which a Heartbeat is sent.
LightIntensity: Status light intensity in percent (no light on this wallbox; stored).
LocalAuthorizeOffline: Start offline for idTags in the local list or cache.
LocalPreAuthorize: Start at once for idTags valid in the local list or cache.
MaxEnergyOnInvalidId: Wh still delivered after an idTag turns invalid during a transaction.
MeterValuesAlignedData: Measurands sent at each clock-aligned interval.
MeterValuesAlignedDataMaxLength: Maximum entries in MeterValuesAlignedData.
MeterValuesSampledData: Measurands sent every MeterValueSampleInterval in a transaction.
MeterValuesSampledDataMaxLength: Maximum entries in MeterValuesSampledData.
MeterValueSampleInterval: Seconds between sampled meter values in a transaction; 0 = off.
MinimumStatusDuration: Seconds a status must hold before StatusNotification is sent.
NumberOfConnectors: Connectors of this charge point.
ResetRetries: Attempts at a Reset before giving up.
StopTransactionOnEVSideDisconnect: Stop the transaction when the cable leaves the car.
StopTransactionOnInvalidId: Stop the transaction when its idTag turns out invalid.
StopTxnAlignedData: Clock-aligned measurands in StopTransaction's transactionData.
StopTxnAlignedDataMaxLength: Maximum entries in StopTxnAlignedData.
StopTxnSampledData: Sampled measurands in StopTransaction's transactionData.
StopTxnSampledDataMaxLength: Maximum entries in StopTxnSampledData.
SupportedFeatureProfiles: OCPP feature profiles this firmware implements.
SupportedFeatureProfilesMaxLength: Maximum entries in SupportedFeatureProfiles.
TransactionMessageAttempts: Tries of a transaction message the central system rejects.
TransactionMessageRetryInterval: Seconds before the first retry (doubled each retry).
UnlockConnectorOnEVSideDisconnect: Unlock the cable when it leaves the car.
WebSocketPingInterval: Seconds between websocket pings; 0 turns them off.
LocalAuthListEnabled: Use the local authorization list.
LocalAuthListMaxLength: Maximum idTags in the local authorization list.
SendLocalListMaxLength: Maximum idTags in one SendLocalList request.
ReserveConnectorZeroSupported: ReserveNow for connector 0 is supported.
ChargeProfileMaxStackLevel: Highest stackLevel of a charging profile.
ChargingScheduleAllowedChargingRateUnit: Units a charging schedule may use.
ChargingScheduleMaxPeriods: Maximum periods in one charging schedule.
ConnectorSwitch3to1PhaseSupported: Switching from three to one phase during a transaction.
MaxChargingProfilesInstalled: Maximum charging profiles installed at once.
AdditionalRootCertificateCheck: Only one CentralSystemRootCertificate (plus fallback).
AuthorizationKey: HTTP Basic password for profiles 1 and 2 (write-only, 16-40 chars).
CertificateSignedMaxChainSize: Maximum bytes of a CertificateSigned chain.
CertificateStoreMaxLength: Maximum installed root certificates.
CpoName: Charge point operator name, checked against the client certificate.
SecurityProfile: 0 none, 1 Basic auth, 2 TLS + Basic auth, 3 TLS + client certificate.
ocppe: OCPP enabled.
ocppu: OCPP server URL, ws:// or wss://, ending with the charge point identity.
ocppg: Use the global CA store to verify the server.
ocppcn: Skip the certificate common-name check.
ocppss: Skip server verification.
ocppd: Dummy card idTag used when charging starts without a card ("" = none).
ocpprl: Remote logging.
ocppck: Client key for TLS client authentication, PEM (write-only).
ocppcc: Client certificate, PEM.
ocppsc: Server CA certificate, PEM.
amp: Requested current, A (6..ama).
ama: Maximum current of this installation, A.
frc: Force state: 0 neutral, 1 off, 2 on.
psm: Phase mode: 0 auto, 1 one phase, 2 three phases.
ust: Cable lock: 0 unlock when car unlocks, 1 automatic, 2 always locked.
dwo: Charging energy limit, Wh, or null.
acs: 0 open charging, 1 authorization required.
wss: WiFi SSID.
wke: WiFi key (write-only).
apw: Local API password; once set every API request needs HTTP Basic (write-only).
"""

from compat import const

# Types.
BOOL = "b"
INT = "i"
STR = "s"
CSL = "l"  # comma-separated list, elements from an allowed set
NINT = "n"  # null or int
ROT = "r"  # ConnectorPhaseRotation list

# Flags.
RO = const(1)  # read-only
SECRET = const(2)  # write-only: no read returns the value
REBOOT = const(4)  # takes effect after a reboot (ChangeConfiguration -> RebootRequired)
OCPP = const(8)  # standard key: GetConfiguration / ChangeConfiguration
API = const(16)  # product key: local API

MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Voltage",
    "Power.Factor",
    "Temperature",
)
PROFILES = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "SmartCharging",
    "RemoteTrigger",
)
RATE_UNITS = ("Current", "Power")
ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")

_O = OCPP
_OR = OCPP | RO

# (name, type, flags, default, lo, hi). INT/NINT: range, hi may name another key.
# STR: length range. CSL: allowed tuple, hi = key holding the maximum length.
TABLE = (
    ("AllowOfflineTxForUnknownId", BOOL, _O, False, None, None),
    ("AuthorizationCacheEnabled", BOOL, _O, True, None, None),
    ("AuthorizeRemoteTxRequests", BOOL, _O, False, None, None),
    ("BlinkRepeat", INT, _O, 3, 0, 100),
    ("ClockAlignedDataInterval", INT, _O, 900, 0, 86400),
    ("ConnectionTimeOut", INT, _O, 60, 1, 3600),
    ("ConnectorPhaseRotation", ROT, _O, "0.RST,1.RST", None, "ConnectorPhaseRotationMaxLength"),
    ("ConnectorPhaseRotationMaxLength", INT, _OR, 2, None, None),
    ("GetConfigurationMaxKeys", INT, _OR, 64, None, None),
    ("HeartbeatInterval", INT, _O, 300, 1, 86400),
    ("LightIntensity", INT, _O, 100, 0, 100),
    ("LocalAuthorizeOffline", BOOL, _O, True, None, None),
    ("LocalPreAuthorize", BOOL, _O, False, None, None),
    ("MaxEnergyOnInvalidId", INT, _O, 0, 0, 1000000),
    ("MeterValuesAlignedData", CSL, _O, "Energy.Active.Import.Register", MEASURANDS,
     "MeterValuesAlignedDataMaxLength"),
    ("MeterValuesAlignedDataMaxLength", INT, _OR, 8, None, None),
    ("MeterValuesSampledData", CSL, _O,
     "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage", MEASURANDS,
     "MeterValuesSampledDataMaxLength"),
    ("MeterValuesSampledDataMaxLength", INT, _OR, 8, None, None),
    ("MeterValueSampleInterval", INT, _O, 60, 0, 86400),
    ("MinimumStatusDuration", INT, _O, 0, 0, 3600),
    ("NumberOfConnectors", INT, _OR, 1, None, None),
    ("ResetRetries", INT, _O, 3, 0, 10),
    ("StopTransactionOnEVSideDisconnect", BOOL, _O, True, None, None),
    ("StopTransactionOnInvalidId", BOOL, _O, True, None, None),
    ("StopTxnAlignedData", CSL, _O, "", MEASURANDS, "StopTxnAlignedDataMaxLength"),
    ("StopTxnAlignedDataMaxLength", INT, _OR, 8, None, None),
    ("StopTxnSampledData", CSL, _O, "", MEASURANDS, "StopTxnSampledDataMaxLength"),
    ("StopTxnSampledDataMaxLength", INT, _OR, 8, None, None),
    # Only the profiles whose every message works (tests_host/test_profiles.py checks it).
    ("SupportedFeatureProfiles", CSL, _OR,
     "Core,LocalAuthListManagement,SmartCharging,RemoteTrigger", PROFILES,
     "SupportedFeatureProfilesMaxLength"),
    ("SupportedFeatureProfilesMaxLength", INT, _OR, 6, None, None),
    ("TransactionMessageAttempts", INT, _O, 3, 1, 10),
    ("TransactionMessageRetryInterval", INT, _O, 60, 1, 3600),
    ("UnlockConnectorOnEVSideDisconnect", BOOL, _O, True, None, None),
    ("WebSocketPingInterval", INT, _O, 30, 0, 3600),
    ("LocalAuthListEnabled", BOOL, _O, True, None, None),
    ("LocalAuthListMaxLength", INT, _OR, 64, None, None),
    ("SendLocalListMaxLength", INT, _OR, 32, None, None),
    ("ReserveConnectorZeroSupported", BOOL, _OR, False, None, None),
    ("ChargeProfileMaxStackLevel", INT, _OR, 8, None, None),
    ("ChargingScheduleAllowedChargingRateUnit", CSL, _OR, "Current,Power", RATE_UNITS, 2),
    ("ChargingScheduleMaxPeriods", INT, _OR, 24, None, None),
    ("ConnectorSwitch3to1PhaseSupported", BOOL, _OR, False, None, None),
    ("MaxChargingProfilesInstalled", INT, _OR, 8, None, None),
    ("AdditionalRootCertificateCheck", BOOL, _OR, False, None, None),
    ("AuthorizationKey", STR, _O | SECRET, "", 16, 40),
    ("CertificateSignedMaxChainSize", INT, _OR, 5600, None, None),
    ("CertificateStoreMaxLength", INT, _OR, 4, None, None),
    ("CpoName", STR, _O, "", 0, 64),
    ("SecurityProfile", INT, _O, 0, 0, 3),
    ("ocppe", BOOL, API, False, None, None),
    ("ocppu", STR, API, "", 0, 256),
    ("ocppg", BOOL, API, True, None, None),
    ("ocppcn", BOOL, API, False, None, None),
    ("ocppss", BOOL, API, False, None, None),
    ("ocppd", STR, API, "", 1, 20),
    ("ocpprl", BOOL, API, False, None, None),
    ("ocppck", STR, API | SECRET, "", 0, 4096),
    ("ocppcc", STR, API, "", 0, 4096),
    ("ocppsc", STR, API, "", 0, 4096),
    ("amp", INT, API, 16, 6, "ama"),
    ("ama", INT, API, 16, 6, 32),
    ("frc", INT, API, 0, 0, 2),
    ("psm", INT, API, 0, 0, 2),
    ("ust", INT, API, 0, 0, 2),
    ("dwo", NINT, API, None, 0, 100000000),
    ("acs", INT, API, 0, 0, 1),
    ("wss", STR, API, "", 0, 32),
    ("wke", STR, API | SECRET, "", 8, 63),
    ("apw", STR, API | SECRET, "", 0, 64),
)

# Product names that are the OCPP keys themselves (one stored value). `ocppr` is a bool view
# of ConnectorPhaseRotation: true when connector 1 is wired with a rotation other than RST.
ALIASES = {
    "ocpph": "HeartbeatInterval",
    "ocppi": "MeterValueSampleInterval",
    "ocppai": "ClockAlignedDataInterval",
    "ocppr": "ConnectorPhaseRotation",
}


def doc(name):
    """One-line meaning of a key from this module's docstring ("" on MicroPython)."""
    text = globals().get("__doc__") or ""
    start = text.find("\n" + name + ": ")
    if start < 0:
        return ""
    start += len(name) + 3
    end = text.find("\n", start)
    return text[start:end]
