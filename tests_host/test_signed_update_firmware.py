"""Unit tests of SignedUpdateFirmware (firmware/ops/signed_update_firmware.py) and the signed
part of cp.firmware (firmware/firmware_update/signed.py): the answer, the certificate chain to
an installed ManufacturerRootCertificate, the file signature check, the status payloads, and
what a plain UpdateFirmware gets once a manufacturer root is installed. The whole path runs on
the MicroPython VM in test_e2e_signed_firmware.py."""

import asyncio
import base64
import datetime
import hashlib
import os

import cryptokit
import pytest
from conftest import check_ocpp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from test_firmware_update import CP

from firmware.firmware_update import service, signed
from firmware.ocpp import router
from firmware.ops import signed_update_firmware as suf
from firmware.ops import update_firmware

NOW = datetime.datetime.now(datetime.timezone.utc)


def cert(cn, key, issuer=None, ca=False):
    return cryptokit.make_cert(cn, key, issuer=issuer, ca=ca,
                               not_before=NOW - datetime.timedelta(days=1),
                               not_after=NOW + datetime.timedelta(days=365))


def sign(key, data):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


@pytest.fixture(autouse=True)
def clock_set():
    """The clock set to now (other tests leave it anywhere): certificates are checked
    against it."""
    from firmware import clock

    saved = (clock._offset, clock._set, clock._set_ticks)
    clock.set(int(NOW.timestamp()))
    yield
    clock._offset, clock._set, clock._set_ticks = saved


class Security:
    def __init__(self):
        self.events = []

    def event(self, kind, tech=None):
        self.events.append(kind)


@pytest.fixture(scope="module")
def pki():
    root = cert("Maker Root", cryptokit.ec_key(), ca=True)
    other = cert("Other Root", cryptokit.ec_key(), ca=True)
    return {
        "root": root,
        "ec": cert("Maker Signing EC", cryptokit.ec_key(), issuer=root),
        "rsa": cert("Maker Signing RSA", cryptokit.rsa_key(), issuer=root),
        "stranger": cert("Stranger", cryptokit.ec_key(), issuer=other),
    }


def make_cp(tmp_path, root=None):
    cp = CP(tmp_path)
    cp.security = Security()
    cp.firmware = service.Firmware(cp)
    if root is not None:
        d = tmp_path / "security" / "certs"
        d.mkdir(parents=True)
        (d / "mf0123456789abcdef.pem").write_text(root.pem)
    return cp


def request(signing, sig="AAAA", location="http://h/fw.bundle", **kw):
    p = {"requestId": 7, "firmware": {"location": location,
                                      "retrieveDateTime": "2020-01-01T00:00:00Z",
                                      "signingCertificate": signing.pem, "signature": sig}}
    p.update(kw)
    check_ocpp(suf.ACTION, p)
    return p


def answer(cp, p):
    r = suf.signed_update_firmware(cp, p)
    check_ocpp(suf.ACTION, r, response=True)
    suf.signed_update_firmware_after(cp, p, r)
    return r["status"]


def test_status_payloads_are_valid():
    for st in signed.STATUSES:
        check_ocpp(signed.ACTION, signed.payload(st, 3))
        check_ocpp(signed.ACTION, signed.payload(st))
    with pytest.raises(ValueError):
        signed.payload("Bogus")


def test_accepted_with_a_certificate_of_the_installed_root(tmp_path, pki):
    cp = make_cp(tmp_path, pki["root"])
    assert answer(cp, request(pki["ec"], retries=2, retryInterval=5)) == "Accepted"
    st = cp.firmware.state
    assert (st["req"], st["sig"], st["tries"], st["gap"]) == (7, "AAAA", 2, 5)
    assert (tmp_path / signed.CERT).read_text() == pki["ec"].pem
    assert service.Firmware(cp).req == 7  # kept across a reboot
    # A second one while the first waits for its retrieveDateTime cancels it.
    p = request(pki["rsa"], sig="BBBB")
    p["requestId"] = 8
    assert answer(cp, p) == "AcceptedCanceled"
    assert (cp.firmware.state["req"], cp.firmware.state["sig"]) == (8, "BBBB")
    assert cp.security.events == []


@pytest.mark.parametrize("root", [None, "root"])
def test_invalid_certificate_without_a_chain_to_an_installed_root(tmp_path, pki, root):
    cp = make_cp(tmp_path, pki[root] if root else None)
    assert answer(cp, request(pki["stranger"])) == "InvalidCertificate"
    assert cp.security.events == ["InvalidFirmwareSigningCertificate"]
    assert cp.firmware.state is None and not (tmp_path / signed.CERT).exists()


def test_invalid_certificate_when_expired_or_garbage(tmp_path, pki):
    cp = make_cp(tmp_path, pki["root"])
    assert answer(cp, request(pki["ec"])) == "Accepted"  # in its validity
    cp = make_cp(tmp_path / "2", pki["root"])
    old = cryptokit.make_cert("Old", cryptokit.ec_key(), issuer=pki["root"])  # ended 2026-06
    assert answer(cp, request(old)) == "InvalidCertificate"
    p = request(pki["ec"])
    p["firmware"]["signingCertificate"] = "-----BEGIN CERTIFICATE-----\nAAAA\n"
    assert answer(cp, p) == "InvalidCertificate"
    assert cp.firmware.state is None


def test_rejected_bad_location_or_an_update_in_progress(tmp_path, pki):
    cp = make_cp(tmp_path, pki["root"])
    assert answer(cp, request(pki["ec"], location="file:///etc/passwd")) == "Rejected"
    cp.firmware.current = "Downloading"
    assert answer(cp, request(pki["ec"])) == "Rejected"
    assert cp.firmware.state is None


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_signature_checked_over_the_whole_file(tmp_path, pki, kind):
    cp = make_cp(tmp_path, pki["root"])
    body = os.urandom(3000)
    assert answer(cp, request(pki[kind], sig=sign(pki[kind].key, body))) == "Accepted"
    fw = cp.firmware
    check = signed.checker(fw, fw.state)
    asyncio.run(check(hashlib.sha256(body).hexdigest()))
    assert fw.current == "SignatureVerified"
    flipped = bytearray(body)
    flipped[1500] ^= 1
    with pytest.raises(ValueError):
        asyncio.run(check(hashlib.sha256(bytes(flipped)).hexdigest()))
    assert fw.current == "InvalidSignature"
    sent = cp.session.sent
    assert {a for a, _ in sent} == {signed.ACTION}
    assert [p["status"] for _, p in sent] == ["Downloaded", "SignatureVerified", "Downloaded",
                                              "InvalidSignature"]
    assert all(p["requestId"] == 7 for _, p in sent)
    assert cp.security.events == ["InvalidFirmwareSignature"]


def test_plain_update_firmware_refused_once_a_manufacturer_root_is_installed(tmp_path, pki):
    p = {"location": "http://h/fw.bundle", "retrieveDate": "2020-01-01T00:00:00Z"}
    assert update_firmware.update_firmware(make_cp(tmp_path / "a"), p) == {}
    with pytest.raises(router.OCPPError) as e:
        update_firmware.update_firmware(make_cp(tmp_path / "b", pki["root"]), p)
    assert e.value.code == router.SECURITY_ERROR
