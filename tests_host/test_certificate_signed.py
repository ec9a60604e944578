"""CertificateSigned (firmware/ops/certificate_signed.py, firmware/security/identity.py): a
chain is installed only when it holds the key of the last CSR, names the serial and CpoName,
is valid now and chains to a trusted root; anything else is Rejected, changes nothing and
raises InvalidChargePointCertificate. Certificates made with `cryptography` (cryptokit)."""

import datetime
import os
import sys

import pytest
from conftest import check_ocpp
from cpkit import FakeCP
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptokit import ec_key, make_cert, name

from firmware import clock
from firmware.config import Config
from firmware.ops import certificate_signed
from firmware.security import cert_admin, certs, identity


class Events:
    def __init__(self):
        self.got = []

    def event(self, kind, tech=None):
        self.got.append(kind)


class CP(FakeCP):
    def __init__(self, data_dir):
        self._declare()
        self.data_dir = str(data_dir)
        self.config = Config(self.data_dir)
        self.info = {"serial": "SN-1", "fw": "0.1.0"}
        self.security = Events()


@pytest.fixture
def cp(tmp_path):
    clock.set(int(datetime.datetime(2025, 7, 1).timestamp()))
    cp = CP(tmp_path)
    assert cp.config.ocpp_set("CpoName", "CPO") == "Accepted"
    return cp


def _issue(csr_pem, issuer, cn="SN-1", o="CPO", days=365):
    req = cx.load_pem_x509_csr(csr_pem.encode())
    now = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
    b = (cx.CertificateBuilder().subject_name(name(cn, o)).issuer_name(issuer.cert.subject)
         .public_key(req.public_key()).serial_number(7).not_valid_before(now)
         .not_valid_after(now + datetime.timedelta(days=days)))
    return b.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _answer(cp, chain):
    p = {"certificateChain": chain}
    check_ocpp("CertificateSigned", p)
    r = certificate_signed.certificate_signed(cp, p)
    check_ocpp("CertificateSigned", r, response=True)
    return r["status"]


def _pki(cp):
    root = make_cert("Root", ec_key(), ca=True)
    sub = make_cert("Sub", ec_key(), issuer=root, ca=True)
    assert cert_admin.install(cp, certs.TYPES[0], {"certificate": root.pem}) == "Accepted"
    return root, sub


def test_a_chain_through_a_sub_ca_is_installed_with_the_key(cp, monkeypatch):
    root, sub = _pki(cp)
    csr = identity.new_csr(cp)
    chain = _issue(csr, sub) + sub.pem
    monkeypatch.delitem(sys.modules, "firmware.security.cert_admin")
    assert _answer(cp, chain) == "Accepted"
    # The chain's check reads roots only: the store's changes are not loaded for it.
    assert "firmware.security.cert_admin" not in sys.modules
    cert, key = certs.client_pair(cp)
    assert cert.count("BEGIN CERTIFICATE") == 2 and key.startswith("-----BEGIN EC PRIVATE")
    assert cp.security.got == []
    assert _answer(cp, chain) == "Rejected"  # one certificate per request


def test_a_chain_that_ends_with_the_installed_root_itself_is_installed(cp):
    """The last certificate may be the trusted root (compared by its SHA-256 once the
    chain's DER is let go), or one it signed; a lookalike root with another key is not."""
    root, sub = _pki(cp)
    csr = identity.new_csr(cp)
    assert _answer(cp, _issue(csr, sub) + sub.pem + root.pem) == "Accepted"
    csr = identity.new_csr(cp)
    fake = make_cert("Root", ec_key(), ca=True)  # same name, another key
    assert _answer(cp, _issue(csr, sub) + sub.pem + fake.pem) == "Rejected"


@pytest.mark.parametrize("where", ["ocppsc", "file"])
def test_an_unusable_root_is_skipped_and_the_others_still_trusted(cp, where, capsys):
    """Roots are parsed one at a time (certs.roots): a broken one before the root that signed
    the chain is logged and skipped, not taken for "no roots at all"."""
    root, sub = _pki(cp)
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    if where == "ocppsc":
        assert cp.config.update({"ocppsc": broken}, "api") == {}
    else:  # sorts before the good root's file
        with open(certs.files(cp)[0].rsplit("/", 1)[0] + "/cs0.pem", "w") as f:
            f.write(broken)
    csr = identity.new_csr(cp)
    assert _answer(cp, _issue(csr, sub) + sub.pem) == "Accepted"
    assert "unusable root" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["other_key", "cn", "o", "untrusted", "expired", "ca_leaf",
                                 "too_long", "garbage"])
def test_a_bad_chain_is_rejected_and_changes_nothing(cp, bad):
    root, sub = _pki(cp)
    csr = identity.new_csr(cp)
    if bad == "other_key":
        chain = make_cert("SN-1", ec_key(), issuer=root, o="CPO").pem
    elif bad == "cn":
        chain = _issue(csr, root, cn="SN-2")
    elif bad == "o":
        chain = _issue(csr, root, o="Other")
    elif bad == "untrusted":
        chain = _issue(csr, make_cert("Root", ec_key(), ca=True))
    elif bad == "expired":
        chain = _issue(csr, root, days=10)
    elif bad == "ca_leaf":
        chain = sub.pem
    elif bad == "too_long":
        chain = _issue(csr, root) + "\n" * 6000
    else:
        chain = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert _answer(cp, chain) == "Rejected"
    assert certs.client_pair(cp) is None
    assert sorted(os.listdir(cp.data_dir + "/security")) == ["certs", "csr.key"]  # no cp.new
    assert cp.security.got == ["InvalidChargePointCertificate"]
    assert _answer(cp, _issue(csr, root)) == "Accepted"  # the request is still open


def test_profile_3_needs_a_client_certificate(cp):
    from firmware.security.service import Security

    sec = Security.__new__(Security)
    sec.dir = cp.data_dir + "/security"
    assert not sec.has_client_cert()
    root, _ = _pki(cp)
    assert _answer(cp, _issue(identity.new_csr(cp), root)) == "Accepted"
    assert sec.has_client_cert()


def test_the_pem_text_leaves_the_payload_once_decoded(cp):
    """The 5.5 KB texts are dropped from the CALL's payload as soon as their DER is decoded,
    so they are freed before the certificates are parsed and checked (issue 9: the
    certificates peak); a text that is refused before decoding stays."""
    from firmware.ops import install_certificate

    root = make_cert("Root", ec_key(), ca=True)
    p = {"certificateType": certs.TYPES[0], "certificate": root.pem}
    assert install_certificate.install_certificate(cp, p) == {"status": "Accepted"}
    assert p == {"certificateType": certs.TYPES[0]}
    csr = identity.new_csr(cp)
    p = {"certificateChain": _issue(csr, root)}
    assert certificate_signed.certificate_signed(cp, p) == {"status": "Accepted"}
    assert p == {}
    p = {"certificateChain": "\n" * 6000}  # too long: refused before decoding
    assert certificate_signed.certificate_signed(cp, p) == {"status": "Rejected"}
    assert len(p["certificateChain"]) == 6000


def test_install_certificate_rules_and_nothing_left_behind(cp):
    """A root is decoded into a DER file (x509.der) and checked from there: it is written
    under its name only when accepted, and nothing else stays on flash."""
    def install(pem):
        return cert_admin.install(cp, certs.TYPES[0], {"certificate": pem})

    def names():
        return sorted(os.listdir(cp.data_dir + "/security/certs"))

    root = make_cert("Root", ec_key(), ca=True)
    assert install(root.pem) == "Accepted"
    one = names()
    assert len(one) == 1 and one[0].startswith("cs")
    assert install(root.pem) == "Accepted" and names() == one  # already there
    leaf = make_cert("Leaf", ec_key(), issuer=root)
    other = make_cert("Other", ec_key(), ca=True)
    for bad in (leaf.pem,  # not a CA, not self-signed
                other.pem + root.pem,  # two certificates
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "no pem at all"):
        assert install(bad) == "Rejected", bad[:40]
        assert names() == one
    assert install(other.pem) == "Accepted" and len(names()) == 2 and one[0] in names()
    # The store takes CertificateStoreMaxLength roots: the one being checked is not counted.
    limit = cp.config.get("CertificateStoreMaxLength")
    while len(names()) < limit - 1:
        assert install(make_cert("More", ec_key(), ca=True).pem) == "Accepted"
    assert install(make_cert("Last", ec_key(), ca=True).pem) == "Accepted"
    assert len(names()) == limit
    assert install(make_cert("Over", ec_key(), ca=True).pem) == "Rejected"
    assert len(names()) == limit and all(n.startswith("cs") for n in names())


def test_an_rsa_signature_is_checked_with_the_parser_let_go(cp, monkeypatch):
    """certs.signed: lib/x509.py and lib/der.py are out of sys.modules whenever an RSA
    signature is checked (the certificates' peak): an InstallCertificate's root, each link
    of a CertificateSigned's chain and its last link to the root; and the check's code
    (lib/certsig.py, lib/rsa_verify.py) once it is done. The next read or check imports
    them anew, and the answers are those of a check with them loaded."""
    import builtins

    from cryptokit import rsa_key

    seen = []
    load = builtins.__import__

    def spied(name, *a, **kw):  # each import of rsa_verify anew gets the spy
        mod = load(name, *a, **kw)
        if name == "rsa_verify" and not hasattr(mod.verify, "real"):
            def spy(*args):
                seen.append(("x509" in sys.modules, "der" in sys.modules))
                return spy.real(*args)

            spy.real = mod.verify
            mod.verify = spy
        return mod

    monkeypatch.setattr(builtins, "__import__", spied)
    root = make_cert("Root", rsa_key(2048), ca=True)
    sub = make_cert("Sub", rsa_key(2048, slot=1), issuer=root, ca=True)
    assert cert_admin.install(cp, certs.TYPES[0], {"certificate": root.pem}) == "Accepted"
    assert seen == [(False, False)]
    csr = identity.new_csr(cp)
    assert _answer(cp, _issue(csr, sub) + sub.pem) == "Accepted"
    assert seen == [(False, False)] * 3  # the root; the leaf by Sub, Sub by the root
    assert "rsa_verify" not in sys.modules and "certsig" not in sys.modules
    csr = identity.new_csr(cp)
    lookalike = make_cert("Sub", rsa_key(2048, slot=2), issuer=root, ca=True)
    assert _answer(cp, _issue(csr, sub) + lookalike.pem) == "Rejected"  # signed by another


def test_the_request_key_is_read_without_the_ec_code(cp):
    """identity._request_key: the public key of csr.key, read from its publicKey field
    without loading csr or p256 (the RSA checks of the rest of a chain need the room), the
    very key csr.load_key derives from the private key; None without a usable file."""
    import csr
    import der
    import pem

    identity.new_csr(cp)
    path = cp.data_dir + "/security/csr.key"
    with open(path) as f:
        key = f.read()
    want = csr.load_key(key)[1]
    for m in ("csr", "p256"):
        sys.modules.pop(m, None)
    assert identity._request_key(cp) == want
    assert "csr" not in sys.modules and "p256" not in sys.modules
    d = csr.load_key(key)[0]
    without = der.enc(0x30, der.enc_uint(1), der.enc(0x04, d.to_bytes(32, "big")),
                      der.enc(0xA0, der.enc(0x06, der.OID_P256)))
    for text in (pem.pem_encode(without, "EC PRIVATE KEY"), key[:200], key + key, ""):
        with open(path, "w") as f:
            f.write(text)
        assert identity._request_key(cp) is None, text[:40]
    os.remove(path)
    assert identity._request_key(cp) is None


def test_certificates_are_still_read_when_the_flash_has_no_room_for_a_der(cp, monkeypatch):
    """Reading a certificate writes its DER beside it (pem.pem_file): with no room for it
    (ENOSPC) the certificate is decoded on the heap as before, so the store still lists,
    deletes and trusts what it holds; a chain checked then is judged the same."""
    import builtins
    import hashlib

    root, sub = _pki(cp)
    csr = identity.new_csr(cp)
    chain = _issue(csr, sub) + sub.pem
    ids = cert_admin.ids(cp, certs.TYPES[0])
    real = builtins.open

    def full(path, mode="r", *a, **kw):  # the flash has no room for a DER file
        if str(path).endswith(".der") and "w" in mode:
            raise OSError(28, "ENOSPC")
        return real(path, mode, *a, **kw)

    monkeypatch.setattr(builtins, "open", full)
    assert cert_admin.ids(cp, certs.TYPES[0]) == ids and len(ids) == 1
    assert [c["sha"] for c in certs.roots(cp)] == [hashlib.sha256(root.der).digest()]
    assert identity._chain(cp).startswith("unreadable")  # no cp.new: judged, not raised
    with real(cp.data_dir + "/security/cp.new", "w") as f:
        f.write(chain)
    last = identity._chain(cp)  # decoded on the heap: the same judgement
    assert type(last) is dict and last["sha"] == hashlib.sha256(sub.der).digest()
    assert identity._rooted(cp, last) is None
    monkeypatch.setattr(builtins, "open", real)
    assert _answer(cp, chain) == "Accepted"
    monkeypatch.setattr(builtins, "open", full)
    assert cert_admin.delete(cp, ids[0]) == "Accepted" and certs.files(cp) == []


def test_the_csr_code_is_let_go_before_its_answer_is_awaited(cp):
    """SignCertificate: the key, the CSR and the modules that made them (identity, csr,
    p256, der, pem) are out of sys.modules while the answer is awaited, so that a
    CertificateSigned arriving at once finds their heap free; the CSR sent is the one the
    key on flash belongs to."""
    import asyncio

    import csr as csrmod

    from firmware.ops import sign_certificate

    seen = []

    class Link:
        async def call(self, action, payload):
            seen.append((action, payload, [m for m in ("firmware.security.identity", "csr",
                                                       "p256", "der", "pem")
                                           if m in sys.modules]))
            check_ocpp(action, payload)
            return {"status": "Accepted"}

    assert asyncio.run(sign_certificate.send(cp, Link())) == "Accepted"
    (action, payload, loaded), = seen
    assert action == "SignCertificate" and loaded == []
    with open(cp.data_dir + "/security/csr.key") as f:
        q = csrmod.load_key(f.read())[1]
    req = cx.load_pem_x509_csr(payload["csr"].encode())
    assert req.is_signature_valid and req.public_key().public_numbers().x == q[0]


def test_a_chain_is_checked_with_one_signature_read_at_a_time(cp, monkeypatch):
    """identity._chain reads a link's own signature only where it is checked: the leaf
    with it, each link after it without (its signature is checked at the next link, where
    it is read again), the roots without theirs (a root here only signs)."""
    from cryptokit import rsa_key

    reads = []
    real = certs._light

    def spy(cp_, path, i, want_sig=True):
        c = real(cp_, path, i, want_sig)
        reads.append((path.rsplit("/", 1)[-1][:2] if path else "sc", i, want_sig,
                       None if c is None else c["sig"] is not None))
        return c

    monkeypatch.setattr(certs, "_light", spy)
    root = make_cert("Root", rsa_key(2048), ca=True)
    sub = make_cert("Sub", rsa_key(2048, slot=1), issuer=root, ca=True)
    assert cert_admin.install(cp, certs.TYPES[0], {"certificate": root.pem}) == "Accepted"
    reads.clear()
    assert _answer(cp, _issue(identity.new_csr(cp), sub) + sub.pem) == "Accepted"
    chain = [r for r in reads if r[0] == "cp"]
    assert chain == [("cp", 0, True, True), ("cp", 1, False, False), ("cp", 1, True, True),
                     ("cp", 2, False, None)]
    assert [r[2:] for r in reads if r[0] != "cp"] == [(False, None), (False, False)]
