"""InstallCertificate (Security Whitepaper): install a CentralSystemRootCertificate or
ManufacturerRootCertificate (rules: firmware/security/certs.py). A new
CentralSystemRootCertificate is trusted from the next connection on."""

from firmware.ocpp import router

ACTION = "InstallCertificate"


@router.on(ACTION)
def install_certificate(cp, payload):
    from firmware.security import certs

    status = certs.install(cp, payload["certificateType"], payload["certificate"])
    if status == "Rejected" and cp.security is not None:
        cp.security.event("InvalidCentralSystemCertificate"
                          if payload["certificateType"] == certs.TYPES[0]
                          else "InvalidFirmwareSigningCertificate",
                          "InstallCertificate refused")
    return {"status": status}
