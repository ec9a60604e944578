"""ExtendedTriggerMessage (Security Whitepaper): TriggerMessage with the whitepaper's own
messages. Answered and sent as TriggerMessage does (firmware/ops/trigger_message.py: once
the answer is on the wire, on the same connection, current information only, connectorId
looked at only for MeterValues and StatusNotification):
- BootNotification, Heartbeat, MeterValues, StatusNotification: exactly as TriggerMessage;
- FirmwareStatusNotification: a SignedFirmwareStatusNotification (the whitepaper's table)
  with the status of the update in progress (cp.firmware), Idle when none runs; its
  requestId when that update came from a SignedUpdateFirmware;
- LogStatusNotification: the status of the GetLog upload in progress with its requestId,
  Idle when none runs;
- SignChargePointCertificate: a new key and SignCertificate (firmware/ops/sign_certificate.py).
"""


import log
from firmware.ocpp import router

ACTION = "ExtendedTriggerMessage"
_PER_CONNECTOR = ("MeterValues", "StatusNotification")  # as TriggerMessage's
task = None  # the last sending task (router.spawn keeps it alive; tests await it)


@router.on(ACTION)
def extended_trigger_message(cp, payload):
    msg = payload["requestedMessage"]
    cid = payload.get("connectorId")
    if msg in _PER_CONNECTOR and cid is not None and not (
            0 <= cid <= cp.config.get("NumberOfConnectors")):
        return {"status": "Rejected"}
    if cp.session.rpc is None:
        return {"status": "Rejected"}
    return {"status": "Accepted"}


@router.after(ACTION)
def extended_trigger_message_after(cp, payload, response):
    global task
    if response["status"] == "Accepted":
        task = router.spawn(send(cp, cp.session.rpc, payload["requestedMessage"],
                                 payload.get("connectorId")))


async def send(cp, rpc, msg, cid=None):
    if msg == "SignChargePointCertificate":
        from firmware.ops import sign_certificate

        await sign_certificate.send(cp, rpc)
        return
    if msg == "LogStatusNotification":
        from firmware.ops import log_status_notification as lsn

        sec = cp.security
        st = sec.log_status if sec is not None else None
        p = (lsn.ACTION, lsn.payload(*st) if st else lsn.payload("Idle"))
    elif msg == "FirmwareStatusNotification":
        from firmware.ops import signed_firmware_status_notification as sfsn

        fw = cp.firmware
        p = (sfsn.ACTION, sfsn.payload(fw.status() if fw is not None else "Idle",
                                       getattr(fw, "req", None)))
    else:
        await _as_trigger_message(cp, rpc, msg, cid)
        return
    try:
        await rpc.call(p[0], p[1])
    except Exception as e:  # lost link, timeout, CALLERROR: the central system may ask again
        log.warning("trigger", "%s not sent: %r" % (msg, e))


async def _as_trigger_message(cp, rpc, msg, cid):
    # TriggerMessage's module, through the router (router.lookup/done): dropped again like
    # any message module, not kept for good by an import of this one.
    import sys

    from compat import ticks_ms

    try:
        router.lookup("TriggerMessage")
    except Exception as e:  # noqa: BLE001 - a build without TriggerMessage, no memory
        log.warning("trigger", "%s not sent: %r" % (msg, e))
        return
    try:
        await sys.modules["firmware.ops.trigger_message"].send(cp, rpc, msg, cid)
    finally:
        router.done("TriggerMessage", ticks_ms())
