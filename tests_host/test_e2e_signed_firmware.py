"""End-to-end SignedUpdateFirmware (Security Whitepaper): the firmware on the MicroPython unix
port against the demo central system (schema-checking), a real HTTP server on 127.0.0.1 and a
real bundle of tools/release.py, signed in the test under a manufacturer root made with
`cryptography`. The firmware "reboots" by exiting with status 3 (test_e2e_firmware.Runner)."""

import base64
import datetime
import json
import os
import sys

import cryptokit
import pytest
from conftest import ROOT, check_ocpp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from e2e import CsmsThread
from ocpp.exceptions import SecurityError
from ocpp.v16 import call
from test_e2e_firmware import Runner, boots

sys.path.insert(0, os.path.join(ROOT, "tools"))

import fileserver  # noqa: E402
import release  # noqa: E402

pytestmark = pytest.mark.e2e

NOW = datetime.datetime.now(datetime.timezone.utc)
MF = "ManufacturerRootCertificate"


def _cert(cn, key, issuer=None, ca=False):
    return cryptokit.make_cert(cn, key, issuer=issuer, ca=ca,
                               not_before=NOW - datetime.timedelta(days=1),
                               not_after=NOW + datetime.timedelta(days=365))


def _sign(key, data):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """good.bundle (9.9.9) and flipped.bundle (one byte changed after signing), the PKI."""
    root = tmp_path_factory.mktemp("served")
    good, _ = release.release("9.9.9", str(root))
    os.rename(good, root / "good.bundle")
    data = (root / "good.bundle").read_bytes()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    (root / "flipped.bundle").write_bytes(bytes(flipped))
    mf = _cert("Maker Root", cryptokit.ec_key(), ca=True)
    pki = {
        "root": mf,
        "rsa": _cert("Maker Signing RSA", cryptokit.rsa_key(), issuer=mf),
        "ec": _cert("Maker Signing EC", cryptokit.ec_key(), issuer=mf),
        "stranger": _cert("Stranger", cryptokit.ec_key(),
                          issuer=_cert("Other Root", cryptokit.ec_key(), ca=True)),
    }
    return root, data, pki


@pytest.fixture
def http(served):
    s = fileserver.serve_http(served[0])
    yield s
    s.stop()


@pytest.fixture
def csms():
    c = CsmsThread(heartbeat_interval=60)
    c.start()
    yield c
    c.close()


@pytest.fixture
def runner(csms, tmp_path):
    r = Runner(csms.url(), tmp_path / "data")
    yield r
    for fw in r.all:
        fw.stop()
        print("---- firmware log ----\n" + fw.output())


def assert_all_valid(csms, errors=()):
    """Every message schema-valid; every answer a CALLRESULT but the CALLERRORs expected."""
    for _, action, payload in csms.csms.received:
        check_ocpp(action, payload)
    got = [frame[2] for _, frame in csms.csms.answers if frame[0] != 3]
    assert got == list(errors)


def signed_statuses(csms):
    return [(p["status"], p.get("requestId")) for _, a, p in csms.csms.received
            if a == "SignedFirmwareStatusNotification"]


def events(csms):
    return [p["type"] for _, a, p in csms.csms.received if a == "SecurityEventNotification"]


def install_root(csms, pem):
    r = csms.call("CP1", call.InstallCertificate(certificate_type=MF, certificate=pem))
    assert r.status == "Accepted"


def signed_update(csms, url, signing, sig, request_id=1):
    fw = {"location": url, "retrieveDateTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
          "signingCertificate": signing.pem, "signature": sig}
    check_ocpp("SignedUpdateFirmware", {"requestId": request_id, "firmware": fw})
    r = csms.call("CP1", call.SignedUpdateFirmware(request_id=request_id, firmware=fw))
    check_ocpp("SignedUpdateFirmware", {"status": r.status}, response=True)
    return r.status


def wait_signed(csms, status, timeout=90):
    csms.wait_for(lambda: status in [s for s, _ in signed_statuses(csms)], timeout)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_signed_bundle_is_verified_installed_and_reported(csms, runner, http, served, kind):
    _, data, pki = served
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    assert fw.status("fwv")["fwv"] != "9.9.9"
    install_root(csms, pki["root"].pem)
    # From now on an unsigned UpdateFirmware is refused, and nothing is downloaded.
    with pytest.raises(SecurityError):
        csms.call("CP1", call.UpdateFirmware(location=http.url("good.bundle"),
                                             retrieve_date=NOW.strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert not (runner.data / "fwupdate.json").exists()
    signer = pki[kind]
    assert signed_update(csms, http.url("good.bundle"), signer,
                         _sign(signer.key, data), request_id=42) == "Accepted"
    wait_signed(csms, "InstallRebooting")
    fw = runner.reboot(fw, timeout=90)
    wait_signed(csms, "Installed")
    assert signed_statuses(csms) == [(s, 42) for s in (
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting",
        "Installed")]
    assert [a for _, a, _ in csms.csms.received if a == "FirmwareStatusNotification"] == []
    assert fw.status("fwv")["fwv"] == "9.9.9"
    assert boots(csms)[-1]["firmwareVersion"] == "9.9.9"
    csms.wait_for(lambda: "FirmwareUpdated" in events(csms))
    assert not (runner.data / "fwupdate.json").exists()
    assert_all_valid(csms, ["SecurityError"])


def test_flipped_byte_is_invalid_signature_and_a_stranger_invalid_certificate(
        csms, runner, http, served):
    _, data, pki = served
    fw = runner.start()
    csms.wait_for(lambda: boots(csms))
    old = fw.status("fwv")["fwv"]
    # No ManufacturerRootCertificate yet: nothing can chain.
    assert signed_update(csms, http.url("good.bundle"), pki["ec"],
                         _sign(pki["ec"].key, data)) == "InvalidCertificate"
    install_root(csms, pki["root"].pem)
    assert signed_update(csms, http.url("good.bundle"), pki["stranger"],
                         _sign(pki["stranger"].key, data)) == "InvalidCertificate"
    csms.wait_for(lambda: events(csms).count("InvalidFirmwareSigningCertificate") == 2)
    # The signature is over the original bundle; the served file has a byte flipped.
    assert signed_update(csms, http.url("flipped.bundle"), pki["ec"],
                         _sign(pki["ec"].key, data), request_id=9) == "Accepted"
    wait_signed(csms, "InvalidSignature")
    csms.wait_for(lambda: "InvalidFirmwareSignature" in events(csms))
    assert signed_statuses(csms) == [("Downloading", 9), ("Downloaded", 9),
                                     ("InvalidSignature", 9)]
    assert fw.proc.poll() is None
    assert fw.status("fwv")["fwv"] == old
    assert not (runner.data / "slot.json").exists()
    assert not (runner.data / "app_a").exists() and not (runner.data / "app_b").exists()
    assert not (runner.data / "fwupdate.json").exists()
    assert not (runner.data / "fw.bundle").exists()
    assert "InvalidSignature" in json.dumps(signed_statuses(csms))
    assert_all_valid(csms)


class Frozen32Runner(Runner):
    """Runner on the firmware frozen into the 32-bit unix port (test_e2e_frozen32.py)."""

    def __init__(self, url, data, exe, heap):
        super().__init__(url, data)
        self.exe = exe
        self.heap = heap

    def start(self, setup=None):
        from e2e import Firmware

        os.makedirs(self.data, exist_ok=True)
        fw = Firmware(self.data, self.url, heap=self.heap)
        fw.exe = self.exe
        fw.frozen = True
        self.all.append(fw)
        return fw.start()


def test_frozen_32_bit_build_verifies_ecdsa_and_rsa_in_its_heap(csms, tmp_path, http, served):
    """The heaviest check (ECDSA P-256 in Python) and RSA-2048 on the frozen firmware with the
    heap of test_e2e_frozen32.py, up to the reboot. Not the boot into the installed slot: its
    modules are .mpy files loaded into the heap (not frozen), and the whole firmware does not
    fit 128 KB that way (MemoryError at start, then the rollback) - a limit of the A/B slot
    bundle on a frozen image, not of the signature checks."""
    from test_e2e_frozen32 import HEAP

    import mp32

    reason = mp32.skip_reason()
    if reason:
        pytest.skip(reason)
    _, data, pki = served
    runner = Frozen32Runner(csms.url(), tmp_path / "data", mp32.frozen(), HEAP)
    try:
        fw = runner.start()
        csms.wait_for(lambda: boots(csms), 30)
        install_root(csms, pki["root"].pem)
        assert signed_update(csms, http.url("flipped.bundle"), pki["ec"],
                             _sign(pki["ec"].key, data), request_id=1) == "Accepted"
        wait_signed(csms, "InvalidSignature")
        assert signed_update(csms, http.url("good.bundle"), pki["rsa"],
                             _sign(pki["rsa"].key, data), request_id=2) == "Accepted"
        wait_signed(csms, "InstallRebooting")
        assert fw.proc.wait(60) == 3  # the reboot
    finally:
        for f in runner.all:
            f.stop()
            print("---- firmware log ----\n" + f.output())
    assert signed_statuses(csms) == [
        ("Downloading", 1), ("Downloaded", 1), ("InvalidSignature", 1),
        ("Downloading", 2), ("Downloaded", 2), ("SignatureVerified", 2), ("Installing", 2),
        ("InstallRebooting", 2)]
    assert not [line for f in runner.all for line in f.lines
                if "MemoryError" in line or "Traceback" in line]
    assert_all_valid(csms)
