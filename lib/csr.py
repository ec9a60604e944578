"""PKCS#10 certificate signing request (RFC 2986) for the charger's P-256 key, and the key
itself as SEC 1 ECPrivateKey (RFC 5915), the form TLS stacks (mbedTLS, OpenSSL) load.

    d, q = p256.keygen()
    pem = make_csr(d, q, "CP0001", "My CPO")   # OCPP SignCertificate.req csr
    key = key_pem(d, q)                          # store on flash, never send
"""

import hashlib

import der
import p256
import pem

_EC_ALG = der.enc(0x30, der.enc(0x06, der.OID_EC_KEY), der.enc(0x06, der.OID_P256))
_ECDSA_ALG = der.enc(0x30, der.enc(0x06, der.OID_ECDSA_SHA256))  # no parameters, RFC 5758


def _attr(oid, value):
    if not 0 < len(value) <= 64:  # ub-common-name, ub-organization-name: RFC 5280 App. A.1
        raise ValueError("name must have 1 to 64 characters")
    # RelativeDistinguishedName SET {AttributeTypeAndValue {OID, UTF8String}}
    return der.enc(0x31, der.enc(0x30, der.enc(0x06, oid), der.enc(0x0C, value.encode())))


def make_csr(d, q, cn, o):
    """PEM CertificationRequest for subject O=o, CN=cn (o may be empty: left out), the
    public key q = (x, y) of private key d, signed with ecdsa-with-SHA256."""
    name = der.enc(0x30, _attr(der.OID_O, o) if o else b"", _attr(der.OID_CN, cn))
    spki = der.enc(0x30, _EC_ALG, der.enc(0x03, b"\x00", p256.encode_point(q)))
    # CertificationRequestInfo {version 0, subject, subjectPKInfo, attributes [0] {}}
    info = der.enc(0x30, der.enc_uint(0), name, spki, b"\xa0\x00")
    r, s = p256.sign(d, hashlib.sha256(info).digest())
    sig = der.enc(0x30, der.enc_uint(r), der.enc_uint(s))
    return pem.pem_encode(
        der.enc(0x30, info, _ECDSA_ALG, der.enc(0x03, b"\x00", sig)), "CERTIFICATE REQUEST"
    )


def key_pem(d, q):
    """PEM "EC PRIVATE KEY": ECPrivateKey {1, d, [0] prime256v1, [1] public key}."""
    body = der.enc(
        0x30,
        der.enc_uint(1),
        der.enc(0x04, d.to_bytes(32, "big")),
        der.enc(0xA0, der.enc(0x06, der.OID_P256)),
        der.enc(0xA1, der.enc(0x03, b"\x00", p256.encode_point(q))),
    )
    return pem.pem_encode(body, "EC PRIVATE KEY")


def load_key(text):
    """(d, q) from key_pem()'s text; ValueError if it is not a P-256 ECPrivateKey."""
    keys = pem.pem_decode(text, "EC PRIVATE KEY")
    if len(keys) != 1:
        raise ValueError("no EC PRIVATE KEY")
    b = keys[0]
    t, s, e = der.read(b, 0, len(b))
    f = der.items(b, s, e)
    if t != 0x30 or len(f) < 2 or f[1][0] != 0x04 or f[1][3] - f[1][2] != 32:
        raise ValueError("not a P-256 private key")
    for t, _, s, e in f[2:]:
        if t == 0xA0 and b[s:e] != der.enc(0x06, der.OID_P256):
            raise ValueError("not a P-256 private key")
    d = der.uint(b, f[1][2], f[1][3])
    if not 0 < d < p256.N:
        raise ValueError("private key out of range")
    return d, p256.public_key(d)
