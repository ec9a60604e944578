"""GetInstalledCertificateIds (Security Whitepaper): the certificateHashData of every
installed root of the type asked (SHA256; issuerNameHash over the DER issuer Name,
issuerKeyHash over the issuer's public key bits, serialNumber lowercase hex); NotFound
when there is none."""

from firmware.ocpp import router

ACTION = "GetInstalledCertificateIds"


@router.on(ACTION)
def get_installed_certificate_ids(cp, payload):
    from firmware.security import cert_admin

    found = cert_admin.ids(cp, payload["certificateType"])
    if not found:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": found}
