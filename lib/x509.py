"""X.509 certificates (RFC 5280) for the OCPP security profiles: the fields the charger needs,
signature checks (ECDSA P-256 or RSA PKCS#1 v1.5, both SHA-256) and OCPP CertificateHashData.

parse() returns a dict:
  der         the certificate (bytes)
  tbs         memoryview of the DER tbsCertificate, the signed part (no copy)
  sig_alg     signatureAlgorithm OID, dotted string
  sig         signatureValue (bytes, without the unused-bits octet); for an RSA signature
              der.number()'s (length, words), read without a block of its size
  serial      serialNumber (int)
  issuer      issuer Name, DER bytes;  subject: subject Name, DER bytes
  cn, o       subject commonName and organizationName (str or None)
  key_type    "ec" (P-256), "rsa", or None for any other key
  key         (x, y) for "ec" (not checked to lie on the curve here: p256.verify()
              does), (n, e) for "rsa" (n as der.number() reads it, e an int),
              None otherwise
  spk         subjectPublicKey BIT STRING value (bytes, without the unused-bits octet);
              light() keeps only its SHA-256, "spk_sha"
  not_before, not_after   validity in unix seconds (UTC)
  ca          basicConstraints cA (False when absent)
Reading a certificate needs neither the RSA code nor the PEM armour (lib/pem.py); p256 is
imported only to check an ECDSA signature. The checks themselves are lib/certsig.py's,
which checks a light certificate's RSA signature with neither this module nor lib/der.py
loaded.
"""

import binascii
import hashlib

import der


def parse(data):
    """The fields of a DER certificate (see the module doc); ValueError if malformed."""
    try:
        return _parse(data if type(data) in (bytes, bytearray) else bytes(data))
    except (IndexError, TypeError):
        raise ValueError("bad certificate")


def parse_pem(text):
    """Every certificate of a PEM text (a chain gives several), parsed, in order."""
    from pem import pem_decode

    return [parse(d) for d in pem_decode(text)]


def _parse(data, want_sig=True):
    flash = isinstance(data, der.Flash)  # light_file(): "digest" and "sha", no "der"/"tbs"
    buf = data if flash else memoryview(data)
    t, s, e = der.read(buf, 0, len(buf))
    if t != 0x30 or e != len(buf):
        raise ValueError("not a certificate")
    (tt, tp, ts, te), (at, _, as_, ae), (st, _, ss, se) = der.items(buf, s, e)
    if tt != 0x30 or at != 0x30 or st != 0x03 or buf[ss] != 0:
        raise ValueError("not a certificate")
    f = der.items(buf, ts, te)
    i = 1 if f[0][0] == 0xA0 else 0  # version [0] EXPLICIT, absent for v1
    tags = [x[0] for x in f[i : i + 6]]
    if tags != [0x02, 0x30, 0x30, 0x30, 0x30, 0x30]:
        raise ValueError("bad tbsCertificate")
    _, _, os_, oe = der.items(buf, as_, ae)[0]
    _, _, ios, ioe = der.items(buf, f[i + 1][2], f[i + 1][3])[0]
    if buf[os_:oe] != buf[ios:ioe]:  # RFC 5280 §4.1.1.2: both must be the same
        raise ValueError("signature algorithm mismatch")
    alg = der.oid(buf, os_, oe)
    if not want_sig:  # a certificate only read, or checked later: no number of 512 B
        sig = None
    elif alg == "1.2.840.113549.1.1.11":  # certsig.RSA_SHA256 (not loaded for a read): a
        # word at a time, no block of its size (512 B for RSA-4096)
        sig = der.number(data, ss + 1, se, False)
    else:
        sig = data[ss + 1 : se]
    c = {
        "sig_alg": alg,
        "sig": sig,
        "serial": der.uint(buf, f[i][2], f[i][3]),
        "issuer": _tlv(data, f[i + 2]),
        "subject": _tlv(data, f[i + 4]),
        "ca": False,
    }
    if flash:
        c["digest"] = data.sha(tp, te)
        c["sha"] = data.sha(0, len(data))
    else:
        c["der"] = data
        c["tbs"] = buf[tp:te]
    c["cn"], c["o"] = _names(buf, f[i + 4])
    _, _, vs, ve = f[i + 3]
    (t1, _, s1, e1), (t2, _, s2, e2) = der.items(buf, vs, ve)
    c["not_before"] = _time(buf, t1, s1, e1)
    c["not_after"] = _time(buf, t2, s2, e2)
    _spki(c, buf, f[i + 5])
    for x in f[i + 6 :]:
        if x[0] == 0xA3:  # extensions [3] EXPLICIT
            c["ca"] = _is_ca(buf, der.read(buf, x[2], x[3]))
    return c


def _tlv(data, item):
    return data[item[1] : item[3]]


def _names(buf, item):
    # Name: SEQUENCE OF RDN SET OF AttributeTypeAndValue {OID, string}; the first CN and O.
    cn = o = None
    for _, _, rs, re_ in der.items(buf, item[2], item[3]):
        for _, _, ts, te in der.items(buf, rs, re_):
            (_, _, os_, oe), (_, _, vs, ve) = der.items(buf, ts, te)
            a = buf[os_:oe]
            if a == der.OID_CN and cn is None:
                cn = str(bytes(buf[vs:ve]), "utf-8")
            elif a == der.OID_O and o is None:
                o = str(bytes(buf[vs:ve]), "utf-8")
    return cn, o


def _time(buf, tag, s, e):
    # RFC 5280 §4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY), GeneralizedTime with YYYY.
    v = str(bytes(buf[s:e]), "ascii")
    n = 2 if tag == 0x17 else 4 if tag == 0x18 else 0
    if not n or len(v) != n + 11 or v[-1] != "Z" or not v[:-1].isdigit():
        raise ValueError("bad time")
    y = int(v[:n])
    if n == 2:
        y += 1900 if y >= 50 else 2000
    mo, d, h, mi, sec = [int(v[j : j + 2]) for j in range(n, n + 10, 2)]
    if not (0 < mo < 13 and 0 < d < 32 and h < 24 and mi < 60 and sec < 61):
        raise ValueError("bad time")
    if mo <= 2:  # days from 1970-01-01 (proleptic Gregorian, H. Hinnant's days_from_civil)
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (mo + (9 if mo <= 2 else -3)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + h * 3600 + mi * 60 + sec


def _spki(c, buf, item):
    # SubjectPublicKeyInfo {AlgorithmIdentifier {OID, params}, BIT STRING} (RFC 5280 §4.1).
    (_, _, as_, ae), (bt, _, bs, be) = der.items(buf, item[2], item[3])
    alg = der.items(buf, as_, ae)
    if bt != 0x03 or buf[bs] != 0:
        raise ValueError("bad public key")
    if isinstance(buf, der.Flash):  # light_file(): the bits hashed, never held (526 bytes
        c["spk_sha"] = buf.sha(bs + 1, be)  # for RSA-4096), the key read from the file
        spk, o, z = buf, bs + 1, be
    else:
        spk = c["spk"] = bytes(buf[bs + 1 : be])
        o, z = 0, len(spk)
    c["key_type"] = c["key"] = None
    a = buf[alg[0][2] : alg[0][3]]
    if a == der.OID_EC_KEY and len(alg) > 1 and buf[alg[1][2] : alg[1][3]] == der.OID_P256:
        c["key_type"], c["key"] = "ec", point(bytes(spk[o:z]))
    elif a == der.OID_RSA_KEY:
        t, s, e = der.read(spk, o, z)  # RSAPublicKey {n, e}, RFC 8017 §A.1.1
        (_, _, ns, ne), (_, _, es, ee) = der.items(spk, s, e)
        c["key_type"], c["key"] = "rsa", (der.number(spk, ns, ne), der.uint(spk, es, ee))


def point(data):
    """(x, y) of the P-256 public key 04 || X || Y (RFC 5480 §2.2), without the EC code:
    p256.verify() checks that it lies on the curve when it checks a signature with it, and
    a certificate that is only read (the charger's own, a chain's leaf compared with the
    key of the CSR) loads no EC code at all."""
    if len(data) != 65 or data[0] != 4:
        raise ValueError("not an uncompressed P-256 point")
    return int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:65], "big")


def _is_ca(buf, seq):
    # Extension {extnID, critical DEFAULT FALSE, extnValue OCTET STRING} (RFC 5280 §4.1);
    # BasicConstraints {cA BOOLEAN DEFAULT FALSE, pathLen} (§4.2.1.9).
    for _, _, es, ee in der.items(buf, seq[1], seq[2]):
        x = der.items(buf, es, ee)
        if buf[x[0][2] : x[0][3]] == der.OID_BASIC:
            _, bs, be = der.read(buf, x[-1][2], x[-1][3])
            bc = der.items(buf, bs, be)
            return bool(bc) and bc[0][0] == 0x01 and buf[bc[0][2]] != 0
    return False


def ecdsa_sig(sig):
    """(r, s) of a DER Ecdsa-Sig-Value {r INTEGER, s INTEGER} (RFC 3279 §2.2.3); None if
    malformed."""
    try:
        t, s, e = der.read(sig, 0, len(sig))
        (rt, _, rs, re_), (st, _, ss, se) = der.items(sig, s, e)
        if t == 0x30 and e == len(sig) and rt == st == 0x02 and sig[rs] | sig[ss] < 0x80:
            return der.uint(sig, rs, re_), der.uint(sig, ss, se)
    except (ValueError, IndexError):
        pass
    return None


def light(data):
    """parse(data) without the DER it points into ("der", "tbs") nor "spk": "digest" (SHA-256
    of the tbsCertificate, what verify_signed_by checks), "sha" (of the whole certificate)
    and "spk_sha" (of the subjectPublicKey bits, what cert_hash_data hashes) in their place.
    Called from a function that lets the DER go, a certificate is checked with no block of
    its size (4 KB for an RSA-4096 one) held."""
    c = parse(data)
    c["digest"] = hashlib.sha256(c.pop("tbs")).digest()
    c["sha"] = hashlib.sha256(c.pop("der")).digest()
    _key_hash(c)
    return c


def _key_hash(c):
    # A light certificate keeps the SHA-256 of its subjectPublicKey bits (what
    # cert_hash_data needs), not the bits: 526 bytes less for an RSA-4096 key.
    # (light_file() hashes them on flash, in _spki.)
    c["spk_sha"] = hashlib.sha256(c.pop("spk")).digest()


def light_file(path, want_sig=True):
    """light() of the DER certificate in the file at `path`, read through a small window
    (der.Flash): parsed and hashed with no block of its size held. ValueError if malformed
    (OSError if unreadable). want_sig=False: "sig" is None (a root whose own signature is
    not checked, a chain's link checked at the next one): no 512-byte number on the heap
    for an RSA-4096 one."""
    buf = der.Flash(path)
    try:
        return _parse(buf, want_sig)
    except (IndexError, TypeError):
        raise ValueError("bad certificate")
    finally:
        buf.close()


def verify_signed_by(cert, issuer):
    """True if issuer names cert's issuer and its key made cert's signature
    (ecdsa-with-SHA256 on P-256, sha256WithRSAEncryption). cert: parsed, or light().
    Times, CA flag and path length are the caller's to check."""
    import certsig

    if cert["issuer"] != issuer["subject"]:
        return False
    digest = cert["digest"] if "digest" in cert else hashlib.sha256(cert["tbs"]).digest()
    return certsig.verify(issuer, cert["sig_alg"], digest, cert["sig"])


def verify_file_signature(digest, signature_b64, cert):
    """True if signature_b64 (base64) signs a file whose SHA-256 is digest (32 bytes, hashed
    by the caller as the file streams in) with cert's key: PKCS#1 v1.5 for an RSA key, a DER
    ECDSA signature for a P-256 key (what `openssl dgst -sha256 -sign` makes)."""
    try:
        sig = binascii.a2b_base64("".join(signature_b64.split()))
    except ValueError:
        return False
    import certsig

    alg = certsig.ECDSA_SHA256 if cert["key_type"] == "ec" else certsig.RSA_SHA256
    return certsig.verify(cert, alg, digest, sig)


def cert_hash_data(cert, issuer):
    """OCPP CertificateHashDataType of cert; issuer is its issuer's certificate (cert itself
    for a self-signed root). ValueError if issuer is not the one cert names."""
    if cert["issuer"] != issuer["subject"]:
        raise ValueError("not the issuer of this certificate")
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": _hex(cert["issuer"]),  # over the DER issuer Name
        # over the subjectPublicKey bits (a light() issuer has only their hash)
        "issuerKeyHash": binascii.hexlify(
            issuer["spk_sha"] if "spk_sha" in issuer else hashlib.sha256(issuer["spk"]).digest()
        ).decode(),
        "serialNumber": "%x" % cert["serial"],  # hex, no leading zeros
    }


def _hex(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()
