"""Test PKI for TLS tests (host only, CPython).

`make_pki(tmpdir)` builds a throw-away CA, a server certificate (SAN: IP 127.0.0.1 and DNS
localhost), a client certificate for mutual TLS, a second unrelated CA ("wrong" CA), and a
server certificate for another name (for host name mismatch tests). Everything is written as
PEM files in `tmpdir` and returned as paths and PEM strings:

    pki["ca_pem"], pki["ca"]                  CA certificate (PEM text, path)
    pki["ca_key_pem"]                         its private key (to sign CSRs in tests)
    pki["server_cert"], pki["server_key"]     paths; *_pem: PEM text
    pki["other_cert"], pki["other_key"]       server cert for "other.example" only
    pki["client_cert"], pki["client_key"]     client cert for mutual TLS (CN "CP1")
    pki["wrong_ca_pem"], pki["wrong_ca"]      an unrelated CA

`server_context(pki, client_auth=False, name="server")` returns an `ssl.SSLContext` for a test
server; with client_auth the server requires a client certificate signed by the CA.
Keys are EC P-256: fast to generate and small for the MicroPython mbedTLS handshake.
"""

import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(
        now + datetime.timedelta(days=30)
    )


def _make_ca(cn):
    key = _key()
    builder = _validity(
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
    )
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        ),
        True,
    )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
    )
    return key, builder.sign(key, hashes.SHA256())


def _make_leaf(ca_key, ca_cert, cn, sans, usage):
    key = _key()
    builder = _validity(
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
    )
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
    )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_pki(tmpdir):
    """Create the test PKI in `tmpdir` (str or path-like); returns a dict (see module doc)."""
    tmpdir = str(tmpdir)
    ca_key, ca = _make_ca("Test CA")
    _, wrong_ca = _make_ca("Wrong CA")
    srv_key, srv = _make_leaf(
        ca_key,
        ca,
        "localhost",
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    oth_key, oth = _make_leaf(
        ca_key,
        ca,
        "other.example",
        [x509.DNSName("other.example")],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    cli_key, cli = _make_leaf(ca_key, ca, "CP1", None, ExtendedKeyUsageOID.CLIENT_AUTH)
    items = {
        "ca": _cert_pem(ca),
        "ca_key": _key_pem(ca_key),
        "wrong_ca": _cert_pem(wrong_ca),
        "server_cert": _cert_pem(srv),
        "server_key": _key_pem(srv_key),
        "other_cert": _cert_pem(oth),
        "other_key": _key_pem(oth_key),
        "client_cert": _cert_pem(cli),
        "client_key": _key_pem(cli_key),
    }
    pki = {}
    for name, pem in items.items():
        path = os.path.join(tmpdir, name + ".pem")
        with open(path, "w") as f:
            f.write(pem)
        pki[name] = path
        pki[name + "_pem"] = pem
    return pki


def server_context(pki, client_auth=False, name="server"):
    """SSLContext for a test server presenting `name` ("server" or "other")."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki[name + "_cert"], pki[name + "_key"])
    if client_auth:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=pki["ca"])
    return ctx
