"""Root certificate store on flash (Security Whitepaper: InstallCertificate, DeleteCertificate,
GetInstalledCertificateIds). Imported only when one of those requests (or a wss:// connection)
needs it; lib/x509 is imported only to install, list or delete.

Files: <data_dir>/security/certs/<cs|mf><first 16 hex of SHA-256 of the DER>.pem, one
certificate each (CentralSystemRootCertificate: cs, ManufacturerRootCertificate: mf).
Rules (decided here): a root must be one self-signed CA certificate whose signature verifies
(ECDSA P-256 or RSA, SHA-256), else Rejected; installing one already there is Accepted and
changes nothing; at most CertificateStoreMaxLength roots of both kinds together (Rejected
beyond); AdditionalRootCertificateCheck is false (read-only), so several
CentralSystemRootCertificates may be installed and each is trusted for the OCPP link, as
`ocppsc` is. DeleteCertificate refuses (Failed) to remove the last CentralSystemRootCertificate
while SecurityProfile >= 2 and no `ocppsc` is set: the link could not be verified any more.
"""

import binascii
import os

import fs
import log

TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
_PREFIX = ("cs", "mf")
_DER = "x509.der"  # a certificate being read, decoded beside its PEM file (_light)


def _dir(cp):
    return cp.data_dir.rstrip("/") + "/security/certs"


def files(cp, kind=None):
    """Paths of the installed roots (of one kind: a TYPES name), sorted."""
    try:
        names = sorted(os.listdir(_dir(cp)))
    except OSError:
        return []
    pre = None if kind is None else _PREFIX[TYPES.index(kind)]
    return [_dir(cp) + "/" + n for n in names
            if n.endswith(".pem") and (pre is None or n.startswith(pre))]


def _read(path):
    with open(path) as f:
        return f.read()


def trusted_pem(cp):
    """Every installed CentralSystemRootCertificate as one PEM text ("" when none)."""
    out = []
    for p in files(cp, TYPES[0]):
        try:
            out.append(_read(p))
        except OSError as e:
            log.error("certs", "unreadable", p, e)
    return "".join(out)


def roots(cp):
    """The trusted roots, x509.light() one at a time (`ocppsc`, then each installed
    CentralSystemRootCertificate), so that a search stops at the first match and never
    holds them all, nor the DER of any; one that cannot be read or parsed is logged and
    skipped."""
    for p in [None] + files(cp, TYPES[0]):
        i = 0
        while True:
            try:
                c = _light(cp, p, i)
            except (OSError, ValueError) as e:  # the rest of that text or file is skipped
                log.error("certs", "unusable root", p or "ocppsc", e)
                break
            if c is None:
                break
            yield c
            i += 1


def _light(cp, path, i):
    """x509.light of block i of the PEM file at `path` (None: the `ocppsc` text), or None
    past the last. The block is decoded to a DER file beside it and parsed from there
    (x509.light_file), so no block of the certificate's size is held (4 KB for an RSA-4096
    one) and nothing of it outlives the call."""
    import der
    import x509

    if path is None:
        text = cp.config.get("ocppsc")
        lines = lambda: der.text_lines(text)  # noqa: E731
        tmp = cp.data_dir.rstrip("/") + "/" + _DER
    else:
        lines = lambda: der.file_lines(path)  # noqa: E731
        tmp = path[: path.rfind("/") + 1] + _DER
    try:
        return x509.light_file(tmp) if der.pem_file(lines, tmp, only=i)[1] is not None else None
    except OSError:
        # No room on flash for the DER (or no file to read): decoded on the heap, as reads
        # of certificates were before; a file that cannot be read raises here again.
        ders = der.pem_lines(lines)
        return x509.light(ders[i]) if i < len(ders) else None
    finally:
        fs.remove(tmp)


def client_pair(cp):
    """(certificate chain PEM, key PEM) installed by CertificateSigned, or None."""
    try:
        text = _read(cp.data_dir.rstrip("/") + "/security/cp.pem")
    except OSError:
        return None
    i = text.find("-----BEGIN EC PRIVATE KEY")
    if i <= 0:
        log.error("certs", "cp.pem unusable")
        return None
    return text[:i], text[i:]


def take_pem(payload, key, dst):
    """The PEM text payload[key] decoded: the DER of its first block written to the file
    `dst`, then the text dropped from the payload (a 5.5 KB string freed before any
    certificate is parsed or checked). (blocks in the text, bytes of the first);
    ValueError if not PEM, and the text stays on an error (a retry after a MemoryError
    reads it again)."""
    import der

    v = payload[key]
    # A long text the frame kept on flash (wsbig.Far) is decoded from there, a line at a time.
    got = der.pem_file(v.pieces if hasattr(v, "pieces") else (lambda: der.text_lines(v)), dst)
    del payload[key]
    return got


def install(cp, kind, payload):
    """"Accepted" | "Rejected" | "Failed" (InstallCertificate.conf status) for the PEM text
    of payload["certificate"] (dropped from the payload once decoded). The text is decoded
    into a DER file (x509.der: not a .pem, so never taken for an installed root), checked
    from there with no block of its size on the heap, and written as the root's .pem only
    once accepted; nothing of it stays otherwise."""
    import der

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
        try:
            fs.write_atomic(path, lambda f: der.pem_copy(f, tmp))
        except OSError as e:
            log.error("certs", "write failed", e)
            return "Failed"
        return "Accepted"
    finally:
        fs.remove(tmp)


def _root(path):
    """x509.light of the DER file at `path` when it is one self-signed CA certificate whose
    signature verifies, else None."""
    import x509

    try:
        c = x509.light_file(path)
    except ValueError:
        return None
    return c if c["ca"] and c["issuer"] == c["subject"] and x509.verify_signed_by(c, c) else None


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
