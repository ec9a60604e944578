"""DeleteCertificate (Security Whitepaper): remove an installed root by its
certificateHashData (firmware/security/certs.py: the last CentralSystemRootCertificate that
verifies a TLS link is kept, Failed)."""

from firmware.ocpp import router

ACTION = "DeleteCertificate"


@router.on(ACTION)
def delete_certificate(cp, payload):
    from firmware.security import cert_admin

    return {"status": cert_admin.delete(cp, payload["certificateHashData"])}
