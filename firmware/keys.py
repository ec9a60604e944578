"""Configuration keys: OCPP 1.6 standard keys (section 9; the Security Whitepaper's live in
firmware/security/service.py) and the product keys of the local API (go-eCharger names).
Meanings, one line each, for the README table (tools/keytable.py `doc(name)`; this
docstring costs nothing on the board: MicroPython drops docstrings):

GetConfigurationMaxKeys: Maximum keys in one GetConfiguration request.
HeartbeatInterval: Seconds of inactivity after which a Heartbeat is sent.
NumberOfConnectors: Connectors of this charge point.
SupportedFeatureProfiles: OCPP feature profiles this firmware implements.
SupportedFeatureProfilesMaxLength: Maximum entries in SupportedFeatureProfiles.
WebSocketPingInterval: Seconds between websocket pings; 0 turns them off.
ocppe: OCPP enabled.
ocppu: OCPP server URL, ws:// or wss://, ending with the charge point identity.
ocppg: Use the global CA store to verify the server.
ocppcn: Skip the certificate common-name check.
ocppss: Skip server verification.
ocppck: Client key for TLS client authentication, PEM (write-only).
ocppcc: Client certificate, PEM.
ocppsc: Server CA certificate, PEM.
wss: WiFi SSID.
wke: WiFi key (write-only).
apw: Local API password; once set every API request needs HTTP Basic (write-only).

Rows of the features that load only once they have work (firmware/app.py DORMANT), kept
here so that reading or listing a key does not load its feature:
ReserveConnectorZeroSupported: ReserveNow for connector 0 is supported (reserves the station).
SupportedFileTransferProtocols: Transfer protocols of UpdateFirmware and GetDiagnostics.
ocpprl: Remote logging: log lines to the central system as DataTransfer (messageId Log).
fup: Follow the PV surplus pushed in ids (go-e usePvSurplus).
"""

from compat import const

# Types.
BOOL = "b"
INT = "i"
STR = "s"
CSL = "l"  # comma-separated list, elements from an allowed set
NINT = "n"  # null or int
NUM = "d"  # null or a number (int or float), e.g. go-e's dwo
ROT = "r"  # ConnectorPhaseRotation list

# Flags.
RO = const(1)  # read-only
SECRET = const(2)  # write-only: no read returns the value
REBOOT = const(4)  # takes effect after a reboot (ChangeConfiguration -> RebootRequired)
OCPP = const(8)  # standard key: GetConfiguration / ChangeConfiguration
API = const(16)  # product key: local API
LAZY = const(32)  # written often (amp, frc, psm, fup): kept in RAM, persisted on a debounce

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


# Rows are literal constants (type letters and flag numbers written out, local const()s), so
# a frozen build keeps every table in flash instead of building it on the heap at import.
# (name, type, flags, default, lo, hi). INT/NINT: range, hi may name another key.
# CSL: lo names the tuple of allowed values in this module (allowed(row)).
# STR: length range. CSL: allowed tuple, hi = key holding the maximum length.
_A = const(16)  # API: a product key
_AS = const(18)  # API | SECRET
_O = const(8)  # OCPP: a standard key
_OR = const(9)  # OCPP | RO
TABLE = (
    ("GetConfigurationMaxKeys", "i", _OR, 64, None, None),
    ("HeartbeatInterval", "i", _O, 300, 1, 86400),
    ("NumberOfConnectors", "i", _OR, 1, None, None),
    # Only the profiles whose every message works (tests_host/test_profiles.py checks it).
    ("SupportedFeatureProfiles", "l", _OR,
     "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,"
     "RemoteTrigger", "PROFILES",
     "SupportedFeatureProfilesMaxLength"),
    ("SupportedFeatureProfilesMaxLength", "i", _OR, 6, None, None),
    ("WebSocketPingInterval", "i", _O, 30, 0, 3600),
    ("ocppe", "b", _A, False, None, None),
    ("ocppu", "s", _A, "", 0, 256),
    ("ocppg", "b", _A, True, None, None),
    ("ocppcn", "b", _A, False, None, None),
    ("ocppss", "b", _A, False, None, None),
    ("ocppck", "s", _AS, "", 0, 4096),
    ("ocppcc", "s", _A, "", 0, 4096),
    ("ocppsc", "s", _A, "", 0, 4096),
    ("wss", "s", _A, "", 0, 32),
    ("wke", "s", _AS, "", 8, 63),
    ("apw", "s", _AS, "", 0, 64),
    # The dormant features' (firmware/reservation.py, firmware/firmware_update/service.py,
    # firmware/remote_log.py, firmware/solar.py).
    ("ReserveConnectorZeroSupported", "b", _OR, True, None, None),
    ("SupportedFileTransferProtocols", "s", _OR, "FTP,HTTP,HTTPS", 0, 50),
    ("ocpprl", "b", _A, False, None, None),
    ("fup", "b", const(48), False, None, None),  # 48: API | LAZY
)

# Product names that are the OCPP keys themselves (one stored value). `ocppr` is a bool view
# of ConnectorPhaseRotation: true when connector 1 is wired with a rotation other than RST.
ALIASES = {
    "ocpph": "HeartbeatInterval",
    "ocppi": "MeterValueSampleInterval",
    "ocppai": "ClockAlignedDataInterval",
    "ocppr": "ConnectorPhaseRotation",
}


# Modules that own key rows besides this one (KEYS): the charger and every feature of
# firmware.app.FEATURES that has a KEYS table (a feature's meanings are the "Configuration
# keys" lines of its module docstring).
_OWNERS = ("firmware.evse.api_keys",)


def owners():
    from firmware import app

    names = list(_OWNERS)
    names.extend(app.FEATURES)
    return names


def allowed(row):
    """The allowed values of a CSL row (its lo names a tuple of this module)."""
    a = row[4]
    return globals()[a] if isinstance(a, str) else a


def rows():
    """Every key row: the core's (TABLE), then the charger's and each feature's KEYS."""
    yield from TABLE
    for name in owners():
        mod = __import__(name, None, None, ("KEYS",))
        yield from getattr(mod, "KEYS", ())
