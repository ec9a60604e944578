"""Root certificate store on flash (Security Whitepaper: InstallCertificate, DeleteCertificate,
GetInstalledCertificateIds). Imported only when one of those requests (or a wss:// connection,
a CertificateSigned's chain check) needs it; lib/x509 is imported only to read a certificate.
Installing, listing and deleting (the store's changes) are firmware/security/cert_admin.py:
a CertificateSigned, which only reads roots, does not load them.

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


def roots(cp, want_sig=True):
    """The trusted roots, x509.light() one at a time (`ocppsc`, then each installed
    CentralSystemRootCertificate), so that a search stops at the first match and never
    holds them all, nor the DER of any; one that cannot be read or parsed is logged and
    skipped. want_sig=False: without their own signatures (x509.light_file)."""
    for p in [None] + files(cp, TYPES[0]):
        i = 0
        while True:
            try:
                c = _light(cp, p, i, want_sig)
            except (OSError, ValueError) as e:  # the rest of that text or file is skipped
                log.error("certs", "unusable root", p or "ocppsc", e)
                break
            if c is None:
                break
            yield c
            i += 1


def _light(cp, path, i, want_sig=True):
    """x509.light of block i of the PEM file at `path` (None: the `ocppsc` text), or None
    past the last. The block is decoded to a DER file beside it and parsed from there
    (x509.light_file), so no block of the certificate's size is held (4 KB for an RSA-4096
    one) and nothing of it outlives the call; want_sig: as x509.light_file's."""
    if path is None:
        text = cp.config.get("ocppsc")
        tmp = cp.data_dir.rstrip("/") + "/" + _DER
    else:
        text = None
        tmp = path[: path.rfind("/") + 1] + _DER
    try:
        if _der_file(text, path, tmp, i) is None:
            return None
        import x509

        return x509.light_file(tmp, want_sig)
    except OSError:
        # No room on flash for the DER (or no file to read): decoded on the heap, as reads
        # of certificates were before; a file that cannot be read raises here again.
        import pem
        import x509

        ders = pem.pem_lines(_lines(pem, text, path))
        return x509.light(ders[i]) if i < len(ders) else None
    finally:
        fs.remove(tmp)


def _der_file(text, path, tmp, i):
    """The DER of block i of the PEM `text` (or of the file at `path`) written to the file
    `tmp`: its size, None past the last. lib/pem.py is lent (compat.lend): the parse that
    follows reads DER only."""
    from compat import lend

    pem = lend("pem")
    return pem.pem_file(_lines(pem, text, path), tmp, only=i)[1]


def _lines(pem, text, path):
    if path is None:
        return lambda: pem.text_lines(text)
    return lambda: pem.file_lines(path)


def signed(cert, issuer):
    """certsig.signed_by(cert, issuer) for light certificates (_light, x509.light_file), with
    the parser let go first (lib/x509.py and lib/der.py, 6 KB on a 64-bit heap, 3 KB on
    the ESP32, out of sys.modules: the caller holds neither): the RSA check is the
    certificates' peak. The next read imports them anew; and the check's code goes once it
    is done (lib/certsig.py, lib/rsa_verify.py: 2 KB), out of the next read's way."""
    import certsig
    from firmware.ocpp import router

    router.forget("x509", "der")
    try:
        return certsig.signed_by(cert, issuer)
    finally:  # and the check's code once done: the next certificate is read without it
        router.forget("certsig", "rsa_verify", "p256")


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
