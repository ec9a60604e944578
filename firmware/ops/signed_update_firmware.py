"""SignedUpdateFirmware (OCPP 1.6 Security Whitepaper): install firmware whose signing
certificate chains to an installed ManufacturerRootCertificate and whose file's signature
verifies. The answer (Accepted, AcceptedCanceled, Rejected, InvalidCertificate) and the checks
are firmware/firmware_update/signed.py's; the download and installation cp.firmware's, which
reports with SignedFirmwareStatusNotification (with the requestId). The request is kept only
once the answer is on the wire, so its first status never overtakes it."""

from firmware.ocpp import router

ACTION = "SignedUpdateFirmware"
FEATURE = "firmware.firmware_update.service"  # cp.firmware
RESIDENT = True  # kept loaded (router.done): _req, from handler to after-handler
_req = None  # the accepted request, from the handler to the after-handler


@router.on(ACTION)
def signed_update_firmware(cp, payload):
    global _req
    from firmware.firmware_update import signed

    cp.wake(FEATURE)  # a dormant feature (firmware/app.py); a failure answers InternalError
    status, _req = signed.request(cp, payload)
    return {"status": status}


@router.after(ACTION)
def signed_update_firmware_after(cp, payload, response):
    global _req
    cp.wake(FEATURE)  # (again: it may have gone back to sleep since the handler ran)
    req, _req = _req, None
    if req is not None:
        cp.firmware.request(*req)
