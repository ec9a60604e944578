"""SignCertificate (Security Whitepaper), sent by the charge point: a PKCS#10 CSR for a new
P-256 key made on the device (firmware/security/identity.py: CN = serial, O = CpoName); the
central system answers Accepted or Rejected and later sends CertificateSigned with the
chain. Sent on ExtendedTriggerMessage(SignChargePointCertificate)."""

import log

ACTION = "SignCertificate"


async def send(cp, rpc=None):
    """Make a key and its CSR, send it (on `rpc`, else the session's link); the answer's
    status, or None when not sent."""
    from firmware.ocpp import router
    from firmware.security import identity

    try:
        csr = identity.new_csr(cp)
    except (OSError, ValueError) as e:  # flash full, no serial number
        log.error("security", "no CSR: %r" % (e,))
        return None
    finally:
        # The key code goes before the answer is awaited: the CertificateSigned, the
        # largest request there is, may follow at once (ExtendedTriggerMessage's task).
        identity = None
        router.forget("firmware.security.identity", "csr", "p256", "der", "pem")
    try:
        r = await (rpc or cp.session).call(ACTION, {"csr": csr})
    except Exception as e:  # link down, CALLERROR: the central system may trigger again
        log.warning("security", "SignCertificate not sent: %r" % (e,))
        return None
    log.info("security", "SignCertificate", r.get("status"))
    return r.get("status")
