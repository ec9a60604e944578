"""CertificateSigned (Security Whitepaper): the central system sends the chain signed for
the charge point's last CSR. Checked and installed by firmware/security/identity.py
(Accepted), else Rejected with the security event InvalidChargePointCertificate. Once the
answer is on the wire, the OCPP link reconnects presenting the new client certificate."""

from firmware.ocpp import router

ACTION = "CertificateSigned"


@router.on(ACTION)
def certificate_signed(cp, payload):
    from firmware.security import identity

    return {"status": identity.install(cp, payload)}  # takes the chain out of the payload


@router.after(ACTION)
def certificate_signed_after(cp, payload, response):
    import gc

    gc.collect()  # the chain check's garbage goes before the new TLS session's buffers come
    if response["status"] == "Accepted" and cp.config.get("ocppu").startswith("wss:"):
        cp.session.reconnect("new charge point certificate")
