"""BootNotification (OCPP 1.6 §4.2, §6.5): the first message of every connection (lent by
the session for each, firmware/ocpp/session.py; TriggerMessage imports it too).

Until the central system answers Accepted nothing else is sent; Pending and Rejected are
retried after the `interval` of the answer. The answer sets the wall clock and, when
Accepted, the HeartbeatInterval (stored, shown as `ocpph`).
"""

import log
from firmware.ocpp.session import BOOT_RETRY_S
from firmware.ops import heartbeat

ACTION = "BootNotification"


def payload(cp):
    info = cp.info
    p = {
        "chargePointVendor": info["vendor"][:20],
        "chargePointModel": info["model"][:20],
        "firmwareVersion": info["fw"][:50],
    }
    if info.get("serial"):
        p["chargePointSerialNumber"] = info["serial"][:25]
    meter = info.get("meter_type")
    if meter:
        p["meterType"] = meter[:25]
    if info.get("meter_serial"):
        p["meterSerialNumber"] = info["meter_serial"][:25]
    return p


def on_conf(cp, conf):
    """Apply a BootNotification.conf; returns (status, seconds until the next step)."""
    status = conf["status"]
    heartbeat.set_clock(cp, conf, "BootNotification")
    interval = conf["interval"]
    if status == "Accepted":
        if interval > 0 and interval != cp.config.get("HeartbeatInterval"):
            errors = cp.config.update({"HeartbeatInterval": interval}, "ocpp")
            if errors:
                log.warning("ocpp", "BootNotification interval %d not taken: %s"
                            % (interval, errors.get("HeartbeatInterval")))
        return status, cp.config.get("HeartbeatInterval")
    return status, interval if interval > 0 else BOOT_RETRY_S


async def send(cp, rpc):
    return on_conf(cp, await rpc.call(ACTION, payload(cp)))
