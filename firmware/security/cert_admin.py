"""The root certificate store's changes and listing (InstallCertificate, DeleteCertificate,
GetInstalledCertificateIds; the rules: firmware/security/certs.py), imported by those
requests' message modules only.
"""

import binascii
import os

import fs
import log
from firmware.security.certs import _DER, _PREFIX, TYPES, _dir, _light, files


def take_pem(payload, key, dst):
    """The PEM text payload[key] decoded: the DER of its first block written to the file
    `dst`, then the text dropped from the payload (a 5.5 KB string freed before any
    certificate is parsed or checked). (blocks in the text, bytes of the first);
    ValueError if not PEM, and the text stays on an error (a retry after a MemoryError
    reads it again)."""
    from compat import lend

    pem = lend("pem")  # the parse that follows reads DER only
    v = payload[key]
    # A long text the frame kept on flash (wsfar.Far) is decoded from there, a line at a time.
    got = pem.pem_file(v.pieces if hasattr(v, "pieces") else (lambda: pem.text_lines(v)), dst)
    del payload[key]
    return got


def install(cp, kind, payload):
    """"Accepted" | "Rejected" | "Failed" (InstallCertificate.conf status) for the PEM text
    of payload["certificate"] (dropped from the payload once decoded). The text is decoded
    into a DER file (x509.der: not a .pem, so never taken for an installed root), checked
    from there with no block of its size on the heap, and written as the root's .pem only
    once accepted; nothing of it stays otherwise."""
    from firmware.ocpp import router

    tmp = _dir(cp) + "/" + _DER
    try:
        try:
            fs.makedirs(_dir(cp))
            one = router.roomy(take_pem, payload, "certificate", tmp)[0] == 1
            c = router.roomy(_root, tmp) if one else None  # reads only: may run twice
        except ValueError:  # not PEM
            c = None
        except OSError as e:
            log.error("certs", "write failed", e)
            return "Failed"
        if c is None:
            return "Rejected"
        name = _PREFIX[TYPES.index(kind)] + binascii.hexlify(c["sha"]).decode()[:16] + ".pem"
        path = _dir(cp) + "/" + name
        have = files(cp)
        if path in have or len(have) >= cp.config.get("CertificateStoreMaxLength"):
            return "Accepted" if path in have else "Rejected"
        from pem import pem_copy

        try:
            fs.write_atomic(path, lambda f: pem_copy(f, tmp))
        except OSError as e:
            log.error("certs", "write failed", e)
            return "Failed"
        return "Accepted"
    finally:
        fs.remove(tmp)


def _root(path):
    """x509.light of the DER file at `path` when it is one self-signed CA certificate whose
    signature verifies (certs.signed: without the parser loaded), else None."""
    from firmware.security.certs import signed

    c = _light_file(path)
    return c if c is not None and c["ca"] and c["issuer"] == c["subject"] and \
        signed(c, c) else None


def _light_file(path):
    import x509

    try:
        return x509.light_file(path)
    except ValueError:
        return None


def hash_data(path):
    import x509

    c = _light(None, path, 0)
    if c is None:
        raise ValueError("no certificate")
    return x509.cert_hash_data(c, c)


def ids(cp, kind):
    out = []
    for p in files(cp, kind):
        try:
            out.append(hash_data(p))
        except (OSError, ValueError) as e:
            log.error("certs", "unreadable", p, e)
    return out


def delete(cp, hd):
    """"Accepted" | "Failed" | "NotFound" (DeleteCertificate.conf status)."""
    want = (hd["hashAlgorithm"], hd["issuerNameHash"].lower(), hd["issuerKeyHash"].lower(),
            hd["serialNumber"].lower().lstrip("0") or "0")
    for p in files(cp):
        try:
            h = hash_data(p)
        except (OSError, ValueError):
            continue
        if (h["hashAlgorithm"], h["issuerNameHash"], h["issuerKeyHash"],
                h["serialNumber"]) != want:
            continue
        cs = files(cp, TYPES[0])
        if (p in cs and len(cs) == 1 and cp.config.get("SecurityProfile") >= 2
                and not cp.config.get("ocppsc")):
            return "Failed"
        try:
            os.remove(p)
        except OSError:
            return "Failed"
        return "Accepted"
    return "NotFound"
