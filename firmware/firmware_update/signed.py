"""Signed firmware updates (OCPP 1.6 Security Whitepaper: SignedUpdateFirmware,
SignedFirmwareStatusNotification), loaded only when a SignedUpdateFirmware arrives or one is in
progress. The download, unpacking, installation and reboot are cp.firmware's
(firmware/firmware_update/service.py, install.py); this module adds what is signed:

- request(): the answer. Rejected: a location that is not http(s):// or ftp://, or an update
  already downloading, installing or rebooting (it cannot be stopped half-way).
  InvalidCertificate (and the security event InvalidFirmwareSigningCertificate): the
  signingCertificate (the first certificate of the PEM) is not signed by an installed
  ManufacturerRootCertificate (none installed: always), its key is neither RSA nor P-256, or
  (clock set) it is outside its validity. AcceptedCanceled: accepted, and a previous update
  still waiting for its retrieveDateTime is canceled. Accepted otherwise. RevokedCertificate
  is never answered: the charger has no revocation list. The certificate is kept in
  `<data>/fwsign.pem`.
- checker(): between the download and the unpacking, Downloaded, then the signature (base64,
  RSA PKCS#1 v1.5 or DER ECDSA P-256 by the certificate's key, SHA-256) is verified over the
  SHA-256 of the whole downloaded file (computed while it streamed in, lib/xfer.py):
  SignatureVerified, or InvalidSignature with the security event InvalidFirmwareSignature,
  and nothing is installed and no retry is made (the file is what the server serves).
- send(): SignedFirmwareStatusNotification {status, requestId}.

A plain UpdateFirmware (no signature) is refused with a CALLERROR SecurityError once a
ManufacturerRootCertificate is installed (firmware/ops/update_firmware.py): from then on the
charger installs only firmware signed under that root. Without one it is accepted as before,
so a charger is not bricked for updates before its manufacturer root is provisioned.
"""

import binascii

import log
from firmware import clock

# The message module builds and sends the notification (one module per message); this
# feature only decides when.
from firmware.ops.signed_firmware_status_notification import (  # noqa: F401
    ACTION,
    STATUSES,
    payload,
    send,
)

CERT = "fwsign.pem"
SCHEMES = ("http://", "https://", "ftp://")


def _path(cp):
    return cp.data_dir.rstrip("/") + "/" + CERT


def signing_cert(cp, pem):
    """The parsed signing certificate if it chains to an installed ManufacturerRootCertificate,
    else None (the reason logged)."""
    import x509

    from firmware.security import certs

    try:
        c = x509.parse_pem(pem)[0]
    except (ValueError, IndexError):
        log.error("firmware", "signing certificate unreadable")
        return None
    if c["key_type"] is None:
        log.error("firmware", "signing certificate: key neither RSA nor P-256")
        return None
    if clock.is_set() and not c["not_before"] <= clock.now() <= c["not_after"]:
        log.error("firmware", "signing certificate outside its validity")
        return None
    for p in certs.files(cp, certs.TYPES[1]):
        try:
            with open(p) as f:
                root = x509.parse_pem(f.read())[0]
        except (OSError, ValueError, IndexError) as e:
            log.error("firmware", "root unreadable", p, e)
            continue
        if x509.verify_signed_by(c, root):
            return c
    log.error("firmware", "signing certificate not issued by a ManufacturerRootCertificate")
    return None


def request(cp, p):
    """The status of the SignedUpdateFirmware.conf; (status, the request for cp.firmware's
    request() or None)."""
    fw = cp.firmware
    f = p["firmware"]
    loc = f["location"]
    if not any(loc.startswith(s) for s in SCHEMES):
        log.error("firmware", "SignedUpdateFirmware location unusable:", loc[:60])
        return "Rejected", None
    if fw.current is not None or (fw.state is not None and fw.state["stage"] != "wait"):
        log.warning("firmware", "SignedUpdateFirmware during an update: rejected")
        return "Rejected", None
    try:
        at = clock.parse(f["retrieveDateTime"])
        inst = clock.parse(f["installDateTime"]) if "installDateTime" in f else 0
    except ValueError:
        return "Rejected", None
    if signing_cert(cp, f["signingCertificate"]) is None:
        if cp.security is not None:
            cp.security.event("InvalidFirmwareSigningCertificate", "SignedUpdateFirmware")
        return "InvalidCertificate", None
    import fs

    try:
        fs.write_atomic(_path(cp), f["signingCertificate"])
    except OSError as e:
        log.error("firmware", "signing certificate not saved:", e)
        return "Rejected", None
    signed = {"req": p["requestId"], "sig": f["signature"]}
    if inst:
        signed["inst"] = inst
    req = (loc, at, p.get("retries", 1), p.get("retryInterval", 0), signed)
    return ("AcceptedCanceled" if fw.state is not None else "Accepted"), req


def checker(fw, st):
    """The check install.fetch awaits with the SHA-256 (hex) of the downloaded file."""

    async def check(sha):
        import x509

        fw.current = "Downloaded"
        await fw.notify("Downloaded")
        try:
            with open(_path(fw.cp)) as f:
                c = x509.parse_pem(f.read())[0]
            ok = x509.verify_file_signature(binascii.unhexlify(sha), st["sig"], c)
        except (OSError, ValueError, IndexError) as e:
            log.error("firmware", "signature check failed: %r" % (e,))
            ok = False
        if not ok:
            fw.current = "InvalidSignature"
            if fw.cp.security is not None:
                fw.cp.security.event("InvalidFirmwareSignature", "sha256 " + sha)
            await fw.notify("InvalidSignature")
            raise ValueError("InvalidSignature")
        log.info("firmware", "signature verified")
        fw.current = "SignatureVerified"
        await fw.notify("SignatureVerified")

    return check
