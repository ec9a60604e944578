"""TriggerMessage (OCPP 1.6 §5.17, §6.51): the central system asks for one message now.

Accepted, then (once the answer is on the wire, from a task of its own) the message is sent
on the connection the request came on, with current information only:
- BootNotification: the usual request; the answer sets the clock and the HeartbeatInterval
  as any BootNotification.conf does; Accepted while the session is Pending or Rejected
  accepts the session at once (cp.session.boot_answer), otherwise the session is left as it
  is (no new boot);
- Heartbeat: sets the clock;
- DiagnosticsStatusNotification / FirmwareStatusNotification: the status of the upload or
  update in progress (cp.firmware), Idle when none runs;
- MeterValues: the MeterValuesSampledData measurands as measured now, context "Trigger", for
  the connectorId asked (none: connector 1, the one meter; 0: the same meter as the station's
  main meter). Never journaled; transactionId only when a transaction runs on that connector
  and its id is known;
- StatusNotification: the current status of the connector asked, or of connector 0 and every
  connector when none is given (from cp.station).
A connectorId is only looked at for MeterValues and StatusNotification (§5.17: ignored
otherwise): one that does not exist is Rejected. An unknown requestedMessage is
NotImplemented. Sending is allowed while the BootNotification is Pending (§4.2.1); a failure
to send is logged, nothing is retried.
"""


import log
from firmware import clock
from firmware.ocpp import router
from firmware.ops import boot_notification, heartbeat

ACTION = "TriggerMessage"
_SIMPLE = ("BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
           "Heartbeat")
PER_CONNECTOR = ("MeterValues", "StatusNotification")
task = None  # the last sending task (router.spawn keeps it alive; tests await it)


@router.on(ACTION)
def trigger_message(cp, payload):
    msg = payload["requestedMessage"]
    if msg in PER_CONNECTOR:
        cid = payload.get("connectorId")
        if cid is not None and not 0 <= cid <= cp.config.get("NumberOfConnectors"):
            return {"status": "Rejected"}
    elif msg not in _SIMPLE:
        return {"status": "NotImplemented"}
    if cp.session.rpc is None:
        return {"status": "Rejected"}
    return {"status": "Accepted"}


@router.after(ACTION)
def trigger_message_after(cp, payload, response):
    global task
    if response["status"] == "Accepted":
        task = router.spawn(
            send(cp, cp.session.rpc, payload["requestedMessage"], payload.get("connectorId"))
        )


async def send(cp, rpc, msg, cid=None):
    """Send the triggered message `msg` on `rpc`; errors are logged."""
    try:
        if msg == "BootNotification":
            status, _ = await boot_notification.send(cp, rpc)
            log.info("trigger", "BootNotification", status)
            cp.session.boot_answer(rpc, status)
        elif msg == "Heartbeat":
            await heartbeat.send(cp, rpc)
        elif msg == "MeterValues":
            await _meter_values(cp, rpc, 1 if cid is None else cid)
        elif msg == "StatusNotification":
            await _status(cp, rpc, cid)
        elif msg == "DiagnosticsStatusNotification":
            st = "Idle" if cp.diagnostics is None else "Uploading"
            await rpc.call(msg, {"status": st})
        else:
            fw = cp.firmware
            await rpc.call(msg, {"status": "Idle" if fw is None else fw.status()})
    except Exception as e:  # lost link, timeout, CALLERROR: the central system may ask again
        log.warning("trigger", "%s not sent: %r" % (msg, e))


async def _meter_values(cp, rpc, cid):
    from firmware.ops import meter_values
    from firmware.transactions import metering

    names = metering.measurands(cp.config, "MeterValuesSampledData")
    mv = metering.meter_value(cp.charger, names, "Trigger", None,
                              cp.hal.board.get("phases", 3))
    if mv is None:
        log.warning("trigger", "MeterValues: nothing measurable")
        return
    tx = cp.tx
    tid = None
    if tx is not None and tx.connector_id == cid:
        tid = tx.transaction_id
    await rpc.call(meter_values.ACTION, meter_values.payload(cid, mv, tid))


async def _status(cp, rpc, cid):
    from firmware.ops import status_notification as sn

    st = cp.station
    ids = range(cp.config.get("NumberOfConnectors") + 1) if cid is None else (cid,)
    for c in ids:
        await rpc.call(sn.ACTION, sn.payload(c, st.status(c), clock.rfc3339()))
