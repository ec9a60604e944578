"""Certificates and keys made with the `cryptography` package, for the device crypto tests
(lib/p256.py, der.py, rsa_verify.py, x509.py, csr.py). Host only.

    ca = make_cert("Root", key=ec_key(), ca=True)           # self-signed
    leaf = make_cert("CP1", key=rsa_key(), issuer=ca, o="CPO")
    leaf.der, leaf.cert (cryptography's), leaf.key (private key)
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

_RSA = {}


def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(bits=2048, slot=0):
    """An RSA key, one per (bits, slot) for the whole run: generation is slow."""
    if (bits, slot) not in _RSA:
        _RSA[bits, slot] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _RSA[bits, slot]


def name(cn, o=None):
    attrs = []
    if o is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


class Cert:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.pem = cert.public_bytes(serialization.Encoding.PEM).decode()


def make_cert(cn, key, issuer=None, o=None, ca=False, serial=None, not_before=None,
              not_after=None):
    """A certificate for `key`, signed by issuer (a Cert) or self-signed; SHA-256 always."""
    now = datetime.datetime(2025, 6, 1, 12, 30, 45, tzinfo=datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name(cn, o))
        .issuer_name(issuer.cert.subject if issuer else name(cn, o))
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or now)
        .not_valid_after(not_after or now + datetime.timedelta(days=365))
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    signer = issuer.key if issuer else key
    return Cert(b.sign(signer, hashes.SHA256()), key)
