"""SupportedFeatureProfiles tells the truth: every request a central system may send in each
listed profile has a handler (a profile listed but half-built is a trap, REFERENCE §5)."""



from firmware import keys
from firmware.ocpp import router

# OCPP 1.6 §3 / §6: the requests from the central system, per feature profile.
PROFILE_ACTIONS = {
    "Core": ("ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer",
             "GetConfiguration", "RemoteStartTransaction", "RemoteStopTransaction", "Reset",
             "UnlockConnector"),
    "FirmwareManagement": ("GetDiagnostics", "UpdateFirmware"),
    "LocalAuthListManagement": ("GetLocalListVersion", "SendLocalList"),
    "Reservation": ("CancelReservation", "ReserveNow"),
    "SmartCharging": ("ClearChargingProfile", "GetCompositeSchedule", "SetChargingProfile"),
    "RemoteTrigger": ("TriggerMessage",),
}


def _offer_every_feature():
    """What the app does at start: each feature of app.FEATURES offers its messages."""
    from firmware import app, app_boot

    app_boot.load_ops()  # the core's and the dormant features' messages
    for name in app.FEATURES:
        router.offer(app.feature(name).OPS)


def _handled(action):
    try:
        return router.lookup(action) is not None
    except router.OCPPError:
        return False


def _default(name):
    return next(e[3] for e in keys.rows() if e[0] == name)


def test_every_listed_profile_is_fully_handled():
    _offer_every_feature()
    listed = _default("SupportedFeatureProfiles").split(",")
    assert "Core" in listed
    missing = [(p, a) for p in listed for a in PROFILE_ACTIONS[p] if not _handled(a)]
    assert missing == []


def test_the_profile_table_covers_every_known_ocpp16_request():
    covered = {a for acts in PROFILE_ACTIONS.values() for a in acts}
    security = {"CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage",
                "GetInstalledCertificateIds", "GetLog", "InstallCertificate",
                "SignedUpdateFirmware"}
    assert covered | security == set(router.KNOWN)
