"""InstallCertificate (Security Whitepaper): install a CentralSystemRootCertificate or
ManufacturerRootCertificate (rules: firmware/security/certs.py). A new
CentralSystemRootCertificate is trusted from the next connection on."""

from firmware.ocpp import router

ACTION = "InstallCertificate"


@router.on(ACTION)
def install_certificate(cp, payload):
    from firmware.security import cert_admin, certs

    kind = payload["certificateType"]
    status = cert_admin.install(cp, kind, payload)  # takes the text out of the payload
    if status == "Rejected" and cp.security is not None:
        cp.security.event("InvalidCentralSystemCertificate"
                          if kind == certs.TYPES[0]
                          else "InvalidFirmwareSigningCertificate",
                          "InstallCertificate refused")
    return {"status": status}
