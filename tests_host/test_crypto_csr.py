"""lib/csr.py: the charger's CSR and key file, read by `cryptography`; and the whole device
crypto (keys, CSR, certificate checks, hash data, file signatures) on the MicroPython unix
port, checked on the host."""

import base64
import hashlib
import json

import csr
import p256
import pytest
import x509
from conftest import check_ocpp, mp_run
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509.oid import NameOID
from cryptokit import ec_key, make_cert, rsa_key


def _check_csr(pem, cn, o, q):
    req = cx.load_pem_x509_csr(pem.encode())
    assert req.is_signature_valid
    assert req.signature_hash_algorithm.name == "sha256"
    assert req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
    orgs = req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [a.value for a in orgs] == ([o] if o else [])
    n = req.public_key().public_numbers()
    assert isinstance(n.curve, ec.SECP256R1) and (n.x, n.y) == q
    return req


def test_csr_is_signed_and_names_the_charger():
    d, q = p256.keygen()
    pem = csr.make_csr(d, q, "CP0001", "ACME Charging")
    assert pem.startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    _check_csr(pem, "CP0001", "ACME Charging", q)
    check_ocpp("SignCertificate", {"csr": pem})


def test_csr_without_o_and_with_unicode_names():
    d, q = p256.keygen()
    _check_csr(csr.make_csr(d, q, "Ladesäule-7", ""), "Ladesäule-7", None, q)
    _check_csr(csr.make_csr(d, q, "CP", "Stadtwerke Müller"), "CP", "Stadtwerke Müller", q)


def test_csr_refuses_empty_or_overlong_names():
    d, q = p256.keygen()
    for cn, o in (("", "O"), ("x" * 65, "O"), ("CP", "o" * 65)):
        with pytest.raises(ValueError):
            csr.make_csr(d, q, cn, o)


def test_key_file_loads_in_cryptography_and_back():
    d, q = p256.keygen()
    pem = csr.key_pem(d, q)
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert key.private_numbers().private_value == d
    assert csr.load_key(pem) == (d, q)


def test_load_key_refuses_other_keys():
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    for bad in (p384, "", "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----"):
        with pytest.raises(ValueError):
            csr.load_key(bad)


def _mp_json(code, heap="256k"):
    r = mp_run(code, heap=heap, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_keygen_and_csr_on_micropython():
    got = _mp_json(
        "import json, p256, csr\n"
        "d, q = p256.keygen()\n"
        "print(json.dumps([csr.make_csr(d, q, 'CP0042', 'ACME'), csr.key_pem(d, q)]))\n"
    )
    pem, key_pem = got
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    n = key.public_key().public_numbers()
    _check_csr(pem, "CP0042", "ACME", (n.x, n.y))


def test_certificate_checks_on_micropython_match_the_host():
    ec_root = make_cert("EC Root", ec_key(), o="CA", ca=True)
    rsa_root = make_cert("RSA Root", rsa_key(), o="CA", ca=True)
    leaf = make_cert("CP0001", ec_key(), issuer=rsa_root, o="ACME")
    signer = make_cert("fw", rsa_key(slot=1), issuer=ec_root, o="Vendor")
    fw = b"firmware image " * 500
    sig_rsa = base64.b64encode(signer.key.sign(fw, padding.PKCS1v15(), hashes.SHA256()))
    sig_ec = base64.b64encode(leaf.key.sign(fw, ec.ECDSA(hashes.SHA256())))
    code = """
import json, hashlib, x509
chain = x509.parse_pem(%r)
leaf, rsa_root, signer, ec_root = chain
h = hashlib.sha256()
fw = %r
for i in range(0, len(fw), 512):
    h.update(fw[i:i + 512])
dg = h.digest()
print(json.dumps({
    "verify": [x509.verify_signed_by(leaf, rsa_root), x509.verify_signed_by(signer, ec_root),
               x509.verify_signed_by(ec_root, ec_root), x509.verify_signed_by(leaf, ec_root)],
    "hash": [x509.cert_hash_data(leaf, rsa_root), x509.cert_hash_data(signer, ec_root)],
    "fields": [[c["cn"], c["o"], c["not_after"], c["ca"], c["key_type"]] for c in chain],
    "file": [x509.verify_file_signature(dg, %r, signer), x509.verify_file_signature(dg, %r, leaf),
             x509.verify_file_signature(dg, %r, leaf)],
}))
""" % (leaf.pem + rsa_root.pem + signer.pem + ec_root.pem, fw, sig_rsa.decode(),
       sig_ec.decode(), sig_rsa.decode())
    got = _mp_json(code)
    assert got["verify"] == [True, True, True, False]
    host = [x509.cert_hash_data(x509.parse(leaf.der), x509.parse(rsa_root.der)),
            x509.cert_hash_data(x509.parse(signer.der), x509.parse(ec_root.der))]
    assert got["hash"] == host
    assert host[0]["issuerNameHash"] == hashlib.sha256(rsa_root.cert.subject.public_bytes()
                                                       ).hexdigest()
    assert got["fields"][0] == ["CP0001", "ACME", int(leaf.cert.not_valid_after_utc.timestamp()),
                                False, "ec"]
    assert got["fields"][1][3:] == [True, "rsa"]
    assert got["file"] == [True, True, False]
