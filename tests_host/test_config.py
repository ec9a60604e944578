"""firmware/config.py: key table, typed OCPP access, atomic updates, persistence, secrets,
and power-cut safety (a writer SIGKILLed at random points, on CPython and MicroPython)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import MICROPYPATH, ROOT, micropython_binary, mp_env

import log
from firmware import keys
from firmware.config import Config

sys.path.insert(0, os.path.join(ROOT, "tools"))
import keytable  # noqa: E402

# OCPP 1.6 section 9 and the Security Whitepaper (REFERENCE.md section 5).
STANDARD_KEYS = """AllowOfflineTxForUnknownId AuthorizationCacheEnabled AuthorizeRemoteTxRequests
BlinkRepeat ClockAlignedDataInterval ConnectionTimeOut ConnectorPhaseRotation
ConnectorPhaseRotationMaxLength GetConfigurationMaxKeys HeartbeatInterval LightIntensity
LocalAuthorizeOffline LocalPreAuthorize MaxEnergyOnInvalidId MeterValuesAlignedData
MeterValuesAlignedDataMaxLength MeterValuesSampledData MeterValuesSampledDataMaxLength
MeterValueSampleInterval MinimumStatusDuration NumberOfConnectors ResetRetries
StopTransactionOnEVSideDisconnect StopTransactionOnInvalidId StopTxnAlignedData
StopTxnAlignedDataMaxLength StopTxnSampledData StopTxnSampledDataMaxLength
SupportedFeatureProfiles SupportedFeatureProfilesMaxLength SupportedFileTransferProtocols
TransactionMessageAttempts
TransactionMessageRetryInterval UnlockConnectorOnEVSideDisconnect WebSocketPingInterval
LocalAuthListEnabled LocalAuthListMaxLength SendLocalListMaxLength
ReserveConnectorZeroSupported ChargeProfileMaxStackLevel
ChargingScheduleAllowedChargingRateUnit ChargingScheduleMaxPeriods
ConnectorSwitch3to1PhaseSupported MaxChargingProfilesInstalled AdditionalRootCertificateCheck
AuthorizationKey CertificateSignedMaxChainSize CertificateStoreMaxLength CpoName
SecurityProfile""".split()

PRODUCT_KEYS = """ocppe ocppu ocppg ocppcn ocppss ocppd ocpprl ocppck ocppcc ocppsc ocpph ocppi
ocppai ocppr amp ama frc psm ust dwo acs wss wke apw fup""".split()

MP_PATH = ".frozen" + os.pathsep + MICROPYPATH  # asyncio (imported by compat) is frozen


@pytest.fixture
def errors():
    seen = []

    def sink(ch, tag, text):
        if ch == "E":
            seen.append(tag + ": " + text)

    log.add_sink(sink)
    yield seen
    log._sinks.remove(sink)


@pytest.fixture
def cfg(tmp_path):
    return Config(str(tmp_path))


def _file(tmp_path):
    with open(str(tmp_path / "config.json")) as f:
        return json.load(f)


# -- key table ------------------------------------------------------------------------------
def test_every_standard_and_product_key_is_in_the_table(cfg):
    entries = {e["key"]: e for e in keytable.entries()}
    ocpp = set(cfg.ocpp_names())
    assert ocpp == set(STANDARD_KEYS)
    assert set(cfg.api_keys()) == set(PRODUCT_KEYS)
    for name in STANDARD_KEYS:
        e = entries[name]
        assert e["ocpp"] and e["access"] in ("R", "RW", "W")
        assert e["doc"], name  # feeds the README table
    assert entries["AuthorizationKey"]["access"] == "W"
    assert entries["NumberOfConnectors"]["access"] == "R"
    assert entries["HeartbeatInterval"]["aliases"] == ["ocpph"]


def test_defaults_for_a_single_connector_ac_wallbox(cfg):
    assert cfg.ocpp_get("NumberOfConnectors") == ("1", True)
    assert cfg.ocpp_get("HeartbeatInterval") == ("300", False)
    assert cfg.ocpp_get("SupportedFeatureProfiles") == (
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,"
        "RemoteTrigger", True)
    assert cfg.ocpp_get("ConnectorSwitch3to1PhaseSupported") == ("false", True)
    assert cfg.get("ocppg") is True and cfg.get("ocppe") is False
    assert cfg.get("amp") == 16 and cfg.get("ama") == 16 and cfg.get("dwo") is None
    assert cfg.get("ocpph") == 300 and cfg.get("ocppr") is False


# -- update ---------------------------------------------------------------------------------
def test_update_persists_only_non_defaults_and_reloads(tmp_path, cfg):
    assert cfg.update({"amp": 10, "ocppu": "wss://x/CP1", "frc": 0}, "api") == {}
    assert _file(tmp_path) == {"amp": 10, "ocppu": "wss://x/CP1"}
    again = Config(str(tmp_path))
    assert again.get("amp") == 10 and again.get("ocppu") == "wss://x/CP1"
    assert cfg.update({"amp": 16}, "api") == {}
    assert cfg.flush(force=True)  # amp is kept in RAM until a flush (see the lazy tests)
    assert _file(tmp_path) == {"ocppu": "wss://x/CP1"}


def test_one_bad_key_applies_nothing(tmp_path, cfg):
    assert cfg.update({"amp": 10, "ust": 1}, "api") == {}
    before = _file(tmp_path)
    seen = []
    cfg.subscribe(seen.append)
    r = cfg.update({"amp": 12, "frc": 7}, "api")
    assert set(r) == {"frc"}
    r = cfg.update({"amp": 12, "nope": 1}, "api")
    assert r == {"nope": "unknown key"}
    r = cfg.update({"amp": 12, "ocppu": "http://x"}, "api")
    assert set(r) == {"ocppu"}
    assert cfg.get("amp") == 10 and _file(tmp_path) == before and seen == []


def test_type_checks_are_strict(cfg):
    assert set(cfg.update({"amp": "10"}, "api")) == {"amp"}
    assert set(cfg.update({"ocppe": 1}, "api")) == {"ocppe"}
    assert set(cfg.update({"amp": True}, "api")) == {"amp"}
    assert set(cfg.update({"ocppd": "x" * 21}, "api")) == {"ocppd"}
    assert cfg.update({"dwo": 5000}, "api") == {} and cfg.get("dwo") == 5000
    assert cfg.update({"dwo": None}, "api") == {} and cfg.get("dwo") is None
    assert set(cfg.update({"dwo": -1}, "api")) == {"dwo"}


def test_origin_decides_the_namespace(cfg):
    assert cfg.update({"HeartbeatInterval": 60}, "api") == {"HeartbeatInterval": "unknown key"}
    assert cfg.update({"amp": 10}, "ocpp") == {"amp": "unknown key"}
    assert cfg.update({"ocpph": 60}, "ocpp") == {"ocpph": "unknown key"}
    assert cfg.update({"NumberOfConnectors": 2}, "ocpp") == {"NumberOfConnectors": "read-only"}


def test_aliases_share_the_ocpp_value_and_notify_both_names(cfg):
    seen = []
    cfg.subscribe(seen.append)
    assert cfg.update({"ocpph": 120}, "api") == {}
    assert cfg.ocpp_get("HeartbeatInterval") == ("120", False)
    assert cfg.ocpp_set("MeterValueSampleInterval", "30") == "Accepted"
    assert cfg.get("ocppi") == 30
    assert seen == [{"HeartbeatInterval", "ocpph"}, {"MeterValueSampleInterval", "ocppi"}]
    # The central system decides the interval (BootNotification.conf), down to 1 s.
    assert cfg.update({"ocpph": 0}, "api") == {"ocpph": "out of range 1..86400"}


def test_unchanged_value_is_not_written_nor_notified(tmp_path, cfg):
    seen = []
    cfg.subscribe(seen.append)
    assert cfg.update({"amp": 16}, "api") == {}
    assert seen == [] and not os.path.exists(str(tmp_path / "config.json"))


def test_a_failing_subscriber_does_not_undo_the_update(cfg, errors):
    cfg.subscribe(lambda changed: 1 / 0)
    assert cfg.update({"frc": 2}, "api") == {}
    assert cfg.get("frc") == 2 and errors


def test_ocppr_maps_to_connector_one_rotation(cfg):
    assert cfg.update({"ocppr": True}, "api") == {}
    assert cfg.get("ConnectorPhaseRotation") == "0.RST,1.STR" and cfg.get("ocppr") is True
    assert cfg.ocpp_set("ConnectorPhaseRotation", "0.RST,1.RST") == "Accepted"
    assert cfg.get("ocppr") is False
    assert cfg.ocpp_set("ConnectorPhaseRotation", "1.TSR") == "Accepted"
    assert cfg.get("ocppr") is True
    assert set(cfg.update({"ocppr": 1}, "api")) == {"ocppr"}


def test_amp_is_accepted_up_to_32_whatever_ama_says(cfg):
    # go-e's range: clients such as evcc send their own maximum (often 32) where the
    # installation allows 16; the charger offers min(amp, ama, cable, limits).
    assert cfg.get("ama") == 16
    assert cfg.update({"amp": 32}, "api") == {} and cfg.get("amp") == 32
    assert cfg.update({"ama": 10}, "api") == {} and cfg.get("amp") == 32
    assert set(cfg.update({"amp": 33}, "api")) == {"amp"}
    assert set(cfg.update({"amp": 5}, "api")) == {"amp"}
    assert set(cfg.update({"ama": 33}, "api")) == {"ama"}


def test_dwo_is_a_number_as_go_e_defines_it(cfg):
    # goecharger-api-lite sends set_charge_limit(2500) as dwo=2500.0.
    assert cfg.update({"dwo": 2500.0}, "api") == {} and cfg.get("dwo") == 2500.0
    assert cfg.update({"dwo": 7}, "api") == {} and cfg.get("dwo") == 7
    assert cfg.update({"dwo": None}, "api") == {} and cfg.get("dwo") is None
    assert set(cfg.update({"dwo": -0.5}, "api")) == {"dwo"}
    assert set(cfg.update({"dwo": float("nan")}, "api")) == {"dwo"}
    assert set(cfg.update({"dwo": float("inf")}, "api")) == {"dwo"}
    assert set(cfg.update({"dwo": True}, "api")) == {"dwo"}
    assert set(cfg.update({"dwo": "100"}, "api")) == {"dwo"}


def test_storage_failure_applies_nothing(tmp_path, errors):
    cfg = Config(str(tmp_path / "missing_dir"))
    assert cfg.update({"ama": 10}, "api") == {"ama": "storage error"}
    assert cfg.get("ama") == 16 and errors


# -- settings written often: RAM first, flash on a debounce -----------------------------------
class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t


@pytest.fixture
def writes(monkeypatch):
    """Every flash write of a file (lib/fs.py write_atomic), by path."""
    import fs

    seen = []
    real = fs.write_atomic

    def counting(path, data):
        seen.append(path)
        real(path, data)

    monkeypatch.setattr(fs, "write_atomic", counting)
    return seen


def test_ten_amp_changes_in_two_seconds_write_nothing_then_once(tmp_path, writes):
    clock = Clock()
    cfg = Config(str(tmp_path), now_ms=clock)
    seen = []
    cfg.subscribe(seen.append)
    for i in range(10):
        assert cfg.update({"amp": 6 + i}, "api") == {}
        assert cfg.get("amp") == 6 + i  # in force at once
        clock.t += 200
        assert not cfg.flush()
    assert cfg.update({"frc": 2, "psm": 1}, "api") == {}
    assert writes == [] and len(seen) == 11
    clock.t = 1000 + 299999
    assert not cfg.flush() and writes == []
    clock.t = 1000 + 300000  # 5 minutes after the first unsaved change
    assert cfg.flush() and len(writes) == 1
    assert _file(tmp_path) == {"amp": 15, "frc": 2, "psm": 1}
    assert not cfg.flush() and len(writes) == 1  # nothing new
    assert Config(str(tmp_path)).get("amp") == 15


def test_a_lazy_change_undone_before_the_debounce_writes_nothing(tmp_path, writes):
    clock = Clock()
    cfg = Config(str(tmp_path), now_ms=clock)
    assert cfg.update({"amp": 10}, "api") == {}
    assert cfg.update({"amp": 16}, "api") == {}
    clock.t += 400000
    assert not cfg.flush() and writes == []


def test_shutdown_writes_unsaved_settings_at_once(tmp_path, writes):
    cfg = Config(str(tmp_path), now_ms=Clock())
    assert cfg.update({"amp": 11}, "api") == {}
    assert cfg.flush(force=True) and len(writes) == 1
    assert Config(str(tmp_path)).get("amp") == 11


def test_any_other_update_writes_the_lazy_values_with_it(tmp_path, writes):
    cfg = Config(str(tmp_path), now_ms=Clock())
    assert cfg.update({"amp": 12}, "api") == {}
    assert cfg.update({"ocpph": 60}, "api") == {} and len(writes) == 1
    assert _file(tmp_path) == {"amp": 12, "HeartbeatInterval": 60}
    assert not cfg.flush(force=True) and len(writes) == 1


def test_a_day_of_solar_control_writes_flash_a_bounded_number_of_times(tmp_path, writes):
    """amp changed every 5 s for 24 h, the app's flush every second: at most one write per
    5 minutes (288 a day) instead of 17280."""
    clock = Clock()
    cfg = Config(str(tmp_path), now_ms=clock)
    for s in range(86400):
        clock.t = (1000 + s * 1000) & ((1 << 30) - 1)  # ticks_ms wraps
        if s % 5 == 0:
            assert cfg.update({"amp": 6 + (s // 5) % 10}, "api") == {}
        cfg.flush()
    assert 280 <= len(writes) <= 288


def test_a_failed_lazy_write_is_logged_and_tried_again(tmp_path, errors):
    clock = Clock()
    d = tmp_path / "gone"
    d.mkdir()
    cfg = Config(str(d), now_ms=clock)
    assert cfg.update({"amp": 9}, "api") == {}
    d.rmdir()
    clock.t += 300000
    assert not cfg.flush() and errors and cfg.get("amp") == 9
    d.mkdir()
    assert not cfg.flush()  # waits another period
    clock.t += 300000
    assert cfg.flush() and Config(str(d)).get("amp") == 9


# -- OCPP access ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,text,status,value",
    [
        ("HeartbeatInterval", "60", "Accepted", 60),
        ("HeartbeatInterval", "-1", "Rejected", 300),
        ("HeartbeatInterval", "1e3", "Rejected", 300),
        ("HeartbeatInterval", "", "Rejected", 300),
        ("HeartbeatInterval", "90000", "Rejected", 300),
        ("LocalPreAuthorize", "TRUE", "Accepted", True),
        ("LocalPreAuthorize", "yes", "Rejected", False),
        ("MeterValuesSampledData", "Voltage,Current.Import", "Accepted", "Voltage,Current.Import"),
        ("StopTxnSampledData", "", "Accepted", ""),
        ("MeterValuesAlignedData", "Voltage,SoC", "Rejected", "Energy.Active.Import.Register"),
        ("ConnectorPhaseRotation", "0.RST,1.XYZ", "Rejected", "0.RST,1.RST"),
        ("ConnectorPhaseRotation", "0.RST,2.RST", "Rejected", "0.RST,1.RST"),
        ("CpoName", "ACME", "Accepted", "ACME"),
    ],
)
def test_ocpp_set_parses_typed_values(cfg, name, text, status, value):
    assert cfg.ocpp_set(name, text) == status
    assert cfg.get(name) == value


def test_ocpp_set_list_length_is_bounded_by_the_max_length_key(cfg):
    nine = ",".join(keys.MEASURANDS + ("Voltage",))
    assert cfg.ocpp_set("MeterValuesSampledData", nine) == "Rejected"
    assert cfg.ocpp_set("MeterValuesSampledData", ",".join(keys.MEASURANDS)) == "Accepted"


def test_ocpp_set_read_only_unknown_and_product_keys(cfg):
    assert cfg.ocpp_set("NumberOfConnectors", "2") == "Rejected"
    assert cfg.ocpp_set("NoSuchKey", "1") == "NotSupported"
    assert cfg.ocpp_set("amp", "10") == "NotSupported"
    assert cfg.ocpp_get("amp") is None and cfg.ocpp_get("NoSuchKey") is None


def test_ocpp_set_reports_reboot_required(cfg, monkeypatch):
    table = tuple(
        (e[0], e[1], e[2] | keys.REBOOT) + e[3:] if e[0] == "WebSocketPingInterval" else e
        for e in keys.rows()
    )
    monkeypatch.setattr(keys, "TABLE", table)
    c = Config(cfg._path.rsplit("/", 1)[0])
    assert c.ocpp_set("WebSocketPingInterval", "10") == "RebootRequired"
    assert c.get("WebSocketPingInterval") == 10


def test_security_profile_rules(cfg):
    assert cfg.ocpp_set("SecurityProfile", "1") == "Rejected"  # no AuthorizationKey yet
    assert cfg.ocpp_set("AuthorizationKey", "short") == "Rejected"
    assert cfg.ocpp_set("AuthorizationKey", "0123456789abcdef0123") == "Accepted"
    assert cfg.ocpp_set("SecurityProfile", "1") == "Accepted"
    assert cfg.ocpp_set("AuthorizationKey", "") == "Rejected"  # profile 1 needs it
    assert cfg.ocpp_set("SecurityProfile", "0") == "Rejected"  # never lowered over OCPP
    assert cfg.update({"ocppu": "ws://h/CP"}, "api") == {}
    assert cfg.ocpp_set("SecurityProfile", "2") == "Rejected"  # TLS needs wss://
    assert cfg.update({"ocppu": "wss://h/CP"}, "api") == {}
    assert cfg.ocpp_set("SecurityProfile", "2") == "Accepted"
    assert set(cfg.update({"ocppu": "ws://h/CP"}, "api")) == {"ocppu"}
    assert cfg.ocpp_set("SecurityProfile", "3") == "Rejected"  # no client certificate
    cfg.client_cert = lambda: True  # one installed by CertificateSigned (firmware/security)
    assert cfg.ocpp_set("SecurityProfile", "3") == "Accepted"
    assert cfg.update({"SecurityProfile": 2}, "ocpp") != {}
    assert cfg.update({"SecurityProfile": 2}, "fallback") == {}  # the fallback only
    assert cfg.get("SecurityProfile") == 2


# -- secrets --------------------------------------------------------------------------------
def test_secrets_are_never_read_back(tmp_path, cfg):
    pem = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n"
    assert cfg.update({"ocppck": pem, "apw": "pw-secret", "wke": "wifi-secret"}, "api") == {}
    assert cfg.ocpp_set("AuthorizationKey", "authkey-secret-0123") == "Accepted"
    assert cfg.ocpp_get("AuthorizationKey") == (None, False)
    for name in ("ocppck", "apw", "wke"):
        assert cfg.api_view(name) is True
    assert cfg.api_view("ocppcc") == ""
    readable = [cfg.ocpp_get(n) for n in cfg.ocpp_names()]
    readable += [cfg.api_view(n) for n in cfg.api_keys()]
    readable += list(keytable.entries())
    text = repr(readable)
    for secret in ("MIIsecret", "pw-secret", "wifi-secret", "authkey-secret"):
        assert secret not in text
    assert cfg.get("apw") == "pw-secret"  # internal use still works
    assert set(cfg.update({"ocppck": "not a pem"}, "api")) == {"ocppck"}


# -- loading --------------------------------------------------------------------------------
def test_corrupt_file_gives_defaults_and_an_error(tmp_path, errors):
    (tmp_path / "config.json").write_text('{"amp": 10, "ocp')
    c = Config(str(tmp_path))
    assert c.get("amp") == 16 and errors


def test_missing_file_gives_defaults_without_error(tmp_path, errors):
    c = Config(str(tmp_path))
    assert c.get("HeartbeatInterval") == 300 and errors == []


def test_unknown_invalid_and_read_only_entries_are_ignored(tmp_path, errors):
    data = {"amp": 10, "fromTheFuture": 1, "frc": 9, "NumberOfConnectors": 4, "ocppe": True}
    (tmp_path / "config.json").write_text(json.dumps(data))
    c = Config(str(tmp_path))
    assert (c.get("amp"), c.get("frc"), c.get("NumberOfConnectors"), c.get("ocppe")) == (
        10,
        0,
        1,
        True,
    )
    assert errors == []


def test_micropython_reads_and_writes_the_same_file(tmp_path):
    d = str(tmp_path)
    Config(d).update({"amp": 9, "ocpph": 77, "ocppr": True}, "api")
    code = """
from firmware.config import Config
c = Config(%r)
print(c.get("amp"), c.get("HeartbeatInterval"), c.get("ocppr"))
print(c.update({"frc": 2, "amp": 40}, "api"))
print(c.update({"frc": 2}, "api"), c.ocpp_set("LocalPreAuthorize", "true"))
print(c.update({"amp": 10}, "api"), c.flush(), c.flush(True))
""" % (d,)
    r = subprocess.run(
        [micropython_binary(), "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=mp_env({"MICROPYPATH": MP_PATH}),
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "9 77 True"
    assert lines[1] == "{'amp': 'out of range 6..32'}"
    assert lines[2] == "{} Accepted"
    assert lines[3] == "{} False True"
    c = Config(d)
    assert (c.get("frc"), c.get("amp"), c.get("LocalPreAuthorize")) == (2, 10, True)


# -- power cuts -----------------------------------------------------------------------------
PEM = "-----BEGIN CERTIFICATE-----\n" + ("QUJD" * 16 + "\n") * 40 + "-----END CERTIFICATE-----\n"
VERSION_A = {
    "ama": 32,
    "amp": 20,
    "ocppu": "ws://a/CP1",
    "ocppsc": PEM,
    "ocpph": 111,
    "dwo": 5000,
    "frc": 1,
}
VERSION_B = {
    "ama": 20,
    "amp": 7,
    "ocppu": "wss://bbbbbbbbbbbb.example/ocpp/CP2",
    "ocppsc": "",
    "ocpph": 222,
    "dwo": None,
    "frc": 2,
}

WRITER = """
import json, sys
from firmware.config import Config
A = json.loads(%r)
B = json.loads(%r)
c = Config(%r)
if c.update(A, "api"):
    raise SystemExit(1)
print("ready")
i = 0
while i < 10000000:
    if c.update(B if i & 1 else A, "api"):
        raise SystemExit(2)
    i += 1
"""


def _snapshot(d):
    c = Config(d)
    return tuple(c.get(k) for k in sorted(VERSION_A))


def _kill_loop(cmd, env, d, rng, kills):
    expected = {
        tuple(VERSION_A[k] for k in sorted(VERSION_A)),
        tuple(VERSION_B[k] for k in sorted(VERSION_B)),
    }
    seen = set()
    for _ in range(kills):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            line = p.stdout.readline()
            assert line.strip() == b"ready", p.stderr.read()
            time.sleep(rng.uniform(0, 0.03))
            assert p.poll() is None  # still writing when the power goes
            os.kill(p.pid, signal.SIGKILL)
        finally:
            if p.poll() is None:
                p.kill()
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
        snap = _snapshot(d)
        assert snap in expected
        seen.add(snap)
    return seen


def test_sigkill_during_updates_leaves_old_or_new_version(tmp_path, errors):
    """>= 100 power cuts at random points: the store is always exactly one of the versions
    the writer alternates between, never broken and never the defaults."""
    rng = random.Random(1234)
    code = WRITER % (json.dumps(VERSION_A), json.dumps(VERSION_B), str(tmp_path))
    seen = set()
    env = mp_env({"MICROPYPATH": MP_PATH})
    seen |= _kill_loop([micropython_binary(), "-c", code], env, str(tmp_path), rng, 70)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "lib"), ROOT]))
    seen |= _kill_loop([sys.executable, "-u", "-c", code], env, str(tmp_path), rng, 40)
    assert errors == []
    assert len(seen) == 2  # both versions were hit: the kills really landed mid-loop
    # And the board's runtime reads what is left the same way.
    r = subprocess.run(
        [
            micropython_binary(),
            "-c",
            "from firmware.config import Config\nprint(Config(%r).get('ocpph'))" % str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=mp_env({"MICROPYPATH": MP_PATH}),
    )
    assert r.stdout.strip() == str(Config(str(tmp_path)).get("ocpph"))


def test_hardware_facts_set_read_only_keys_in_ram_only(tmp_path):
    from firmware.config import Config

    c = Config(str(tmp_path))
    assert c.ocpp_get("ConnectorSwitch3to1PhaseSupported") == ("false", True)
    c.set_fact("ConnectorSwitch3to1PhaseSupported", True)
    assert c.ocpp_get("ConnectorSwitch3to1PhaseSupported") == ("true", True)
    # Still read-only for the central system, and never written to flash.
    assert c.ocpp_set("ConnectorSwitch3to1PhaseSupported", "false") == "Rejected"
    assert not os.path.exists(str(tmp_path / "config.json"))
    assert Config(str(tmp_path)).get("ConnectorSwitch3to1PhaseSupported") is False
    try:
        c.set_fact("HeartbeatInterval", 5)
    except ValueError:
        pass
    else:
        raise AssertionError("a writable key is not a hardware fact")


# -- the AuthorizationKey belongs to one central system (issue 13) --------------------------
def test_authorization_key_is_bound_to_the_host_it_was_set_for(cfg):
    assert cfg.update({"ocppu": "ws://csms.example:9000/ocpp/CP1"}, "api") == {}
    assert cfg.ocpp_set("AuthorizationKey", "0123456789abcdef0123") == "Accepted"
    assert cfg.get("AuthorizationKeyHost") == "csms.example:9000"
    assert cfg.update({"ocppu": "ws://evil.example:9000/ocpp/CP1"}, "api") == {}
    assert cfg.get("AuthorizationKeyHost") == "csms.example:9000"  # not moved with the URL
    # Internal: neither interface reads or writes it.
    assert cfg.update({"AuthorizationKeyHost": "evil.example:9000"}, "api") == {
        "AuthorizationKeyHost": "unknown key"}
    assert cfg.ocpp_set("AuthorizationKeyHost", "evil.example:9000") == "NotSupported"
    assert "AuthorizationKeyHost" not in [e["key"] for e in keytable.entries()]
    # Set again over the new link: bound to the new host.
    assert cfg.ocpp_set("AuthorizationKey", "0123456789abcdef0124") == "Accepted"
    assert cfg.get("AuthorizationKeyHost") == "evil.example:9000"


def test_a_key_from_an_older_firmware_is_bound_to_the_url_in_force(tmp_path):
    import json

    (tmp_path / "config.json").write_text(json.dumps(
        {"ocppu": "wss://User@CSMS.example/ocpp/CP1", "AuthorizationKey": "0123456789abcdef0123"}))
    c = Config(str(tmp_path))
    assert c.get("AuthorizationKeyHost") == "csms.example"


def test_server_verification_cannot_be_turned_off_from_profile_2(cfg):
    assert cfg.update({"ocppu": "wss://h/CP", "ocppss": True}, "api") == {}
    assert cfg.ocpp_set("AuthorizationKey", "0123456789abcdef0123") == "Accepted"
    assert cfg.ocpp_set("SecurityProfile", "2") == "Rejected"  # verification is off
    assert cfg.update({"ocppss": False}, "api") == {}
    assert cfg.ocpp_set("SecurityProfile", "2") == "Accepted"
    for k in ("ocppss", "ocppcn"):
        errors = cfg.update({"ocppu": "wss://other/CP", k: True}, "api")
        assert "SecurityProfile 2" in errors[k]
        assert cfg.get("ocppu") == "wss://h/CP" and cfg.get(k) is False  # nothing applied


# -- issue 14 item 6: ConnectorPhaseRotation has a grammar ---------------------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_CONNECTORS = ("0", "1", "01", "00", "001", "+1", "-1", "2", "10", "\uff11", "\u0661", "", "1a")


@given(st.lists(st.tuples(st.sampled_from(_CONNECTORS),
                          st.sampled_from(keys.ROTATIONS + ("rst", "XYZ", "", "RST.RST"))),
                max_size=3))
def test_phase_rotation_takes_exactly_its_grammar(tmp_path_factory, items):
    """`<connector>.<rotation>`: connector 0..NumberOfConnectors written without leading
    zeros, sign or non-ASCII digits, each connector at most once, a known rotation."""
    cfg = Config(str(tmp_path_factory.mktemp("rot")))
    text = ",".join(c + "." + r for c, r in items)
    conns = [c for c, _ in items]
    valid = (all(c in ("0", "1") for c in conns) and len(set(conns)) == len(conns)
             and all(r in keys.ROTATIONS for _, r in items))
    status = cfg.ocpp_set("ConnectorPhaseRotation", text)
    assert status == ("Accepted" if valid else "Rejected"), text
    if valid:
        want = dict(items).get("1")
        assert cfg.get("ocppr") is (want not in (None, "RST", "Unknown", "NotApplicable"))
        assert cfg.get("ConnectorPhaseRotation") == text
    else:
        assert cfg.get("ConnectorPhaseRotation") == "0.RST,1.RST"


def test_phase_rotation_refuses_leading_zeros_and_duplicates(cfg):
    for bad in ("01.RST", "0.RST,01.STR", "1.RST,1.STR", "0.RST,0.RST", "1.", ".RST", "1"):
        assert cfg.ocpp_set("ConnectorPhaseRotation", bad) == "Rejected", bad
    assert cfg.get("ConnectorPhaseRotation") == "0.RST,1.RST" and cfg.get("ocppr") is False
    assert cfg.ocpp_set("ConnectorPhaseRotation", " 1.STR , 0.RST ") == "Accepted"
    assert cfg.get("ocppr") is True


def test_measurand_lists_refuse_duplicates(cfg):
    assert cfg.ocpp_set("MeterValuesSampledData", "Voltage,Voltage") == "Rejected"
    assert cfg.ocpp_set("MeterValuesSampledData", "Voltage,Current.Import") == "Accepted"


def test_the_rules_are_lent_once_per_change_and_not_kept(tmp_path, monkeypatch):
    # firmware/config_rules.py: lent for each change (compat.lend), never held by the store;
    # a ChangeConfiguration uses one copy for its parsing and its update.
    import firmware.config as cmod

    lent = []

    def counting(name):
        lent.append(name)
        return real(name)

    real = cmod.lend
    cfg = Config(str(tmp_path))
    monkeypatch.setattr(cmod, "lend", counting)
    assert cfg.ocpp_set("HeartbeatInterval", "120") == "Accepted"
    assert lent == ["firmware.config_rules"] and cfg.get("HeartbeatInterval") == 120
    assert cfg.ocpp_set("HeartbeatInterval", "x") == "Rejected"
    assert cfg.update({"HeartbeatInterval": -5}, "ocpp")  # out of range: refused
    assert len(lent) == 3 and cfg.get("HeartbeatInterval") == 120
    assert "firmware.config_rules" not in sys.modules
